//! Portico's HTTP API. One function, [`app`], builds the whole router over a shared
//! [`AppState`]; [`serve`] runs it on a listener until a shutdown signal. Routes follow Port's
//! shapes: `{"ok": true, "<thing>": ...}` on success, [`ApiError`]'s envelope on failure.

pub mod auth;
pub mod error;
pub mod events;
mod extract;
pub mod metrics;
mod routes;
pub mod session;
pub mod startup;

pub use error::{ApiError, ApiResult};
pub use routes::runs::show as show_run;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use portico_catalog::Catalog;
use portico_runs::intake::RunIntake;
use portico_runs::runner::{Runner, RunnerConfig};
use portico_runtime::Runtime;
use portico_store::Store;
use std::sync::Arc;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// Blueprints and entities.
    pub catalog: Arc<Catalog>,
    /// Users, teams, plugins, the audit log.
    pub store: Arc<dyn Store>,
    /// Checks and compiles plugins.
    pub runtime: Runtime,
    /// Executes runs; start its workers with [`Runner::start`].
    pub runner: Runner,
    /// Accepts run requests: every rule between a request and a committed run.
    pub intake: RunIntake,
    /// Lookups every request makes, kept briefly (see [`Lookups`]).
    pub lookups: Arc<Lookups>,
}

/// What every request looks up that rarely changes, cached for a moment: a token's user. This
/// replica clears it when it changes users; other replicas' changes show within the ttl. (The
/// intake keeps its own: actions and the queue's length.)
pub struct Lookups {
    /// Users by token hash (`None`: unknown token).
    pub users: portico_runs::ttl_cache::TtlCache<String, Option<portico_store::User>>,
}

impl Default for Lookups {
    fn default() -> Self {
        Self {
            users: portico_runs::ttl_cache::TtlCache::new(std::time::Duration::from_secs(2)),
        }
    }
}

impl AppState {
    /// State over a store and a plugin runtime, with the runner's default settings.
    pub fn new(store: Arc<dyn Store>, runtime: Runtime) -> Self {
        Self::with_runner(store, runtime, RunnerConfig::default())
    }

    /// State with the runner configured.
    pub fn with_runner(store: Arc<dyn Store>, runtime: Runtime, config: RunnerConfig) -> Self {
        let catalog = Arc::new(Catalog::new(store.clone()));
        let runner = Runner::new(store.clone(), catalog.clone(), runtime.clone(), config);
        let intake = RunIntake::new(store.clone(), catalog.clone(), runner.clone());
        Self {
            catalog,
            store,
            runtime,
            runner,
            intake,
            lookups: Arc::default(),
        }
    }
}

impl AppState {
    /// Reading, cancelling and deciding on runs, over this server's store and runner.
    pub fn run_control(&self) -> portico_runs::control::RunControl<'_> {
        portico_runs::control::RunControl {
            store: self.store.as_ref(),
            runner: &self.runner,
        }
    }
}

/// Settings of the HTTP layer.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// Largest request body accepted (413 beyond).
    pub max_body_bytes: usize,
    /// Who may read `GET /metrics` (anyone, by default).
    pub metrics: metrics::MetricsAccess,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 1 << 20,
            metrics: metrics::MetricsAccess::default(),
        }
    }
}

/// The whole router. Unless `/metrics` is off, installs the process's metrics recorder.
pub fn app(state: AppState, config: ApiConfig) -> Router {
    let mut router = routes::router();
    if !matches!(config.metrics, metrics::MetricsAccess::Off) {
        metrics::install();
        router = router.route(
            "/metrics",
            axum::routing::get(routes::health::metrics)
                .layer(axum::Extension(Arc::new(config.metrics))),
        );
    }
    router
        .layer(axum::middleware::from_fn(metrics::track_http))
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
