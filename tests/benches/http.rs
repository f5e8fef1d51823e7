//! What a run costs end to end over HTTP: clients POST `/v1/actions/{id}/runs` (the no-op plugin:
//! parse the request, log one line) to a real in-process server as fast as it answers, and the
//! runner's workers execute every accepted run to SUCCESS.
//!
//!     RUST_BACKTRACE=0 cargo bench -p portico-tests --bench http
//!     RUST_BACKTRACE=0 PORTICO_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!         cargo bench -p portico-tests --bench http
//!
//! SQLite always; Postgres too when PORTICO_TEST_POSTGRES_URL is set, with 1 replica or each
//! count in PORTICO_BENCH_REPLICAS (such as `1,2,3`: that many servers on one database, in this
//! process, the clients spread over them). For each backend and each
//! concurrency (1, 16, 256 clients, or the list in PORTICO_BENCH_CLIENTS; each client a keep-alive
//! HTTP/1.1 connection), a fresh server on a fresh database takes POSTs for PORTICO_BENCH_SECONDS
//! (default 5) seconds; then the bench waits until every accepted run has ended and reads them
//! back from the store. Prints runs accepted, runs/s end to end (accepted runs / time from the
//! first POST to the last run's `endedAt`), the intake rate (accepted runs / POST time), accept
//! latency (POST to 202) and trigger-to-SUCCESS latency (`endedAt - createdAt`, server clock)
//! p50/p99 in milliseconds, the process's CPU time per run from the first POST to the last run's
//! end (clients and server together: 2 cores give 10,000 runs/s at most 0.2 ms), the database
//! server's CPU time per run (the `postgres` processes, on this machine's same 2 cores), and runs
//! that did not end in SUCCESS (there must be none).
//! The budget is >= 10,000 runs/s end to end on SQLite.

/// The allocator the `portico` binary uses, so the figures are the service's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use portico_runs::runner::RunnerConfig;
use portico_store::{RunFilter, Store};
use portico_tests::api::{ADMIN_TOKEN, Backend, Portico, backends};
use portico_tests::artifacts::NOOP;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The concurrency levels measured unless PORTICO_BENCH_CLIENTS names others.
const CONCURRENCY: [usize; 3] = [1, 16, 256];
/// The design's budget, on SQLite.
const BUDGET_RUNS_PER_S: f64 = 10_000.0;
/// Accepted runs must all end within this long after the last POST.
const DRAIN_LIMIT: Duration = Duration::from_secs(600);
/// Runs read back from the store per page.
const PAGE: usize = 5_000;

/// How long each concurrency level POSTs: PORTICO_BENCH_SECONDS, default 5.
fn post_for() -> Duration {
    let seconds = std::env::var("PORTICO_BENCH_SECONDS")
        .ok()
        .map(|s| s.parse::<f64>().expect("PORTICO_BENCH_SECONDS is a number"))
        .unwrap_or(5.0);
    Duration::from_secs_f64(seconds)
}

/// The concurrency levels to measure: PORTICO_BENCH_CLIENTS (comma-separated, such as `256` to
/// compare two builds on the budget's level alone), default 1, 16 and 256.
fn levels() -> Vec<usize> {
    match std::env::var("PORTICO_BENCH_CLIENTS") {
        Ok(list) => list
            .split(',')
            .map(|n| {
                n.trim()
                    .parse()
                    .expect("PORTICO_BENCH_CLIENTS is a comma-separated list of client counts")
            })
            .collect(),
        Err(_) => CONCURRENCY.to_vec(),
    }
}

/// CPU time this process has used (all threads, clients and server alike), from /proc/self/stat
/// in clock ticks of 1/100 s (USER_HZ on Linux).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect("(comm)")
        .1
        .split_whitespace()
        .collect();
    let ticks = |i: usize| fields[i].parse::<f64>().expect("a tick count");
    // utime and stime are fields 14 and 15; `fields` starts at field 3.
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU time the PostgreSQL server's processes have used, summed over every process named
/// `postgres` (the server runs on this machine, on the same cores as the bench). Processes that
/// ended in between are not counted: the bench's connections stay open throughout.
fn postgres_cpu_seconds() -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    let mut total = 0.0;
    for entry in entries.flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        if !head.ends_with("(postgres") {
            continue;
        }
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        total += (ticks(11) + ticks(12)) / 100.0;
    }
    total
}

