//! The `portico` command line, apart from `serve`: a client for a Portico server's API
//! (contexts, actions, runs, catalog, plugins, audit), configuration as code (`apply`,
//! `export`), and the plugin author's local loop (`plugin new`, `plugin test`).
//!
//! The client speaks only the public HTTP API, so it works against any Portico server; the
//! plugin loop runs the same sandbox as the server (`portico_runtime`) without one.

use clap::Subcommand;
use std::process::ExitCode;

/// The commands this crate adds to `portico`.
#[derive(Subcommand)]
pub enum Command {}

/// Runs one command and turns its outcome into the process's exit code.
pub async fn execute(command: Command) -> ExitCode {
    match command {}
}
