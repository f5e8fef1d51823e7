//! The plugin author's local loop: `plugin new` scaffolds a plugin crate that builds and runs as
//! it is, and `plugin test` runs a built component once, in the server's sandbox (the action's
//! grant and limits, its inputs checked as the server checks them), against an in-memory
//! catalog, showing every log line, progress report, catalog call and HTTP request as it
//! happens. No server and no database: the loop is edit, `cargo build`, `plugin test`.

pub mod build;
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
    /// Builds a plugin folder into a component with its language's tool: cargo (Rust),
    /// componentize-py (Python) or the JavaScript SDK's esbuild + jco (JavaScript/TypeScript).
    Build(build::BuildArgs),
    /// Runs a built plugin once, locally, in the same sandbox as the server, with an action's
    /// grant and limits, against an in-memory catalog; exits 0 on SUCCESS, 4 on FAILURE.
    Test(test::TestArgs),
}

/// Runs a `plugin` command: the exit code of the run it made (`plugin test`), or why it could
/// not. `json` is `--output json` (`plugin test` then prints one JSON object per event).
pub async fn execute(command: PluginCommand, json: bool) -> Result<ExitCode, CliError> {
    match command {
        PluginCommand::New(args) => new::run(args),
        PluginCommand::Build(args) => build::run(args),
        PluginCommand::Test(args) => test::run(args, json).await,
    }
}

use crate::error::CliError;
use crate::error::exit::{CANCELLED as EXIT_CANCELLED, FAILURE as EXIT_FAILURE};
