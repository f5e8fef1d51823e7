//! Liveness, readiness and metrics, without a user's token.

use crate::AppState;
use crate::error::ApiError;
use crate::metrics::MetricsAccess;
use axum::Json;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portico_runs::liveness::WorkerLoop;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the database has to answer the readiness ping: a replica whose connection hangs
/// is not ready, however long it would wait.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "alive")))]
pub(crate) async fn healthz() -> Json<Value> {
    Json(json!({ "ok": true }))
}

/// The replica can take work: its database answers a ping within 2 s, and its worker loop
/// (claims, lease renewals, timers) has turned recently. `checks` says how each went.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, description = "ready"),
        (status = 503, description = "not ready: `message` names the failed check (`database`, `worker_loop`), `failed` lists them, `checks` has each one's state")))]
pub(crate) async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let started = Instant::now();
    let database = match tokio::time::timeout(PING_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => Ok(json!({ "ok": true, "ms": started.elapsed().as_millis() as u64 })),
        Ok(Err(e)) => {
            tracing::warn!("readiness: the database ping failed: {e}");
            Err("the database does not answer (the ping failed; the cause is in the log)".into())
        }
        Err(_) => Err(format!(
            "the database did not answer a ping within {} s",
            PING_TIMEOUT.as_secs()
        )),
    };
    let worker_loop = match state.runner.worker_loop() {
        WorkerLoop::Turning { since } => {
            Ok(json!({ "ok": true, "last_turn_ms": since.as_millis() as u64 }))
        }
        WorkerLoop::Stuck { since, limit } => Err(format!(
            "the worker loop has not turned for {:.1} s (the limit is {} s): runs are not claimed here",
            since.as_secs_f64(),
            limit.as_secs_f64()
        )),
        WorkerLoop::Stopped => Err("the worker loop has stopped".to_owned()),
        WorkerLoop::NotStarted => Err("the worker loop was not started".to_owned()),
    };
    let mut checks = json!({});
    let mut failed = Vec::new();
    let mut messages = Vec::new();
    for (name, check) in [("database", database), ("worker_loop", worker_loop)] {
        checks[name] = match check {
            Ok(state) => state,
            Err(message) => {
                failed.push(name);
                messages.push(format!("{name}: {message}"));
                json!({ "ok": false, "message": message })
            }
        };
    }
    if failed.is_empty() {
        let body = json!({ "ok": true, "database": state.store.backend(), "checks": checks });
        return (StatusCode::OK, Json(body));
    }
    tracing::warn!("not ready: {}", messages.join("; "));
    let body = json!({
        "ok": false,
        "error": "not_ready",
        "message": format!("not ready: {}", messages.join("; ")),
        "failed": failed,
        "checks": checks,
    });
    (StatusCode::SERVICE_UNAVAILABLE, Json(body))
}

/// Prometheus's text format. Open by default, like the probes; with `PORTICO_METRICS_TOKEN`
/// set it wants that token as a bearer; `[server] metrics = false` removes the route.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "the metrics, Prometheus text format 0.0.4", content_type = "text/plain", body = String),
        (status = 401, description = "the server wants its metrics token (`PORTICO_METRICS_TOKEN`) as `Authorization: Bearer`"),
        (status = 503, description = "another metrics recorder holds this process's metrics")))]
pub(crate) async fn metrics(
    Extension(access): Extension<Arc<MetricsAccess>>,
    headers: HeaderMap,
) -> Response {
    if let MetricsAccess::Token(token) = access.as_ref() {
        let sent = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        // Digests, so the comparison's time says nothing about the token's characters.
        if Sha256::digest(sent.as_bytes()) != Sha256::digest(token.as_bytes()) {
            return ApiError::unauthorized(
                "this server's metrics want its metrics token: send `Authorization: Bearer <PORTICO_METRICS_TOKEN>`",
            )
            .into_response();
        }
    }
    let Some(handle) = crate::metrics::install() else {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "another metrics recorder was installed in this process first; it holds the metrics",
        )
        .into_response();
    };
    handle.run_upkeep();
    let content_type = HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8");
    let mut response = handle.render().into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, content_type);
    response
}
