use std::process::ExitCode;

use palisade_server::cli::{Cli, Command};
use palisade_server::config::Config;
use palisade_server::{bootstrap_secret, commands, migrate, serve, shutdown_signal, telemetry};

fn main() -> ExitCode {
    let cli = Cli::parse_args();
    // The offline commands need neither settings nor a runtime.
    match cli.command {
        Command::Test { paths, output } => return commands::test::run(&paths, output).into(),
        Command::Check {
            policies,
            pod_security,
            library,
            output,
            resources,
        } => {
            let args = commands::check::CheckArgs {
                policies,
                pod_security,
                library,
                resources,
                output,
            };
            return commands::check::run(&args).into();
        }
        Command::Impact {
            policies,
            pod_security,
            library,
            kubeconfig,
            context,
            output,
        } => {
            let args = commands::impact::ImpactArgs {
                policies,
                pod_security,
                library,
                kubeconfig,
                context,
                output,
            };
            return commands::impact::run(&args).into();
        }
        Command::Serve | Command::Migrate | Command::BootstrapSecret => {}
    }
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(err) => return fail(&err),
    };
    telemetry::init(&config.log);
    // Policy evaluation (tests, scans, checks) runs on the blocking pool; a bounded pool makes a
    // burst of heavy policies wait their turn instead of starting hundreds of threads.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(32)
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => return fail(&format!("cannot start the async runtime: {err}")),
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Serve => serve(config, shutdown_signal()).await,
            Command::Migrate => migrate(config).await.map(|summary| println!("{summary}")),
            Command::BootstrapSecret => bootstrap_secret(config)
                .await
                .map(|text| println!("{text}")),
            Command::Test { .. } | Command::Check { .. } | Command::Impact { .. } => Ok(()),
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(&err),
    }
}

/// One line on stderr, naming the setting at fault, and a non-zero exit.
fn fail(err: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("palisade: error: {err}");
    ExitCode::FAILURE
}
