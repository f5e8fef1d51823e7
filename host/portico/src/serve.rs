//! `portico serve` and `portico config`: the HTTP service and its settings. Each setting comes
//! from a flag, then an environment variable, then its section of `portico.toml`, then a default.

use clap::{Args, ValueEnum};
use portico_api::auth::{Bootstrap, bootstrap_admin};
use portico_api::metrics::MetricsAccess;
use portico_api::startup::{load_plugins_dir, seed_examples};
use portico_api::{ApiConfig, AppState};
use portico_runs::host_key::HostKey;
use portico_runs::notify::NotifyConfig;
use portico_runs::runner::RunnerConfig;
use portico_runtime::{EnvSecrets, FileSecrets, Runtime, RuntimeConfig, SecretsChain};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Log output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Flags of `portico serve` and `portico config`; each may also come from the environment or
/// `portico.toml`.
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
    /// How long a portal sign-in lasts, e.g. `8h`, `30m` [default: 8h].
    #[arg(long, env = "PORTICO_SESSION_TTL")]
    session_ttl: Option<String>,
    /// Serves Prometheus metrics at `/metrics` (open, or behind `PORTICO_METRICS_TOKEN` when
    /// that is set) [default: true].
    #[arg(long, env = "PORTICO_METRICS")]
    metrics: Option<bool>,
    /// Loads every `*.wasm` in this folder as a plugin at start (name: the file name).
    #[arg(long, env = "PORTICO_PLUGINS_DIR")]
    plugins_dir: Option<PathBuf>,
    /// Creates the example blueprints and actions (those missing) at start.
    #[arg(long, env = "PORTICO_EXAMPLES")]
    examples: Option<bool>,
    /// Runs executed at once by this process [default: 256].
    #[arg(long, env = "PORTICO_WORKERS")]
    workers: Option<usize>,
    /// How long a replica holds a run (and an outbox event) without renewing it, e.g. `30s`:
    /// how soon another replica takes over the work of one that died [default: 30s].
    #[arg(long, env = "PORTICO_RUN_LEASE")]
    run_lease: Option<String>,
    /// The address clients reach this API at; external systems that runs are handed to
    /// report there [default: http://<listen>].
    #[arg(long, env = "PORTICO_PUBLIC_URL")]
    public_url: Option<String>,
    /// Lets notifications go to private, loopback and other non-public addresses, e.g. a
    /// receiver inside the cluster [default: false].
    #[arg(long, env = "PORTICO_NOTIFY_ALLOW_PRIVATE")]
    notify_allow_private: Option<bool>,
    /// Plugin instances the runtime keeps slots for; further runs wait for a slot
    /// [default: 1024].
    #[arg(long, env = "PORTICO_MAX_CONCURRENT_RUNS")]
    max_concurrent_runs: Option<u32>,
    /// The largest `memoryMiB` an action may ask for; each slot reserves this much address
    /// space [default: 256].
    #[arg(long, env = "PORTICO_MAX_MEMORY_MIB")]
    max_memory_mib: Option<u32>,
    /// Folder of secret files (`NAME`, `NAME.actions`, `NAME.origins`)
    /// [default: <data-dir>/secrets].
    #[arg(long, env = "PORTICO_SECRETS_DIR")]
    secrets_dir: Option<PathBuf>,
}

