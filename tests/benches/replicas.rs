//! Live events across replicas: how late a plugin's log line reaches an event stream, and how
//! soon a run queued or cancelled on one replica is claimed or stopped on another.
//!
//!     cargo bench -p portico-tests --bench replicas
//!     PORTICO_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!         cargo bench -p portico-tests --bench replicas
//!
//! The probe plugin logs LINES lines, one every SPACING_MS (each line alone, the worst case for
//! batching), while a client follows the run's event stream. A line's lag is from its `at` (the
//! host's clock when the plugin logged it, in whole milliseconds: up to 1 ms is added) to its
//! arrival at the client, on the same machine's clock. Scenarios: SQLite (one process), and on
//! Postgres one replica that runs and streams, then two replicas in this process on one
//! database, B running the plugin and A serving the stream. On two replicas it also times, over
//! ROUNDS runs, a run queued on A (no workers) until B executes it (B's fallback poll is an
//! hour: only the change feed tells it), and a cancel sent to A until B's plugin stopped.

use portico_runs::runner::RunnerConfig;
use portico_tests::api::{ADMIN_TOKEN, Backend, Portico, backends, runner_config};
use portico_tests::artifacts::PROBE;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const LINES: usize = 300;
const SPACING_MS: u64 = 30;
const ROUNDS: usize = 30;

/// p50, p99 and max of milliseconds.
fn percentiles(mut ms: Vec<f64>) -> (f64, f64, f64) {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 * q).ceil() as usize).clamp(1, ms.len()) - 1];
    (at(0.50), at(0.99), ms[ms.len() - 1])
}

async fn probe_action(p: &Portico) {
    p.upload("probe", PROBE).await;
    p.admin(
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
}

/// Runs the chatty probe through `queue` and follows its stream on `stream`: each line's lag
/// in ms.
async fn line_lags(queue: &Portico, stream: &Portico) -> Vec<f64> {
    let steps: Vec<Value> = (0..LINES)
        .flat_map(|i| {
            [
                json!({ "log": format!("line {i}") }),
                json!({ "sleepMs": SPACING_MS }),
            ]
        })
        .collect();
    let id = queue
        .run("probe", json!({ "properties": { "steps": steps } }))
        .await;
    let mut response = portico_tests::http_client()
        .get(format!("{}/v1/actions/runs/{id}/logs", stream.url))
        .bearer_auth(ADMIN_TOKEN)
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("stream");
    let mut lags = Vec::with_capacity(LINES);
    let mut buffer = String::new();
    'stream: while let Some(chunk) = tokio::time::timeout(Duration::from_secs(60), response.chunk())
        .await
        .expect("the stream stalled")
        .expect("stream chunk")
    {
        let arrived = chrono::Utc::now();
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            if event.contains("event: end") {
                break 'stream;
            }
            if !event.contains("event: log") {
                continue;
            }
            let data = event
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .expect("a log event has data");
            let line: Value = serde_json::from_str(data).expect("a log line");
            let at: chrono::DateTime<chrono::Utc> =
                line["at"].as_str().expect("at").parse().expect("a time");
            lags.push((arrived - at).num_microseconds().unwrap_or_default() as f64 / 1e3);
        }
    }
    assert_eq!(lags.len(), LINES, "every line arrived");
    lags
}

fn report(name: &str, lags: Vec<f64>) {
    let n = lags.len();
    let (p50, p99, max) = percentiles(lags);
    println!("{name:<44} {n:>6} {p50:>9.1} {p99:>9.1} {max:>9.1}");
}

/// A run on `a` that B claims, then a cancel on `a` that stops it on `b`: (claim ms, cancel ms).
async fn claim_and_cancel(a: &Portico, b: &Portico) -> (f64, f64) {
    let steps = json!([{ "log": "waiting" }, { "sleepMs": 240_000 }]);
    let asked = Instant::now();
    let id = a
        .run("probe", json!({ "properties": { "steps": steps } }))
        .await;
    while !b.runner().is_running(&id) {
        assert!(
            asked.elapsed() < Duration::from_secs(30),
            "B never claimed it"
        );
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let claimed = asked.elapsed();
    let cancelled = Instant::now();
    a.admin(
        "POST",
        &format!("/v1/actions/runs/{id}/cancel"),
        Value::Null,
    )
    .await
    .expect(200);
    while b.runner().is_running(&id) {
        assert!(
            cancelled.elapsed() < Duration::from_secs(30),
            "B never stopped it"
        );
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let stopped = cancelled.elapsed();
    (claimed.as_secs_f64() * 1e3, stopped.as_secs_f64() * 1e3)
}

#[tokio::main]
async fn main() {
    println!(
        "log line from the plugin to a client's event stream, {LINES} lines one every {SPACING_MS} ms"
    );
    println!(
        "{:<44} {:>6} {:>9} {:>9} {:>9}",
        "scenario", "lines", "p50 ms", "p99 ms", "max ms"
    );
    for backend in backends() {
        let one = Portico::start(backend).await;
        probe_action(&one).await;
        let lags = line_lags(&one, &one).await;
        report(&format!("{backend:?}, one replica"), lags);
        if backend != Backend::Postgres {
            continue;
        }
        drop(one);

        let a = Portico::start_with(
            backend,
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
        probe_action(&a).await;
        let lags = line_lags(&a, &a).await;
        report("Postgres, runs on B, streamed from A", lags);

        let (mut claims, mut cancels) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            let (claim, cancel) = claim_and_cancel(&a, &b).await;
            claims.push(claim);
            cancels.push(cancel);
        }
        println!("\nacross two Postgres replicas, {ROUNDS} runs");
        println!(
            "{:<44} {:>6} {:>9} {:>9} {:>9}",
            "", "runs", "p50 ms", "p99 ms", "max ms"
        );
        report("queued on A (no workers) -> running on B", claims);
        report("cancel sent to A -> plugin stopped on B", cancels);
        drop(b);
    }
}
