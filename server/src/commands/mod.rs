//! The offline commands a security engineer runs in a CI pipeline: `palisade test` and
//! `palisade check`. They need no server, database or configuration: only files. `palisade impact`
//! reads a live cluster instead of files, through a kubeconfig.

pub mod bundle;
pub mod check;
pub mod impact;
pub mod inputs;
pub mod test;

use std::process::ExitCode;

/// How an offline command ended. `check` and `test` share the codes: 0 nothing failed / denied,
/// 1 something failed / would be denied, 2 the input could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok,
    Failed,
    BadInput,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        match exit {
            Exit::Ok => ExitCode::SUCCESS,
            Exit::Failed => ExitCode::from(1),
            Exit::BadInput => ExitCode::from(2),
        }
    }
}

/// `--output text` (one line per result) or `--output json` (one document).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    #[default]
    Text,
    Json,
}

fn print_json(value: &impl serde::Serialize) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(err) => eprintln!("palisade: error: cannot write JSON: {err}"),
    }
}
