//! The `portico` command line, apart from `serve`: a client for a Portico server's API
//! (contexts, actions, runs, catalog, plugins, audit), configuration as code (`apply`,
//! `export`), and the plugin author's local loop (`plugin new`, `plugin test`).
//!
//! The client speaks only the public HTTP API, so it works against any Portico server; the
//! plugin loop runs the same sandbox as the server (`portico_runtime`) without one.

pub mod plugin;

use clap::Subcommand;
use std::process::ExitCode;

/// The commands this crate adds to `portico`.
#[derive(Subcommand)]
pub enum Command {
    /// Writes and tries plugins locally: `plugin new` scaffolds a plugin crate, `plugin test`
    /// runs a built plugin once in the server's sandbox, without a server.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
}

/// Runs one command and turns its outcome into the process's exit code.
pub async fn execute(command: Command) -> ExitCode {
    match command {
        Command::Plugin(c) => plugin::execute(c).await,
    }
}