/// The replica counts to measure on Postgres: PORTICO_BENCH_REPLICAS (comma-separated), default 1.
fn replica_counts() -> Vec<usize> {
    match std::env::var("PORTICO_BENCH_REPLICAS") {
        Ok(list) => list
            .split(',')
            .map(|n| {
                n.trim()
                    .parse()
                    .expect("PORTICO_BENCH_REPLICAS is a comma-separated list of replica counts")
            })
            .collect(),
        Err(_) => vec![1],
    }
}

/// p50 and p99 of `millis`.
fn percentiles(mut millis: Vec<f64>) -> (f64, f64) {
    if millis.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    millis.sort_by(f64::total_cmp);
    let at = |q: f64| millis[((millis.len() as f64 * q) as usize).min(millis.len() - 1)];
    (at(0.50), at(0.99))
}

struct Report {
    backend: Backend,
    replicas: usize,
    concurrency: usize,
    accepted: usize,
    end_to_end: f64,
    intake: f64,
    accept: (f64, f64),
    trigger_to_success: (f64, f64),
    cpu_per_run_ms: f64,
    database_cpu_per_run_ms: f64,
    not_success: usize,
}

/// `clients` tasks POST runs of `action` until `deadline`, client `i` to server `i % n`;
/// answers each one's accept latencies. Each client is one keep-alive HTTP/1.1 connection
/// driven by hyper's bare client, as a load generator such as wrk would be: it shares the 2
/// cores with the server, so a lean client leaves the figure to the server.
async fn drive(
    servers: &[Portico],
    action: &str,
    clients: usize,
    deadline: Instant,
) -> Vec<Vec<f64>> {
    let path: Arc<str> = format!("/v1/actions/{action}/runs").into();
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let server = &servers[i % servers.len()];
            let address = server.url.trim_start_matches("http://").to_owned();
            let path = path.clone();
            tokio::spawn(async move {
                let stream = tokio::net::TcpStream::connect(&address)
                    .await
                    .expect("server accepts");
                stream.set_nodelay(true).expect("TCP_NODELAY");
                let (mut sender, connection) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream))
                        .await
                        .expect("HTTP/1.1 handshake");
                tokio::spawn(connection);
                let mut millis = Vec::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let request = hyper::Request::post(&*path)
                        .header("host", &address)
                        .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
                        .header("content-type", "application/json")
                        .body(Full::new(Bytes::from_static(b"{}")))
                        .expect("a request");
                    sender.ready().await.expect("connection ready");
                    let response = sender.send_request(request).await.expect("server answers");
                    let status = response.status();
                    let body = response
                        .into_body()
                        .collect()
                        .await
                        .expect("body")
                        .to_bytes();
                    millis.push(t.elapsed().as_secs_f64() * 1e3);
                    assert_eq!(status, 202, "{}", String::from_utf8_lossy(&body));
                }
                millis
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.push(t.await.expect("client task"));
    }
    all
}

