//! Several replicas on one Postgres behave as one: each hears the others' writes through the
//! store's change feed (`LISTEN`/`NOTIFY`), so a run queued on one is claimed by another at
//! once, its log lines stream live from any replica, and a cancel sent to any replica stops the
//! plugin where it runs. When the feed's connection drops, it comes back and nothing waits for
//! the fallback poll forever. (SQLite is one process: its streams hear its own writes, see
//! `runs::logs_stream_live_as_server_sent_events_and_resume_after_a_line`.)

use portico_runs::runner::RunnerConfig;
use portico_tests::api::{ADMIN_TOKEN, Backend, Portico, backends, runner_config};
use portico_tests::artifacts::PROBE;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Replica A answers the API and runs nothing; replica B runs plugins and looks for queued runs
/// only when the change feed tells it (its fallback poll is an hour).
async fn two_replicas() -> Option<(Portico, Portico)> {
    if !backends().contains(&Backend::Postgres) {
        return None;
    }
    let a = Portico::start_with(
        Backend::Postgres,
        RunnerConfig {
            workers: 0,
            ..runner_config()
        },
    )
    .await;
    let b = a
        .replica(RunnerConfig {
            poll: Duration::from_secs(3600),
            ..runner_config()
        })
        .await;
    a.upload("probe", PROBE).await;
    a.admin(
        "POST",
        "/v1/actions",
        json!({
            "identifier": "probe", "trigger": { "type": "self-service", "operation": "CREATE",
                "userInputs": { "properties": { "steps": { "type": "array" } } } },
            "invocationMethod": { "type": "WASM", "plugin": "probe",
                "limits": { "timeoutSeconds": 300 } } }),
    )
    .await
    .expect(201);
    Some((a, b))
}

/// A run of the probe on `a` that logs `line` and then sleeps for minutes.
async fn logs_then_sleeps(a: &Portico, line: &str) -> String {
    let steps = json!([{ "log": line }, { "sleepMs": 240_000 }]);
    a.run("probe", json!({ "properties": { "steps": steps } }))
        .await
}

/// `a`'s event stream of a run, read until `text` arrives (or 30 s pass); answers the stream to
/// read on, and what it delivered so far.
async fn stream_until(a: &Portico, id: &str, text: &str) -> (reqwest::Response, String) {
    let mut stream = portico_tests::http_client()
        .get(format!("{}/v1/actions/runs/{id}/logs", a.url))
        .bearer_auth(ADMIN_TOKEN)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !seen.contains(text) {
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left, stream.chunk())
            .await
            .unwrap_or_else(|_| panic!("{text:?} never arrived; the stream said: {seen}"))
            .unwrap()
            .expect("the stream is still open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    (stream, seen)
}

/// Waits (up to 30 s) until `check` holds.
async fn eventually(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_run_on_one_replica_streams_live_from_another_and_a_cancel_there_stops_it() {
    let Some((a, b)) = two_replicas().await else {
        return;
    };
    let id = logs_then_sleeps(&a, "hello from the replica that runs me").await;

    // A queued the run (it has no workers); B claimed it when told, and runs it.
    let (mut stream, _) = stream_until(&a, &id, "hello from the replica that runs me").await;
    assert!(b.runner().is_running(&id), "B runs the plugin");
    assert!(!a.runner().is_running(&id));

    // Cancelled through A, where the run is not: B hears the run ended and stops its plugin.
    let cancelled = a
        .admin(
            "POST",
            &format!("/v1/actions/runs/{id}/cancel"),
            Value::Null,
        )
        .await;
    assert_eq!(cancelled.expect(200)["run"]["status"], "CANCELLED");
    eventually("B's plugin kept running after the cancel", || {
        !b.runner().is_running(&id)
    })
    .await;

    // A's stream ends with the run's end.
    let rest = tokio::time::timeout(Duration::from_secs(30), async {
        let mut rest = String::new();
        while let Some(chunk) = stream.chunk().await.unwrap() {
            rest.push_str(&String::from_utf8_lossy(&chunk));
        }
        rest
    })
    .await
    .expect("the stream ends after the run's end");
    let end = rest
        .split("event: end\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no end event: {rest}"));
    assert!(end.contains(r#""status":"CANCELLED""#), "{end}");
    drop(b);
}

#[tokio::test]
async fn replicas_hear_each_other_again_after_the_change_feed_reconnects() {
    let Some((a, b)) = two_replicas().await else {
        return;
    };
    // Every replica's listening connection is cut, as a failover would.
    let (admin, connection) = tokio_postgres::connect(&a.database_url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let cut = admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid() \
             AND query IN ('LISTEN portico', 'SELECT 1')",
            &[],
        )
        .await
        .unwrap();
    assert!(cut.len() >= 2, "both replicas listen");

    // A run queued on A meanwhile is still claimed by B, and streams from A.
    let id = logs_then_sleeps(&a, "still live after the reconnect").await;
    stream_until(&a, &id, "still live after the reconnect").await;
    assert!(b.runner().is_running(&id));
    a.admin(
        "POST",
        &format!("/v1/actions/runs/{id}/cancel"),
        Value::Null,
    )
    .await
    .expect(200);
    eventually("B's plugin kept running after the cancel", || {
        !b.runner().is_running(&id)
    })
    .await;
    drop(b);
}
