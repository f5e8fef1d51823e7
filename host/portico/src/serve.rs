//! `portico serve`: the HTTP service. Settings come from flags, then environment variables,
//! then `portico.toml`, then defaults.

use clap::{Args, ValueEnum};
use portico_api::auth::{Bootstrap, bootstrap_admin};
use portico_api::startup::{load_plugins_dir, seed_examples};
use portico_api::{ApiConfig, AppState};
use portico_runs::host_key::HostKey;
use portico_runs::notify::NotifyConfig;
use portico_runs::runner::RunnerConfig;
use portico_runtime::{EnvSecrets, FileSecrets, Runtime, RuntimeConfig, SecretsChain};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Log output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Flags of `portico serve`; each may also come from the environment or `portico.toml`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The settings file (optional).
    #[arg(long, env = "PORTICO_CONFIG", default_value = "portico.toml")]
    config: PathBuf,
    /// Address to listen on [default: 127.0.0.1:7678].
    #[arg(long, env = "PORTICO_LISTEN")]
    listen: Option<String>,
    /// `sqlite://PATH` or `postgres://...` [default: sqlite://<data-dir>/portico.db].
    #[arg(long, env = "PORTICO_DATABASE")]
    database: Option<String>,
    /// Folder for the SQLite database, caches and the admin token [default: ./portico-data].
    #[arg(long, env = "PORTICO_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Log format [default: text].
    #[arg(long, env = "PORTICO_LOG_FORMAT")]
    log_format: Option<LogFormat>,
    /// Largest request body in bytes [default: 1048576].
    #[arg(long, env = "PORTICO_MAX_BODY_BYTES")]
    max_body_bytes: Option<usize>,
    /// Loads every `*.wasm` in this folder as a plugin at start (name: the file name).
    #[arg(long, env = "PORTICO_PLUGINS_DIR")]
    plugins_dir: Option<PathBuf>,
    /// Creates the example blueprints and actions (those missing) at start.
    #[arg(long, env = "PORTICO_EXAMPLES")]
    examples: Option<bool>,
    /// Runs executed at once by this process [default: 256].
    #[arg(long, env = "PORTICO_WORKERS")]
    workers: Option<usize>,
    /// The address clients reach this API at; external systems that runs are handed to
    /// report there [default: http://<listen>].
    #[arg(long, env = "PORTICO_PUBLIC_URL")]
    public_url: Option<String>,
    /// Lets notifications go to private, loopback and other non-public addresses, e.g. a
    /// receiver inside the cluster [default: false].
    #[arg(long, env = "PORTICO_NOTIFY_ALLOW_PRIVATE")]
    notify_allow_private: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
struct FileSettings {
    listen: Option<String>,
    database: Option<String>,
    data_dir: Option<PathBuf>,
    log_format: Option<LogFormat>,
    max_body_bytes: Option<usize>,
    plugins_dir: Option<PathBuf>,
    examples: Option<bool>,
    workers: Option<usize>,
    public_url: Option<String>,
    notifications: Option<NotificationSettings>,
}

/// `[notifications]` in `portico.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
struct NotificationSettings {
    allow_private: Option<bool>,
}

/// The resolved settings.
#[derive(Debug)]
pub struct Settings {
    pub listen: String,
    pub database: String,
    pub data_dir: PathBuf,
    pub log_format: LogFormat,
    pub max_body_bytes: usize,
    pub plugins_dir: Option<PathBuf>,
    pub examples: bool,
    pub workers: usize,
    pub public_url: String,
    pub notify_allow_private: bool,
}

impl ServeArgs {
    /// Flags and environment first, then the file, then defaults.
    pub fn resolve(self) -> Result<Settings, String> {
        let file = read_settings(&self.config)?;
        let data_dir = self
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| "portico-data".into());
        let database = self
            .database
            .or(file.database)
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("portico.db").display()));
        let listen = self
            .listen
            .or(file.listen)
            .unwrap_or_else(|| "127.0.0.1:7678".into());
        let workers = self.workers.or(file.workers).unwrap_or(256);
        if workers == 0 {
            return Err("workers must be at least 1".into());
        }
        let notify_allow_private = self
            .notify_allow_private
            .or(file.notifications.and_then(|n| n.allow_private))
            .unwrap_or(false);
        Ok(Settings {
            notify_allow_private,
            public_url: self
                .public_url
                .or(file.public_url)
                .unwrap_or_else(|| format!("http://{listen}")),
            workers,
            listen,
            database,
            data_dir,
            log_format: self.log_format.or(file.log_format).unwrap_or_default(),
            max_body_bytes: self
                .max_body_bytes
                .or(file.max_body_bytes)
                .unwrap_or(1 << 20),
            plugins_dir: self.plugins_dir.or(file.plugins_dir),
            examples: self.examples.or(file.examples).unwrap_or(false),
        })
    }
}