/// Waits until no run is PENDING or IN_PROGRESS.
async fn drain(store: &dyn Store) {
    let deadline = Instant::now() + DRAIN_LIMIT;
    loop {
        let pending = store
            .count_runs(portico_store::RunStatus::Pending)
            .await
            .expect("count");
        let running = store
            .count_runs(portico_store::RunStatus::InProgress)
            .await
            .expect("count");
        if pending + running == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{pending} runs still pending and {running} in progress after {DRAIN_LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn bench(backend: Backend, replicas: usize, clients: usize) -> Report {
    let runner = RunnerConfig {
        max_queue: u64::MAX,
        ..RunnerConfig::default()
    };
    let p = Portico::start_with(backend, runner.clone()).await;
    p.upload("noop", NOOP).await;
    p.admin(
        "POST",
        "/v1/actions",
        json!({
            "identifier": "noop",
            "trigger": { "type": "self-service", "operation": "CREATE" },
            "invocationMethod": { "type": "WASM", "plugin": "noop" },
        }),
    )
    .await
    .expect(201);
    // One run first: the plugin is loaded (compiled on the first level) before the clock starts.
    let mut servers = vec![p];
    for _ in 1..replicas {
        servers.push(servers[0].replica(runner.clone()).await);
    }
    let mut warm_ups = Vec::new();
    for server in &servers {
        let warm_up = server.run("noop", json!({})).await;
        assert_eq!(server.finished(&warm_up).await["status"], "SUCCESS");
        warm_ups.push(warm_up);
    }
    let store = portico_store::open(&servers[0].database_url())
        .await
        .expect("store opens");

    eprintln!(
        "{backend:?}, {replicas} replica(s), {clients} clients: posting for {:?}...",
        post_for()
    );
    let cpu = cpu_seconds();
    let database_cpu = postgres_cpu_seconds();
    let first_post: DateTime<Utc> = Utc::now();
    let started = Instant::now();
    let accept = drive(&servers, "noop", clients, started + post_for()).await;
    let posting = started.elapsed();
    let accepted: usize = accept.iter().map(Vec::len).sum();
    drain(store.as_ref()).await;
    let cpu = cpu_seconds() - cpu;
    let database_cpu = match backend {
        Backend::Postgres => postgres_cpu_seconds() - database_cpu,
        Backend::Sqlite => 0.0,
    };

    // Every run, newest first, a page at a time; only the times and status are kept.
    let mut ended = Vec::with_capacity(accepted);
    let mut last_end = first_post;
    let mut not_success = 0;
    let mut filter = RunFilter {
        action: Some("noop".into()),
        limit: PAGE,
        ..RunFilter::default()
    };
    loop {
        let page = store.list_runs(&filter).await.expect("runs listed");
        for run in page.iter().filter(|r| !warm_ups.contains(&r.id)) {
            let end = run.ended_at.expect("an ended run has endedAt");
            last_end = last_end.max(end);
            if run.status == portico_store::RunStatus::Success {
                ended.push((end - run.created_at).as_seconds_f64() * 1e3);
            } else {
                not_success += 1;
                if not_success <= 10 {
                    eprintln!("run {} ended {}: {:?}", run.id, run.status, run.error);
                }
            }
        }
        match page.last() {
            Some(last) if page.len() == PAGE => filter.before = Some(last.id.clone()),
            _ => break,
        }
    }
    assert_eq!(
        ended.len() + not_success,
        accepted,
        "every accepted run is stored"
    );
    drop(store);
    // Replicas before the first server, which owns the database.
    while let Some(server) = servers.pop() {
        drop(server);
    }

    let span = (last_end - first_post).as_seconds_f64();
    Report {
        backend,
        replicas,
        concurrency: clients,
        accepted,
        end_to_end: accepted as f64 / span,
        intake: accepted as f64 / posting.as_secs_f64(),
        accept: percentiles(accept.concat()),
        trigger_to_success: percentiles(ended),
        cpu_per_run_ms: cpu * 1e3 / accepted as f64,
        database_cpu_per_run_ms: database_cpu * 1e3 / accepted as f64,
        not_success,
    }
}

fn main() {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut reports = Vec::new();
    for backend in backends() {
        let replicas = match backend {
            // One process per SQLite file.
            Backend::Sqlite => vec![1],
            Backend::Postgres => replica_counts(),
        };
        for &n in &replicas {
            for clients in levels() {
                reports.push(tokio.block_on(bench(backend, n, clients)));
            }
        }
    }

    println!(
        "no-op plugin runs over HTTP, {:?} of POSTs per level, fresh server and database per \
         level; latencies in ms",
        post_for()
    );
    println!(
        "| backend | replicas | clients | runs accepted | runs/s end to end | intake runs/s \
         | accept p50 | accept p99 | trigger→SUCCESS p50 | trigger→SUCCESS p99 | CPU ms/run \
         | database CPU ms/run | not SUCCESS |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &reports {
        let backend = match r.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        };
        println!(
            "| {backend} | {} | {} | {} | {:.0} | {:.0} | {:.2} | {:.2} | {:.1} | {:.1} | {:.2} \
             | {:.2} | {} |",
            r.replicas,
            r.concurrency,
            r.accepted,
            r.end_to_end,
            r.intake,
            r.accept.0,
            r.accept.1,
            r.trigger_to_success.0,
            r.trigger_to_success.1,
            r.cpu_per_run_ms,
            r.database_cpu_per_run_ms,
            r.not_success
        );
    }
    println!("budget: >= 10,000 runs/s end to end on SQLite");
    let best = reports
        .iter()
        .filter(|r| r.backend == Backend::Sqlite)
        .map(|r| r.end_to_end)
        .fold(0.0, f64::max);
    println!(
        "SQLite best: {best:.0} runs/s end to end: {}",
        if best >= BUDGET_RUNS_PER_S {
            "within budget"
        } else {
            "under budget"
        }
    );
    let failed: usize = reports.iter().map(|r| r.not_success).sum();
    assert_eq!(failed, 0, "every run must end in SUCCESS");
}
