//! Prometheus metrics: the process's one recorder, who may read `GET /metrics`, and the layer
//! that counts and times HTTP requests by route template. The names and the other recording
//! calls are in [`portico_runs::metrics`].

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use portico_runs::metrics::{HTTP_REQUESTS, HTTP_SECONDS};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Who may read `GET /metrics`.
#[derive(Clone, Debug, Default)]
pub enum MetricsAccess {
    /// Anyone who reaches the listener, like `/healthz` and `/readyz`: what a Prometheus
    /// scrape expects. Nothing secret is exported (counts, timings, action identifiers).
    #[default]
    Open,
    /// Only requests with `Authorization: Bearer <token>` (for a listener the public reaches).
    Token(Arc<str>),
    /// No `/metrics` route (404), and no recorder installed by the API: recording is a no-op.
    Off,
}

/// The upper bounds (seconds) of every histogram's buckets: from a store call (0.5 ms) to a
/// long run (5 min).
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 300.0,
];

/// How often histogram samples are folded into their buckets between scrapes, so that a
/// server nobody scrapes does not keep them all.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The route label of a request no route matched (404s): one series for all of them, never
/// the raw path.
const UNMATCHED: &str = "unmatched";

/// Installs the process's Prometheus recorder on the first call (tests start many servers in
/// one process: they share it) and answers its handle. `None` when another recorder was
/// installed first (a program embedding Portico): the metrics then go to that one.
pub fn install() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(BUCKETS)
                .expect("the bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            if let Err(e) = metrics::set_global_recorder(recorder) {
                tracing::warn!("/metrics stays empty: {e}");
                return None;
            }
            portico_runs::metrics::describe();
            // Exported from the start, 0 until the outbox's consumer sets it.
            portico_runs::metrics::outbox_backlog(0);
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new()
                .name("portico-metrics".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_EVERY);
                        upkeep.run_upkeep();
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!("cannot start the metrics upkeep thread: {e}");
            }
            Some(handle)
        })
        .as_ref()
}

/// When a request arrived (set by [`track_http`]): lets a handler time more than its own part,
/// e.g. a run's accept latency from the request's arrival.
#[derive(Clone, Copy, Debug)]
pub struct RequestStarted(pub Instant);

/// Counts (`portico_http_requests_total`) and times (`portico_http_request_duration_seconds`)
/// each request by method, route template (axum's [`MatchedPath`], so `/v1/actions/{action}`
/// and never an id) and status. Layered on the API's routes and the portal's.
pub async fn track_http(mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
        .to_owned();
    let method = method_label(request.method());
    request.extensions_mut().insert(RequestStarted(started));
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!(
        HTTP_REQUESTS,
        "method" => method,
        "route" => route.clone(),
        "status" => status,
    )
    .increment(1);
    metrics::histogram!(HTTP_SECONDS, "method" => method, "route" => route)
        .record(started.elapsed());
    response
}

/// The standard methods by name; anything else (a client may send any token) is `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