/// `portico.toml` as written: every key optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    data_dir: Option<PathBuf>,
    #[serde(default)]
    server: FileServer,
    #[serde(default)]
    database: FileDatabase,
    #[serde(default)]
    runtime: FileRuntime,
    #[serde(default)]
    runner: FileRunner,
    #[serde(default)]
    secrets: FileSecretsDir,
    #[serde(default)]
    notifications: FileNotifications,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileServer {
    listen: Option<String>,
    public_url: Option<String>,
    max_body_bytes: Option<usize>,
    log_format: Option<LogFormat>,
    session_ttl: Option<String>,
    metrics: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDatabase {
    url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRuntime {
    max_concurrent_runs: Option<u32>,
    max_memory_mib: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRunner {
    workers: Option<usize>,
    lease: Option<String>,
    examples: Option<bool>,
    plugins_dir: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSecretsDir {
    dir: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileNotifications {
    allow_private: Option<bool>,
}

/// The resolved settings, shaped like `portico.toml` so `portico config` prints a file that
/// reads back.
#[derive(Clone, Debug, Serialize)]
pub struct Settings {
    /// Folder for the SQLite database, caches, keys and the admin token.
    pub data_dir: PathBuf,
    /// `[server]`: the listener and the API.
    pub server: ServerSettings,
    /// `[database]`: the store.
    pub database: DatabaseSettings,
    /// `[runtime]`: the wasm sandbox's sizing.
    pub runtime: RuntimeSettings,
    /// `[runner]`: the run workers and what is loaded at start.
    pub runner: RunnerSettings,
    /// `[secrets]`: where secret files are read from.
    pub secrets: SecretsSettings,
    /// `[notifications]`: run notifications.
    pub notifications: NotificationSettings,
}

/// `[server]`.
#[derive(Clone, Debug, Serialize)]
pub struct ServerSettings {
    /// Address to listen on.
    pub listen: String,
    /// Where clients and external systems reach this API.
    pub public_url: String,
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
    /// Log output format.
    pub log_format: LogFormat,
    /// How long a portal sign-in lasts (`8h`).
    pub session_ttl: String,
    /// Whether `/metrics` is served.
    pub metrics: bool,
}

/// `[database]`.
#[derive(Clone, Debug, Serialize)]
pub struct DatabaseSettings {
    /// `sqlite://PATH` or `postgres://...`; may hold a password, so printed masked.
    pub url: String,
}

/// `[runtime]`.
#[derive(Clone, Debug, Serialize)]
pub struct RuntimeSettings {
    /// Instance slots of the pooling allocator.
    pub max_concurrent_runs: u32,
    /// The largest `memoryMiB` an action may ask for.
    pub max_memory_mib: u32,
}

/// `[runner]`.
#[derive(Clone, Debug, Serialize)]
pub struct RunnerSettings {
    /// Runs executed at once by this process.
    pub workers: usize,
    /// How long a claim on a run or an outbox event holds without renewal (`30s`).
    pub lease: String,
    /// Whether the example blueprints and actions are created at start.
    pub examples: bool,
    /// Folder whose `*.wasm` files are loaded as plugins at start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugins_dir: Option<PathBuf>,
}

/// `[secrets]`.
#[derive(Clone, Debug, Serialize)]
pub struct SecretsSettings {
    /// Folder of secret files.
    pub dir: PathBuf,
}

/// `[notifications]`.
#[derive(Clone, Debug, Serialize)]
pub struct NotificationSettings {
    /// Lets notifications reach private and loopback addresses.
    pub allow_private: bool,
}

impl ServeArgs {
    /// Flags and environment first, then the file, then defaults.
    pub fn resolve(self) -> Result<Settings, String> {
        let file = read_settings(&self.config)?;
        let data_dir = self
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| "portico-data".into());
        let url = self
            .database
            .or(file.database.url)
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("portico.db").display()));
        let listen = self
            .listen
            .or(file.server.listen)
            .unwrap_or_else(|| "127.0.0.1:7678".into());
        let workers = self.workers.or(file.runner.workers).unwrap_or(256);
        if workers == 0 {
            return Err("runner.workers must be at least 1".into());
        }
        let max_concurrent_runs = self
            .max_concurrent_runs
            .or(file.runtime.max_concurrent_runs)
            .unwrap_or(1024);
        if max_concurrent_runs == 0 {
            return Err("runtime.max_concurrent_runs must be at least 1".into());
        }
        let max_memory_mib = self
            .max_memory_mib
            .or(file.runtime.max_memory_mib)
            .unwrap_or(256);
        if max_memory_mib == 0 {
            return Err("runtime.max_memory_mib must be at least 1".into());
        }
        let lease = self
            .run_lease
            .or(file.runner.lease)
            .unwrap_or_else(|| "30s".into());
        match portico_duration::parse(&lease) {
            Ok(d) if d >= std::time::Duration::from_secs(1) => {}
            Ok(_) => return Err("runner.lease must be at least 1s".into()),
            Err(e) => return Err(format!("runner.lease: {e}")),
        }
        let session_ttl = self
            .session_ttl
            .or(file.server.session_ttl)
            .unwrap_or_else(|| "8h".into());
        match portico_duration::parse(&session_ttl) {
            Ok(ttl) if ttl.as_secs() >= 60 => {}
            Ok(_) => return Err("server.session_ttl must be at least 1m".into()),
            Err(e) => return Err(format!("server.session_ttl: {e}")),
        }
        Ok(Settings {
            server: ServerSettings {
                public_url: self
                    .public_url
                    .or(file.server.public_url)
                    .unwrap_or_else(|| format!("http://{listen}")),
                listen,
                max_body_bytes: self
                    .max_body_bytes
                    .or(file.server.max_body_bytes)
                    .unwrap_or(1 << 20),
                log_format: self
                    .log_format
                    .or(file.server.log_format)
                    .unwrap_or_default(),
                session_ttl,
                metrics: self.metrics.or(file.server.metrics).unwrap_or(true),
            },
            database: DatabaseSettings { url },
            runtime: RuntimeSettings {
                max_concurrent_runs,
                max_memory_mib,
            },
            runner: RunnerSettings {
                workers,
                lease,
                examples: self.examples.or(file.runner.examples).unwrap_or(false),
                plugins_dir: self.plugins_dir.or(file.runner.plugins_dir),
            },
            secrets: SecretsSettings {
                dir: self
                    .secrets_dir
                    .or(file.secrets.dir)
                    .unwrap_or_else(|| data_dir.join("secrets")),
            },
            notifications: NotificationSettings {
                allow_private: self
                    .notify_allow_private
                    .or(file.notifications.allow_private)
                    .unwrap_or(false),
            },
            data_dir,
        })
    }
}

impl ServerSettings {
    /// [`ServerSettings::session_ttl`] as a duration (checked when the settings were read).
    pub fn session_ttl(&self) -> std::time::Duration {
        portico_duration::parse(&self.session_ttl).unwrap_or(portico_api::session::DEFAULT_TTL)
    }
}

impl Settings {
    /// The runtime's sizing from `[runtime]`, its files under `data_dir`.
    pub fn runtime_config(&self, artifact_key: [u8; 32]) -> RuntimeConfig {
        RuntimeConfig {
            artifact_key,
            max_concurrent_runs: self.runtime.max_concurrent_runs,
            max_memory_mib: self.runtime.max_memory_mib,
            ..RuntimeConfig::new(&self.data_dir)
        }
    }

    /// The settings as `portico.toml`, for `portico config`. The database URL's password is
    /// masked; nothing else here is secret (keys and tokens come only from the environment or
    /// files under the data folder and are not settings).
    pub fn to_masked_toml(&self) -> String {
        let mut shown = self.clone();
        shown.database.url = mask_password(&self.database.url);
        toml::to_string(&shown).unwrap_or_else(|e| panic!("settings serialize as TOML: {e}"))
    }
}

/// Replaces the password in a URL's `user:password@` part, and in a `password=` query
/// parameter, with `***`.
fn mask_password(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let rest = scheme_end + 3;
        let authority_end = out[rest..]
            .find(['/', '?', '#'])
            .map_or(out.len(), |i| rest + i);
        if let Some(at) = out[rest..authority_end].rfind('@') {
            let userinfo = &out[rest..rest + at];
            if let Some(colon) = userinfo.find(':') {
                out.replace_range(rest + colon + 1..rest + at, "***");
            }
        }
    }
    if let Some(query) = out.find('?') {
        let (head, tail) = out.split_at(query + 1);
        let masked: Vec<String> = tail
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        out = format!("{head}{}", masked.join("&"));
    }
    out
}

/// Keys of the flat `portico.toml` of earlier versions and the section each moved to.
const MOVED_KEYS: &[(&str, &str)] = &[
    ("listen", "[server] listen"),
    ("public_url", "[server] public_url"),
    ("max_body_bytes", "[server] max_body_bytes"),
    ("log_format", "[server] log_format"),
    ("database", "[database] url"),
    ("workers", "[runner] workers"),
    ("examples", "[runner] examples"),
    ("plugins_dir", "[runner] plugins_dir"),
];

fn read_settings(path: &Path) -> Result<FileSettings, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FileSettings::default()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let table: toml::Table =
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    for (old, new) in MOVED_KEYS {
        // `database` is now a section; only a string there is the old key.
        if table.get(*old).is_some_and(|v| !v.is_table()) {
            return Err(format!(
                "{}: `{old}` moved to {new} (portico.toml is in sections now; `portico config` prints the whole shape)",
                path.display()
            ));
        }
    }
    toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Runs the service until SIGTERM or Ctrl-C.
pub async fn run(settings: Settings) -> Result<(), String> {
    let admin_token = std::env::var("PORTICO_ADMIN_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    if let Some(token) = &admin_token {
        portico_api::startup::check_admin_token(token)?;
    }
    let metrics = metrics_access(&settings)?;
    if !matches!(metrics, MetricsAccess::Off) {
        // Before anything records (plugins compiled at start).
        portico_api::metrics::install();
    }
    std::fs::create_dir_all(&settings.data_dir)
        .map_err(|e| format!("{}: {e}", settings.data_dir.display()))?;
    let store = portico_store::open(&settings.database.url)
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
        Box::new(FileSecrets::new(settings.secrets.dir.clone())),
        Box::new(EnvSecrets::new()),
    ]);
    let key = match std::env::var("PORTICO_HOST_KEY") {
        Ok(hex) => HostKey::from_hex(&hex).map_err(|e| format!("PORTICO_HOST_KEY: {e}"))?,
        Err(_) => HostKey::load_or_create(&settings.data_dir.join("host-key"))
            .map_err(|e| e.to_string())?,
    };
    let runtime_config = settings.runtime_config(key.artifact_key());
    let runtime = Runtime::new(runtime_config, Arc::new(secrets)).map_err(|e| e.to_string())?;
    let webhook_secret = match std::env::var("PORTICO_WEBHOOK_SECRET") {
        Ok(secret) => secret,
        Err(_) => HostKey::load_or_create(&settings.data_dir.join("webhook-secret"))
            .map(|k| k.to_hex())
            .map_err(|e| e.to_string())?,
    };
    let runner = RunnerConfig {
        workers: settings.runner.workers,
        lease: portico_duration::parse(&settings.runner.lease)
            .unwrap_or(RunnerConfig::default().lease),
        notify: NotifyConfig {
            secret: webhook_secret,
            allow_private: settings.notifications.allow_private,
            ..NotifyConfig::default()
        },
        key,
        public_url: settings.server.public_url.clone(),
        ..RunnerConfig::default()
    };
    let state = AppState::with_runner(store.clone(), runtime, runner);
    let stop_workers = tokio_util::sync::CancellationToken::new();
    let workers = state.runner.start(stop_workers.clone());
    if let Some(dir) = &settings.runner.plugins_dir {
        for plugin in load_plugins_dir(&state, dir).await? {
            tracing::info!(name = %plugin.name, digest = %plugin.digest, new = plugin.added, "plugin loaded");
        }
    }
    if settings.runner.examples {
        for created in seed_examples(&state).await? {
            tracing::info!("example created: {created}");
        }
    }
    let portal = portico_portal::PortalConfig {
        session_ttl: settings.server.session_ttl(),
        ..portico_portal::PortalConfig::for_public_url(&settings.server.public_url)
    };
    let app = portico_api::app(
        state.clone(),
        ApiConfig {
            max_body_bytes: settings.server.max_body_bytes,
            metrics,
        },
    )
    .merge(portico_portal::router(state, portal));
    let listener = tokio::net::TcpListener::bind(&settings.server.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", settings.server.listen))?;
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

/// Who may read `/metrics`: nobody when `[server] metrics = false`; with
/// `PORTICO_METRICS_TOKEN` (a secret, so not a setting), whoever sends it; else anyone.
fn metrics_access(settings: &Settings) -> Result<MetricsAccess, String> {
    if !settings.server.metrics {
        return Ok(MetricsAccess::Off);
    }
    match std::env::var("PORTICO_METRICS_TOKEN") {
        Ok(token) if !token.is_empty() => {
            if token.chars().count() < portico_api::startup::MIN_ADMIN_TOKEN_CHARS {
                return Err(format!(
                    "PORTICO_METRICS_TOKEN must have at least {} characters (e.g. `openssl rand -base64 32`)",
                    portico_api::startup::MIN_ADMIN_TOKEN_CHARS
                ));
            }
            Ok(MetricsAccess::Token(token.into()))
        }
        _ => Ok(MetricsAccess::Open),
    }
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

    /// Held by every test that reads settings, so the one that sets an environment variable
    /// cannot change what the others resolve.
    static ENVIRONMENT: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn resolve(config: &Path, flags: &[&str]) -> Result<Settings, String> {
        let _environment = ENVIRONMENT.lock().unwrap_or_else(|e| e.into_inner());
        resolve_holding_the_environment(config, flags)
    }

    fn resolve_holding_the_environment(config: &Path, flags: &[&str]) -> Result<Settings, String> {
        let mut args = vec!["portico", "--config", config.to_str().unwrap()];
        args.extend(flags);
        Cli::try_parse_from(args).unwrap().serve.resolve()
    }

    #[test]
    fn private_notification_receivers_are_allowed_only_when_the_operator_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let none = dir.path().join("none.toml");
        assert!(
            !resolve(&none, &[]).unwrap().notifications.allow_private,
            "off by default"
        );

        let file = dir.path().join("portico.toml");
        std::fs::write(&file, "[notifications]\nallow_private = true\n").unwrap();
        assert!(resolve(&file, &[]).unwrap().notifications.allow_private);
        let flag = ["--notify-allow-private", "false"];
        assert!(
            !resolve(&file, &flag).unwrap().notifications.allow_private,
            "the flag wins"
        );

        std::fs::write(&file, "[notifications]\nallow_privat = true\n").unwrap();
        let err = resolve(&file, &[]).unwrap_err();
        assert!(
            err.contains("allow_privat"),
            "a misspelt key is named: {err}"
        );
    }

    #[test]
    fn a_flag_beats_the_environment_which_beats_the_file_which_beats_the_default() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("portico.toml");
        let _environment = ENVIRONMENT.lock().unwrap_or_else(|e| e.into_inner());
        let memory = |flags: &[&str]| {
            resolve_holding_the_environment(&file, flags)
                .unwrap()
                .runtime
                .max_memory_mib
        };

        assert_eq!(memory(&[]), 256, "the default");
        std::fs::write(&file, "[runtime]\nmax_memory_mib = 512\n").unwrap();
        assert_eq!(memory(&[]), 512, "the file over the default");
        // SAFETY: the other tests wait on ENVIRONMENT, and std serialises its own environment
        // accesses; nothing in this process reads the environment through libc meanwhile.
        unsafe { std::env::set_var("PORTICO_MAX_MEMORY_MIB", "1024") };
        let from_env = memory(&[]);
        let from_flag = memory(&["--max-memory-mib", "2048"]);
        unsafe { std::env::remove_var("PORTICO_MAX_MEMORY_MIB") };
        assert_eq!(from_env, 1024, "the environment over the file");
        assert_eq!(from_flag, 2048, "the flag over the environment");
    }

    #[test]
    fn every_section_of_portico_toml_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("portico.toml");
        std::fs::write(
            &file,
            r#"
data_dir = "/var/lib/portico"
[server]
listen = "0.0.0.0:80"
public_url = "https://portico.example.com"
max_body_bytes = 4096
log_format = "json"
session_ttl = "12h"
metrics = false
[database]
url = "postgres://portico@db/portico"
[runtime]
max_concurrent_runs = 64
max_memory_mib = 128
[runner]
workers = 8
examples = true
plugins_dir = "/opt/plugins"
[secrets]
dir = "/run/secrets/portico"
[notifications]
allow_private = true
"#,
        )
        .unwrap();
        let s = resolve(&file, &[]).unwrap();
        assert_eq!(s.data_dir, Path::new("/var/lib/portico"));
        assert_eq!(s.server.listen, "0.0.0.0:80");
        assert_eq!(s.server.public_url, "https://portico.example.com");
        assert_eq!(s.server.max_body_bytes, 4096);
        assert_eq!(s.server.log_format, LogFormat::Json);
        assert_eq!(
            s.server.session_ttl(),
            std::time::Duration::from_secs(12 * 3600)
        );
        assert!(!s.server.metrics);
        assert_eq!(s.database.url, "postgres://portico@db/portico");
        assert_eq!(s.runtime.max_concurrent_runs, 64);
        assert_eq!(s.runtime.max_memory_mib, 128);
        assert_eq!(s.runner.workers, 8);
        assert!(s.runner.examples);
        assert_eq!(
            s.runner.plugins_dir.as_deref(),
            Some(Path::new("/opt/plugins"))
        );
        assert_eq!(s.secrets.dir, Path::new("/run/secrets/portico"));
        assert!(s.notifications.allow_private);
    }

    #[test]
    fn defaults_follow_the_data_folder() {
        let dir = tempfile::tempdir().unwrap();
        let s = resolve(&dir.path().join("none.toml"), &["--data-dir", "/srv/p"]).unwrap();
        assert_eq!(s.database.url, "sqlite:///srv/p/portico.db");
        assert_eq!(s.secrets.dir, Path::new("/srv/p/secrets"));
        assert_eq!(s.runtime.max_concurrent_runs, 1024);
        assert_eq!(s.server.public_url, "http://127.0.0.1:7678");
        assert!(s.server.metrics, "metrics are served unless turned off");
    }

    #[test]
    fn an_unknown_key_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("portico.toml");
        std::fs::write(&file, "[runtime]\nmax_memory_mb = 512\n").unwrap();
        let err = resolve(&file, &[]).unwrap_err();
        assert!(err.contains("max_memory_mb"), "the key is named: {err}");

        std::fs::write(&file, "[sever]\nlisten = \"0.0.0.0:80\"\n").unwrap();
        let err = resolve(&file, &[]).unwrap_err();
        assert!(err.contains("sever"), "the section is named: {err}");
    }

    #[test]
    fn a_flat_key_of_earlier_versions_says_where_it_moved() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("portico.toml");
        std::fs::write(&file, "database = \"sqlite://x.db\"\n").unwrap();
        let err = resolve(&file, &[]).unwrap_err();
        assert!(err.contains("`database` moved to [database] url"), "{err}");
        std::fs::write(&file, "workers = 4\n").unwrap();
        let err = resolve(&file, &[]).unwrap_err();
        assert!(err.contains("`workers` moved to [runner] workers"), "{err}");
    }

    #[test]
    fn zero_sizes_are_refused_naming_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let none = dir.path().join("none.toml");
        let err = resolve(&none, &["--max-memory-mib", "0"]).unwrap_err();
        assert!(err.contains("runtime.max_memory_mib"), "{err}");
        let err = resolve(&none, &["--max-concurrent-runs", "0"]).unwrap_err();
        assert!(err.contains("runtime.max_concurrent_runs"), "{err}");
    }

    #[test]
    fn portico_config_masks_the_database_password_and_reads_back_as_portico_toml() {
        let dir = tempfile::tempdir().unwrap();
        let none = dir.path().join("none.toml");
        let flags = [
            "--database",
            "postgres://u:pw@h/db",
            "--plugins-dir",
            "/opt/plugins",
        ];
        let printed = resolve(&none, &flags).unwrap().to_masked_toml();
        assert!(
            printed.contains("url = \"postgres://u:***@h/db\""),
            "{printed}"
        );
        assert!(!printed.contains("pw"), "{printed}");

        let file = dir.path().join("portico.toml");
        std::fs::write(&file, &printed).unwrap();
        let read_back = resolve(&file, &[]).unwrap();
        assert_eq!(read_back.database.url, "postgres://u:***@h/db");
        assert_eq!(read_back.to_masked_toml(), printed, "the same settings");
    }

    #[test]
    fn passwords_are_masked_wherever_a_url_holds_them() {
        assert_eq!(
            mask_password("postgres://u:pw@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(mask_password("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            mask_password("postgres://h/db?user=u&password=pw&sslmode=require"),
            "postgres://h/db?user=u&password=***&sslmode=require"
        );
        assert_eq!(
            mask_password("sqlite://data/p:w@x.db"),
            "sqlite://data/p:w@x.db"
        );
    }

    #[test]
    fn the_runtime_is_sized_by_the_runtime_section() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("portico.toml");
        std::fs::write(
            &file,
            "data_dir = \"/srv/p\"\n[runtime]\nmax_concurrent_runs = 16\nmax_memory_mib = 96\n",
        )
        .unwrap();
        let config = resolve(&file, &[]).unwrap().runtime_config([7; 32]);
        assert_eq!(config.max_concurrent_runs, 16);
        assert_eq!(config.max_memory_mib, 96);
        assert_eq!(config.cache_dir, Path::new("/srv/p/cache"));
        assert_eq!(config.artifact_key, [7; 32]);
    }
}
