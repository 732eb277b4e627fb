//! The command line: `palisade [--config FILE] <serve|migrate>`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

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
