//! `portico`: the self-service actions host.

mod demo;
mod serve;

use clap::{CommandFactory, Parser, Subcommand};

/// mimalloc: the allocator was a seventh of a run's CPU with the system one.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "portico",
    version,
    about = "Self-service actions with sandboxed WebAssembly backends"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    global: portico_cli::Global,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the HTTP service.
    Serve(serve::ServeArgs),
    /// Prints the settings `serve` would use, as `portico.toml`, with the database password
    /// masked.
    Config(serve::ServeArgs),
    /// Runs the example plugins through the runtime against an in-memory catalog and a local
    /// webhook receiver, printing their logs, progress and catalog writes.
    Demo {
        /// Folder holding scaffold_service.wasm, change_replicas.wasm and webhook.wasm.
        #[arg(
            long,
            env = "PORTICO_PLUGINS_DIR",
            default_value = "plugins/target/wasm32-wasip2/release"
        )]
        plugins_dir: PathBuf,
        /// Where compiled plugins are cached.
        #[arg(long, env = "PORTICO_DATA_DIR", default_value = "portico-data")]
        data_dir: PathBuf,
    },
    #[command(flatten)]
    Client(portico_cli::Command),
    /// Prints a shell completion script: `portico completions bash > /etc/bash_completion.d/portico`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

fn main() -> std::process::ExitCode {
    // wasmtime formats a backtrace on every fiber drop when this is set: 25-45 us per run.
    // SAFETY: no other thread exists yet.
    unsafe { std::env::remove_var("RUST_BACKTRACE") };
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let result = match cli.command {
        Command::Client(command) => {
            // The host's own warnings (why `plugin test` could not run a plugin) go to stderr.
            let filter = tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn".into());
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .init();
            return runtime.block_on(portico_cli::execute(command, cli.global));
        }
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "portico",
                &mut std::io::stdout(),
            );
            return std::process::ExitCode::SUCCESS;
        }
        Command::Serve(args) => match args.resolve() {
            Ok(settings) => {
                init_logs(settings.server.log_format);
                runtime.block_on(serve::run(settings))
            }
            Err(e) => Err(e),
        },
        Command::Config(args) => args.resolve().map(|settings| {
            print!("{}", settings.to_masked_toml());
        }),
        Command::Demo {
            plugins_dir,
            data_dir,
        } => {
            init_logs(serve::LogFormat::Text);
            runtime.block_on(demo::run(&plugins_dir, &data_dir))
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_logs(format: serve::LogFormat) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        serve::LogFormat::Text => logs.init(),
        serve::LogFormat::Json => logs.json().init(),
    }
}
