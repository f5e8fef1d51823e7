//! Shared pieces of Portico's end-to-end tests and benchmarks: the built components, one runtime
//! per test process, a builder for runs, a recording HTTP server on 127.0.0.1, and a headless
//! browser for the portal.

pub mod api;
pub mod browser;
pub mod partition;
pub mod server;

/// Paths of the components built by `build.rs`.
pub mod artifacts {
    include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));
}

use portico_runtime::{
    Capabilities, CatalogStore, Entity, FileSecrets, Limits, MemoryCatalog, Operation, Plugin,
    RecordedEvents, RunFailure, RunJob, RunOutcome, RunReport, RunRequest, Runtime, RuntimeConfig,
    User,
};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use tokio_util::sync::CancellationToken;

/// The value of the `test_token` secret: it must reach the test server and nothing else.
pub const TEST_SECRET: &str = "s3cr3t-value-the-plugin-must-never-see";

/// The key the test runtime authenticates its compiled plugins with: fixed, so the cache in
/// [`artifacts::CACHE_DIR`] is trusted by the next test process too.
pub const TEST_ARTIFACT_KEY: [u8; 32] = *b"portico-tests-artifact-key-32-by";

/// The runtime shared by every test in the process (one engine, one pool, one plugin cache).
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        let data = tempfile::tempdir().expect("temp dir").keep();
        let secrets = data.join("secrets");
        std::fs::create_dir_all(&secrets).expect("secrets dir");
        std::fs::write(secrets.join("test_token"), format!("{TEST_SECRET}\n")).expect("secret");
        // The operator lets the runtime tests' action, and the API tests' `use_secret`, use it.
        std::fs::write(
            secrets.join("test_token.actions"),
            "test_action\nuse_secret\n",
        )
        .expect("secret rule");
        let mut config = RuntimeConfig::new(&data);
        config.max_concurrent_runs = 256;
        config.cache_dir = artifacts::CACHE_DIR.into();
        config.artifact_key = TEST_ARTIFACT_KEY;
        Runtime::new(config, Arc::new(FileSecrets::new(secrets))).expect("runtime starts")
    })
}

/// Loads (compiles once per process) a built component.
pub fn plugin(path: &str) -> Arc<Plugin> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    runtime()
        .load_plugin(&bytes)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A request from `alice` with the given inputs and a fresh run id.
pub fn request(inputs: Value) -> RunRequest {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    RunRequest {
        run_id: format!("r_test_{}", NEXT.fetch_add(1, Ordering::Relaxed)),
        action: "test_action".into(),
        operation: Operation::Create,
        inputs,
        entity: None,
        triggered_by: User {
            identifier: "alice".into(),
            email: Some("alice@example.com".into()),
            roles: vec!["member".into()],
            teams: vec!["platform".into()],
        },
        config: json!({}),
    }
}

/// One run to make: a plugin, its grant and limits, the request and the catalog.
pub struct TestRun {
    plugin: &'static str,
    capabilities: Value,
    limits: Value,
    request: RunRequest,
    catalog: Arc<dyn CatalogStore>,
    cancel: CancellationToken,
}

impl TestRun {
    /// A run of the component at `plugin` with no grants, default limits and empty inputs.
    pub fn new(plugin: &'static str) -> Self {
        Self {
            plugin,
            capabilities: json!({}),
            limits: json!({}),
            request: request(json!({})),
            catalog: Arc::new(MemoryCatalog::new()),
            cancel: CancellationToken::new(),
        }
    }

    /// Sets `invocationMethod.capabilities`.
    pub fn grant(mut self, capabilities: Value) -> Self {
        self.capabilities = capabilities;
        self
    }

    /// Sets `invocationMethod.limits`.
    pub fn limits(mut self, limits: Value) -> Self {
        self.limits = limits;
        self
    }

    /// Sets the user inputs.
    pub fn inputs(mut self, inputs: Value) -> Self {
        self.request.inputs = inputs;
        self
    }

    /// Sets the plugin config.
    pub fn config(mut self, config: Value) -> Self {
        self.request.config = config;
        self
    }

    /// Makes it a DAY-2 run on `entity`.
    pub fn on_entity(mut self, entity: Entity) -> Self {
        self.request.operation = Operation::DayTwo;
        self.request.entity = Some(entity);
        self
    }

    /// Uses this catalog instead of a fresh empty one.
    pub fn catalog(mut self, catalog: Arc<dyn CatalogStore>) -> Self {
        self.catalog = catalog;
        self
    }

    /// Uses this token to cancel the run.
    pub fn cancel_with(mut self, cancel: CancellationToken) -> Self {
        self.cancel = cancel;
        self
    }

    /// Runs to the end.
    pub async fn run(self) -> Finished {
        let capabilities: Capabilities =
            serde_json::from_value(self.capabilities).expect("capabilities parse");
        let limits: Limits = serde_json::from_value(self.limits).expect("limits parse");
        let grants = runtime()
            .grants(&capabilities, limits)
            .unwrap_or_else(|e| panic!("grant rejected: {e}"));
        let events = Arc::new(RecordedEvents::default());
        let job = RunJob {
            request: self.request,
            grants: Arc::new(grants),
            catalog: self.catalog,
            events: events.clone(),
            cancel: self.cancel,
        };
        // Compiling is CPU-bound: keep it off the async worker threads.
        let path = self.plugin;
        let plugin = tokio::task::spawn_blocking(move || plugin(path))
            .await
            .expect("plugin loads");
        let report = runtime().run(&plugin, job).await;
        Finished { report, events }
    }
}

/// A finished run: its report and everything it logged.
pub struct Finished {
    /// How it ended.
    pub report: RunReport,
    /// Its logs, progress and links.
    pub events: Arc<RecordedEvents>,
}

impl Finished {
    /// The outcome; panics with the failure and the log when the run failed.
    pub fn outcome(&self) -> &RunOutcome {
        match &self.report.result {
            Ok(outcome) => outcome,
            Err(failure) => panic!("run failed: {failure}\nlog:\n{}", self.logs()),
        }
    }

    /// The failure; panics when the run succeeded.
    pub fn failure(&self) -> &RunFailure {
        match &self.report.result {
            Ok(outcome) => panic!("run succeeded: {outcome:?}\nlog:\n{}", self.logs()),
            Err(failure) => failure,
        }
    }

    /// The output JSON of a successful run.
    pub fn output(&self) -> &Value {
        self.outcome().output.as_ref().expect("the run has output")
    }

    /// All log lines, joined by newlines.
    pub fn logs(&self) -> String {
        self.events.log_text()
    }
}

/// The process's resident memory in KiB (Linux).
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS line")
}

/// An HTTP client for tests (with the TLS crypto provider the build needs installed).
pub fn http_client() -> reqwest::Client {
    portico_runs::notify::install_crypto_provider();
    reqwest::Client::new()
}

/// Run events that go nowhere: a benchmark measures the runtime, not a log store.
pub struct Discard;

impl portico_runtime::RunEvents for Discard {
    fn log(&self, _: portico_runtime::LogLevel, _: &str) {}
    fn progress(&self, _: Option<u8>, _: Option<&str>) {}
    fn link(&self, _: &portico_runtime::Link) {}
}
