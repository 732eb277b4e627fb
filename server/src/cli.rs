//! The command line: `palisade [--config FILE] <serve|migrate|test|check|impact>`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::commands::OutputFormat;

#[derive(Debug, Parser)]
#[command(
    name = "palisade",
    version,
    about = "Kubernetes security policy platform"
)]
pub struct Cli {
    /// A TOML file of settings, read after the defaults and before the environment.
    #[arg(long, global = true, env = "PALISADE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the web server until SIGTERM or SIGINT.
    Serve,
    /// Apply pending database migrations, then exit.
    Migrate,
    /// Print a new one-time secret for signing in as the local admin (the server prints one at
    /// start only while no admin exists), then exit.
    BootstrapSecret,
    /// Run policy test suites offline: gator `suite.yaml`, Kyverno `kyverno-test.yaml` and Palisade
    /// `palisade-test.yaml` files under each path. Exit 0 when nothing failed, 1 otherwise, 2 on bad
    /// input.
    Test {
        /// Suite files, or directories to search for them.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<String>,
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
    /// Evaluate resources against policies and print each verdict (allow, audit, warn, deny). Exit 1
    /// when anything would be denied, 0 otherwise, 2 on bad input.
    Check {
        /// A file (or directory) of policies: ValidatingAdmissionPolicies with their bindings,
        /// Gatekeeper ConstraintTemplates with their Constraints. Repeatable.
        #[arg(long = "policy", value_name = "FILE")]
        policies: Vec<String>,
        /// Enforce a Pod Security Standard, e.g. `restricted`, `baseline:v1.30`,
        /// `restricted:latest`. Repeatable.
        #[arg(long = "pss", value_name = "LEVEL[:VERSION]")]
        pod_security: Vec<String>,
        /// Use a built-in library policy by id, or `all`. Repeatable.
        #[arg(long = "library", value_name = "ID")]
        library: Vec<String>,
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
        /// Resource files, directories, or `-` for standard input.
        #[arg(required = true, value_name = "RESOURCE_PATH")]
        resources: Vec<String>,
    },
    /// What enforcing policies would do to every object of a live cluster, read through a
    /// kubeconfig (no server needed): each denied, warned or audited object with its owning
    /// workload. Exit 1 when anything would be denied, 0 otherwise, 2 on bad input or a cluster
    /// that cannot be read.
    Impact {
        /// A file (or directory) of policies, as for `check`. Repeatable.
        #[arg(long = "policy", value_name = "FILE")]
        policies: Vec<String>,
        /// Enforce a Pod Security Standard on every namespace but the system ones, e.g.
        /// `baseline`, `restricted:v1.30`. Repeatable.
        #[arg(long = "pss", value_name = "LEVEL[:VERSION]")]
        pod_security: Vec<String>,
        /// Use a built-in library policy by id, or `all`. Repeatable.
        #[arg(long = "library", value_name = "ID")]
        library: Vec<String>,
        /// The kubeconfig to read the cluster with.
        #[arg(long, value_name = "FILE")]
        kubeconfig: String,
        /// The kubeconfig's context; its current one when absent.
        #[arg(long, value_name = "NAME")]
        context: Option<String>,
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
}

impl Cli {
    /// Parse the process arguments, with the settings list appended to `--help`.
    pub fn parse_args() -> Cli {
        use clap::{CommandFactory, FromArgMatches};
        let command = Cli::command().after_help(crate::config::Config::help_text());
        let matches = command.get_matches();
        Cli::from_arg_matches(&matches).unwrap_or_else(|err| err.exit())
    }
}
