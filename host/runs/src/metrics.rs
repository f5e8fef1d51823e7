//! What the runs record for Prometheus, and the names of every metric Portico exports (all
//! `portico_`). Calls go through the `metrics` facade: a no-op until the API installs its
//! recorder (`portico_api::metrics`), so code below the API records without knowing whether
//! anyone scrapes. The runtime ([`portico_runtime::PLUGIN_LOAD_SECONDS`]) and the catalog
//! ([`portico_catalog::STORE_SECONDS`], for search) record their own through the same facade.
//!
//! Labels stay bounded: an action's identifier (actions are written by admins), a status, a
//! failure kind from a fixed list, a store operation from the code, an HTTP route template.

use portico_store::{RunRecord, RunStatus};
use std::time::{Duration, Instant};

/// Runs a worker began executing (`action`).
pub const RUNS_STARTED: &str = "portico_runs_started_total";
/// Runs that reached a final status, as written by this replica (`action`, `status`,
/// `failure_kind`).
pub const RUNS_ENDED: &str = "portico_runs_ended_total";
/// Runs waiting for a worker (`PENDING`), across replicas.
pub const QUEUE_DEPTH: &str = "portico_queue_depth";
/// How long plugins ran, from their start to their return (`action`).
pub const RUN_DURATION_SECONDS: &str = "portico_run_duration_seconds";
/// From an HTTP request to run arriving to the run committed (`POST /v1/actions/{action}/runs`).
pub const ACCEPT_SECONDS: &str = "portico_run_accept_seconds";
/// How long store calls on the hot path took (`op`).
pub const STORE_SECONDS: &str = portico_catalog::STORE_SECONDS;
/// How long loading a plugin took (`from`: `compiled` or `cache`).
pub const PLUGIN_LOAD_SECONDS: &str = portico_runtime::PLUGIN_LOAD_SECONDS;
/// Events written to the outbox and not consumed yet.
pub const OUTBOX_BACKLOG: &str = "portico_outbox_backlog";
/// HTTP requests answered (`method`, `route`, `status`).
pub const HTTP_REQUESTS: &str = "portico_http_requests_total";
/// How long HTTP requests took to answer, to the response's head (`method`, `route`).
pub const HTTP_SECONDS: &str = "portico_http_request_duration_seconds";

/// Gives each metric its `# HELP` line and unit; call once, after installing a recorder.
pub fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        RUNS_STARTED,
        "Runs a worker of this replica began executing"
    );
    describe_counter!(
        RUNS_ENDED,
        "Runs this replica wrote a final status for (SUCCESS, FAILURE, CANCELLED, DECLINED)"
    );
    describe_gauge!(
        QUEUE_DEPTH,
        "Runs waiting for a worker (PENDING), all replicas"
    );
    describe_histogram!(
        RUN_DURATION_SECONDS,
        Unit::Seconds,
        "Plugin execution time, from its start to its return"
    );
    describe_histogram!(
        ACCEPT_SECONDS,
        Unit::Seconds,
        "From an HTTP request to run arriving to the run committed"
    );
    describe_histogram!(STORE_SECONDS, Unit::Seconds, "Store calls on the hot path");
    describe_histogram!(
        PLUGIN_LOAD_SECONDS,
        Unit::Seconds,
        "Loading a plugin: compiling it, or reading its cached compiled artifact"
    );
    describe_gauge!(OUTBOX_BACKLOG, "Events in the outbox not consumed yet");
    describe_counter!(HTTP_REQUESTS, "HTTP requests answered, by route template");
    describe_histogram!(
        HTTP_SECONDS,
        Unit::Seconds,
        "HTTP time to the response's head"
    );
}

/// A worker began executing a run of `action`.
pub fn run_started(action: &str) {
    metrics::counter!(RUNS_STARTED, "action" => action.to_owned()).increment(1);
}

/// `run` reached a final status (call once, where the change was written); other statuses
/// are ignored.
pub fn run_ended(run: &RunRecord) {
    if !run.is_final() {
        return;
    }
    let kind = match run.status {
        RunStatus::Failure => failure_kind(run.error.as_ref()),
        _ => "none",
    };
    metrics::counter!(
        RUNS_ENDED,
        "action" => run.action.clone(),
        "status" => run.status.as_str(),
        "failure_kind" => kind,
    )
    .increment(1);
}

/// A run's `error.kind`, from the kinds the host writes; anything else (an old row, a new
/// kind not listed here) is `other`, so the label stays bounded.
fn failure_kind(error: Option<&serde_json::Value>) -> &'static str {
    const KINDS: [&str; 12] = [
        "plugin",
        "timeout",
        "memory",
        "trap",
        "limit",
        "denied",
        "cancelled",
        "internal",
        "interrupted",
        "external",
        "declined",
        "expired",
    ];
    let kind = error
        .and_then(|e| e.get("kind"))
        .and_then(|k| k.as_str())
        .unwrap_or_default();
    KINDS.into_iter().find(|k| *k == kind).unwrap_or("other")
}

/// A plugin of `action` ran for `took`.
pub fn run_duration(action: &str, took: Duration) {
    metrics::histogram!(RUN_DURATION_SECONDS, "action" => action.to_owned()).record(took);
}

/// A run was committed `took` after its HTTP request arrived.
pub fn accept_latency(took: Duration) {
    metrics::histogram!(ACCEPT_SECONDS).record(took);
}

/// `pending` runs wait for a worker (a count the caller made anyway, or the runner's
/// sample every few seconds).
pub fn queue_depth(pending: u64) {
    metrics::gauge!(QUEUE_DEPTH).set(pending as f64);
}

/// `events` wait in the outbox. Call wherever the backlog is known (e.g. after a consumer's
/// claim); the gauge is 0 until then.
pub fn outbox_backlog(events: u64) {
    metrics::gauge!(OUTBOX_BACKLOG).set(events as f64);
}

/// Awaits a store call, recording how long it took as operation `op`.
pub async fn store<T>(op: &'static str, call: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let out = call.await;
    metrics::histogram!(STORE_SECONDS, "op" => op).record(started.elapsed());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn failure_kinds_are_a_bounded_set() {
        assert_eq!(failure_kind(Some(&json!({ "kind": "timeout" }))), "timeout");
        assert_eq!(
            failure_kind(Some(&json!({ "kind": "interrupted" }))),
            "interrupted"
        );
        assert_eq!(failure_kind(Some(&json!({ "kind": "made-up" }))), "other");
        assert_eq!(
            failure_kind(Some(&json!({ "message": "no kind" }))),
            "other"
        );
        assert_eq!(failure_kind(None), "other");
    }
}
