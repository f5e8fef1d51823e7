//! The plugin author's local loop: `plugin new` scaffolds a plugin crate that builds and runs as
//! it is, and `plugin test` runs a built component once, in the server's sandbox (the action's
//! grant and limits, its inputs checked as the server checks them), against an in-memory
//! catalog, showing every log line, progress report, catalog call and HTTP request as it
//! happens. No server and no database: the loop is edit, `cargo build`, `plugin test`.

mod new;
mod test;

use clap::Subcommand;
use std::process::ExitCode;

/// `portico plugin ...`.
#[derive(Subcommand)]
pub enum PluginCommand {
    /// Creates a plugin crate: a Rust component for wasm32-wasip2 with a working `run`, a unit
    /// test, an action definition, a catalog fixture and a README with the next commands.
    New(new::NewArgs),
    /// Runs a built plugin once, locally, in the same sandbox as the server, with an action's
    /// grant and limits, against an in-memory catalog; exits 0 on SUCCESS, 4 on FAILURE.
    Test(test::TestArgs),
}

/// Runs a `plugin` command and turns its outcome into the CLI's exit code; `json` is
/// `--output json` (`plugin test` then prints one JSON object per event).
pub async fn execute(command: PluginCommand, json: bool) -> ExitCode {
    let result = match command {
        PluginCommand::New(args) => new::run(args),
        PluginCommand::Test(args) => test::run(args, json).await,
    };
    result.unwrap_or_else(|failed| {
        eprintln!("error: {}", failed.message);
        ExitCode::from(failed.code)
    })
}

use crate::error::exit::{
    CANCELLED as EXIT_CANCELLED, ERROR as EXIT_ERROR, FAILURE as EXIT_FAILURE,
    REFUSED as EXIT_INVALID,
};

/// Why a command stopped before it could do its job, with the exit code the CLI documents for
/// that kind of reason.
#[derive(Debug)]
struct Failed {
    code: u8,
    message: String,
}

impl Failed {
    /// Exit 1: something local went wrong.
    fn error(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_ERROR,
            message: message.into(),
        }
    }

    /// Exit 3: the server would refuse it too.
    fn invalid(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_INVALID,
            message: message.into(),
        }
    }
}