fn read_settings(path: &Path) -> Result<FileSettings, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(FileSettings::default()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Runs the service until SIGTERM or Ctrl-C.
pub async fn run(settings: Settings) -> Result<(), String> {
    let admin_token = std::env::var("PORTICO_ADMIN_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    if let Some(token) = &admin_token {
        portico_api::startup::check_admin_token(token)?;
    }
    std::fs::create_dir_all(&settings.data_dir)
        .map_err(|e| format!("{}: {e}", settings.data_dir.display()))?;
    let store = portico_store::open(&settings.database)
        .await
        .map_err(|e| format!("cannot open the database: {e}"))?;
    match bootstrap_admin(store.as_ref(), &settings.data_dir, admin_token).await? {
        Bootstrap::AlreadyDone => {}
        Bootstrap::FromEnvironment => {
            tracing::info!("created the admin user with PORTICO_ADMIN_TOKEN")
        }
        Bootstrap::Generated(path) => tracing::info!(
            path = %path.display(),
            "created the admin user; its token is in {} (shown nowhere else)",
            path.display()
        ),
    }
    let secrets = SecretsChain(vec![
        Box::new(FileSecrets::new(settings.data_dir.join("secrets"))),
        Box::new(EnvSecrets::new()),
    ]);
    let key = match std::env::var("PORTICO_HOST_KEY") {
        Ok(hex) => HostKey::from_hex(&hex).map_err(|e| format!("PORTICO_HOST_KEY: {e}"))?,
        Err(_) => HostKey::load_or_create(&settings.data_dir.join("host-key"))
            .map_err(|e| e.to_string())?,
    };
    let runtime_config = RuntimeConfig {
        artifact_key: key.artifact_key(),
        ..RuntimeConfig::new(&settings.data_dir)
    };
    let runtime = Runtime::new(runtime_config, Arc::new(secrets)).map_err(|e| e.to_string())?;
    let webhook_secret = match std::env::var("PORTICO_WEBHOOK_SECRET") {
        Ok(secret) => secret,
        Err(_) => HostKey::load_or_create(&settings.data_dir.join("webhook-secret"))
            .map(|k| k.to_hex())
            .map_err(|e| e.to_string())?,
    };
    let engine = RunnerConfig {
        workers: settings.workers,
        notify: NotifyConfig {
            secret: webhook_secret,
            allow_private: settings.notify_allow_private,
            ..NotifyConfig::default()
        },
        key,
        public_url: settings.public_url.clone(),
        ..RunnerConfig::default()
    };
    let state = AppState::with_runner(store.clone(), runtime, engine);
    let stop_workers = tokio_util::sync::CancellationToken::new();
    let workers = state.runner.start(stop_workers.clone());
    if let Some(dir) = &settings.plugins_dir {
        for plugin in load_plugins_dir(&state, dir).await? {
            tracing::info!(name = %plugin.name, digest = %plugin.digest, new = plugin.added, "plugin loaded");
        }
    }
    if settings.examples {
        for created in seed_examples(&state).await? {
            tracing::info!("example created: {created}");
        }
    }
    let app = portico_api::app(
        state,
        ApiConfig {
            max_body_bytes: settings.max_body_bytes,
        },
    );
    let listener = tokio::net::TcpListener::bind(&settings.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", settings.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(%addr, database = store.backend(), "portico is listening on http://{addr}");
    portico_api::serve(listener, app, shutdown_signal())
        .await
        .map_err(|e| e.to_string())?;
    // Runs in progress keep their lease and are failed as interrupted after a restart.
    stop_workers.cancel();
    let _ = workers.await;
    tracing::info!("portico stopped");
    Ok(())
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!("cannot watch SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = term => tracing::info!("SIGTERM: shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C: shutting down"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn resolve(config: &Path, flags: &[&str]) -> Result<Settings, String> {
        let mut args = vec!["portico", "--config", config.to_str().unwrap()];
        args.extend(flags);
        Cli::try_parse_from(args).unwrap().serve.resolve()
    }

    #[test]
    fn private_notification_receivers_are_allowed_only_when_the_operator_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let none = dir.path().join("none.toml");
        assert!(
            !resolve(&none, &[]).unwrap().notify_allow_private,
            "off by default"
        );

        let file = dir.path().join("portico.toml");
        std::fs::write(&file, "[notifications]\nallow_private = true\n").unwrap();
        assert!(resolve(&file, &[]).unwrap().notify_allow_private);
        let flag = ["--notify-allow-private", "false"];
        assert!(
            !resolve(&file, &flag).unwrap().notify_allow_private,
            "the flag wins"
        );

        std::fs::write(&file, "[notifications]\nallow_privat = true\n").unwrap();
        let err = resolve(&file, &[]).unwrap_err();
        assert!(
            err.contains("allow_privat"),
            "a misspelt key is named: {err}"
        );
    }
}
