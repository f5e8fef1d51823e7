//! The `portico` command line, apart from `serve`: a client for a Portico server's API
//! (contexts, actions, runs, catalog, plugins, audit), configuration as code (`apply`,
//! `export`), and the plugin author's local loop (`plugin new`, `plugin test`).
//!
//! The client speaks only the public HTTP API, so it works against any Portico server; the
//! plugin loop runs the same sandbox as the server (`portico_runtime`) without one.

pub mod apply;
pub mod client;
pub mod commands;
pub mod config;
pub mod error;
pub mod output;
pub mod plugin;
pub mod runs;

use clap::{Args, Subcommand};
use client::Client;
use error::CliError;
use output::{Format, Output};
use std::process::ExitCode;

/// Options every client command takes.
#[derive(Args, Clone, Debug)]
pub struct Global {
    /// How client commands print: a table for people, or the API's objects as json or yaml.
    #[arg(long, short = 'o', global = true, value_enum, default_value = "table")]
    pub output: Format,
    /// The saved server to talk to (`portico login --name`); default: the current one.
    #[arg(long, global = true, env = "PORTICO_CONTEXT")]
    pub context: Option<String>,
}

impl Global {
    /// The client for the chosen context.
    pub fn client(&self) -> Result<Client, CliError> {
        let contexts = config::Contexts::load()?;
        Client::new(&contexts.resolve(self.context.as_deref())?)
    }

    /// The printer for `--output`.
    pub fn out(&self) -> Output {
        Output::new(self.output)
    }
}

/// The commands this crate adds to `portico`.
#[derive(Subcommand)]
pub enum Command {
    /// Saves a server's URL and your token (from PORTICO_TOKEN or stdin) as a context.
    Login(commands::LoginArgs),
    /// Lists the saved servers, or switches to one.
    #[command(subcommand)]
    Context(commands::ContextCommand),
    /// Actions you can run.
    #[command(subcommand)]
    Actions(commands::ActionsCommand),
    /// Runs an action: `portico run scaffold_service --input name=payments --follow`.
    Run(runs::RunArgs),
    /// Runs: list, show, follow the log, cancel, approve, decline, retry.
    #[command(subcommand)]
    Runs(runs::RunsCommand),
    /// The catalog's entities.
    #[command(subcommand)]
    Entities(commands::EntitiesCommand),
    /// The catalog's blueprints.
    #[command(subcommand)]
    Blueprints(commands::BlueprintsCommand),
    /// Plugins (WASI 0.2 components) on the server.
    #[command(subcommand)]
    Plugins(commands::PluginsCommand),
    /// The audit log, newest first.
    Audit(commands::AuditArgs),
    /// Makes the server match files of blueprints, actions, teams and plugins (YAML or JSON).
    Apply(apply::ApplyArgs),
    /// Writes the server's blueprints, actions, teams and plugins as files `apply` accepts.
    Export(apply::ExportArgs),
    /// Writes and tries plugins locally: `plugin new` scaffolds a plugin crate, `plugin test`
    /// runs a built plugin once in the server's sandbox, without a server.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
}

/// Runs one command and turns its outcome into the process's exit code.
pub async fn execute(command: Command, global: Global) -> ExitCode {
    let result = match command {
        Command::Login(args) => commands::login(args).await,
        Command::Context(c) => commands::context(c, &global),
        Command::Actions(c) => commands::actions(c, &global).await,
        Command::Run(args) => runs::run(args, &global).await,
        Command::Runs(c) => runs::runs(c, &global).await,
        Command::Entities(c) => commands::entities(c, &global).await,
        Command::Blueprints(c) => commands::blueprints(c, &global).await,
        Command::Plugins(c) => commands::plugins(c, &global).await,
        Command::Audit(args) => commands::audit(args, &global).await,
        Command::Apply(args) => apply::apply(args, &global).await,
        Command::Export(args) => apply::export(args, &global).await,
        Command::Plugin(c) => {
            return exit_code(plugin::execute(c, global.output == Format::Json).await);
        }
    };
    exit_code(result.map(|()| ExitCode::SUCCESS))
}

/// The process's exit code for a command's outcome, printing why it failed.
fn exit_code(result: Result<ExitCode, CliError>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(e) => {
            if !matches!(e, CliError::RunEnded { .. }) {
                eprintln!("error: {e}");
            }
            e.exit_code()
        }
    }
}
