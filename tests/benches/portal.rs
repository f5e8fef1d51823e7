//! What the portal's pages cost at 100,000 entities, and whether its live log keeps up with a
//! plugin writing 1,000 lines a second.
//!
//!     cargo bench -p portico-tests --bench portal
//!     PORTICO_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!         cargo bench -p portico-tests --bench portal
//!
//! Per backend: a server as `portico serve --examples true` starts it, 100,000 `service`
//! entities loaded through the catalog (as the API writes them), then each page fetched 200
//! times, one at a time, by a signed-in client on loopback: the hub, the service table's first
//! page, a table searched by a property, a table page deep in the list (by cursor, in the
//! default order and sorted by title, largest first), and an entity's page. Times are request to last byte at the client, so they bound the server's time
//! from above. Then one run's log gets 1,000 lines/s for 10 s (written as the runner writes
//! them: batches, every 10 ms) while a client follows the run page's event stream and the run
//! page itself is open in headless Chromium: it prints how many lines the stream delivered and
//! how late (p50/p99 from write to arrival), how many the page showed, and how far behind the
//! writer the page fell while it wrote.

use portico_catalog::{Actor, Catalog, EntityInput, OnExisting};
use portico_store::{AuditRecord, RunLogLine, RunRecord, RunStatus};
use portico_tests::api::{ADMIN_TOKEN, Portico, backends, portal_sign_in};
use portico_tests::browser::Browser;
use reqwest::header::COOKIE;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const SERVICES: usize = 100_000;
const IN_FLIGHT: usize = 64;
const FETCHES: usize = 200;
const LINES_PER_SECOND: usize = 1_000;
const LOG_SECONDS: usize = 10;
/// The example `service` blueprint's languages.
const LANGUAGES: &[&str] = &["go", "rust", "python", "typescript"];

fn service(i: usize) -> EntityInput {
    let mut properties = Map::new();
    properties.insert("language".into(), json!(LANGUAGES[i % LANGUAGES.len()]));
    properties.insert("replicas".into(), json!(i % 7));
    properties.insert("description".into(), json!(format!("Service number {i}")));
    EntityInput {
        identifier: Some(format!("svc-{i:06}")),
        title: Some(format!("Service {i}")),
        properties: Some(properties),
        ..EntityInput::default()
    }
}

/// p50 and p99 of milliseconds.
fn percentiles(mut ms: Vec<f64>) -> (f64, f64) {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 * q).ceil() as usize).clamp(1, ms.len()) - 1];
    (at(0.50), at(0.99))
}

async fn load(p: &Portico) -> Duration {
    let store = portico_store::open(&p.database_url()).await.expect("store");
    let catalog = Arc::new(Catalog::new(store));
    let admin = Arc::new(Actor {
        identifier: "admin".into(),
        admin: true,
        teams: Vec::new(),
        origin: "bench".into(),
        run_id: None,
    });
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..IN_FLIGHT)
        .map(|_| {
            let (catalog, admin, next) = (catalog.clone(), admin.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= SERVICES {
                        break;
                    }
                    catalog
                        .create_entity(&admin, "service", service(i), OnExisting::Refuse)
                        .await
                        .unwrap_or_else(|e| panic!("service {i}: {e}"));
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("loader");
    }
    let took = started.elapsed();
    // A table just filled has no planner statistics until autovacuum's next round (up to a
    // minute later), and meanwhile Postgres plans a property filter as a scan of every
    // entity. A server in use has them: take them now, as autovacuum would.
    let url = p.database_url();
    if url.starts_with("postgres") {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .expect("postgres");
        tokio::spawn(connection);
        client
            .batch_execute("ANALYZE entities")
            .await
            .expect("analyze");
    }
    took
}

/// The path of a page's `i`th fetch.
type PathOf = Box<dyn Fn(usize) -> String>;

async fn pages(p: &Portico, http: &reqwest::Client, cookie: &str) -> Vec<(&'static str, f64, f64)> {
    let deep = portico_catalog::search::encode_cursor(&portico_store::EntityRef {
        blueprint: "service".into(),
        identifier: "svc-050000".into(),
    });
    let deep_titled = deep.clone();
    let kinds: [(&str, PathOf); 6] = [
        ("hub", Box::new(|_| "/".into())),
        (
            "catalog table, page 1",
            Box::new(|_| "/catalog/service".into()),
        ),
        (
            "catalog table, searched",
            Box::new(|i| {
                format!(
                    "/catalog/service?prop=language&op=%3D&value={}",
                    LANGUAGES[i % LANGUAGES.len()]
                )
            }),
        ),
        (
            "catalog table, page 1,000",
            Box::new(move |_| format!("/catalog/service?cursor={deep}")),
        ),
        (
            "table by title, page 1,000",
            Box::new(move |_| format!("/catalog/service?sort=-title&cursor={deep_titled}")),
        ),
        (
            "entity page",
            Box::new(|i| format!("/catalog/service/svc-{:06}", (i * 7919) % SERVICES)),
        ),
    ];
    let mut out = Vec::new();
    for (name, path) in &kinds {
        let mut ms = Vec::with_capacity(FETCHES);
        for i in 0..FETCHES {
            let url = format!("{}{}", p.url, path(i));
            let t = Instant::now();
            let answer = http.get(&url).header(COOKIE, cookie).send().await.unwrap();
            let status = answer.status();
            let body = answer.text().await.unwrap();
            ms.push(t.elapsed().as_secs_f64() * 1e3);
            assert_eq!(status, 200, "{url}: {body}");
            assert!(!body.contains("No entities match"), "{url} found nothing");
        }
        let (p50, p99) = percentiles(ms);
        out.push((*name, p50, p99));
    }
    out
}

/// Writes LINES_PER_SECOND lines a second to a running run while its page's stream follows.
/// What following a log at LINES_PER_SECOND showed.
struct Followed {
    /// Lines the event stream delivered.
    arrived: usize,
    /// From a line's write to its arrival on the stream, p50 and p99 (ms).
    lag: (f64, f64),
    /// Lines the run page in Chromium showed once the writing was done.
    shown: usize,
    /// The most lines written but not yet on the page, sampled each 500 ms while writing.
    backlog: usize,
}

/// Writes LINES_PER_SECOND lines a second to a running run while an event-stream client and
/// the run's page in headless Chromium follow it.
async fn live_log(p: &Portico, http: &reqwest::Client, cookie: &str) -> Followed {
    let store = portico_store::open(&p.database_url()).await.expect("store");
    let mut run = RunRecord::accepted("r_bench_log", "scaffold_service", "API", "admin");
    run.status = RunStatus::InProgress;
    run.attempts = 1;
    // Held by a worker of its own for the whole bench, as a run the runner executes is: the
    // server's sweeper leaves a run with a live lease alone.
    let lease = portico_store::now() + chrono::TimeDelta::hours(1);
    let audit = AuditRecord::success("admin", "bench", "RUN", "run", "r_bench_log");
    store
        .create_claimed_run(run, audit, "bench-writer", lease)
        .await
        .expect("run");
    let browser = Browser::start().await;
    browser.goto(&format!("{}/login", p.url)).await;
    browser.fill("#token", ADMIN_TOKEN).await;
    browser.click("form button[type=submit]").await;
    browser.wait_for("header nav").await;
    browser.goto(&format!("{}/runs/r_bench_log", p.url)).await;
    browser.wait_for("#log").await;
    // The page's stream is open once its first heartbeat is in.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let written = Arc::new(AtomicUsize::new(0));
    let mut stream = http
        .get(format!("{}/runs/r_bench_log/events", p.url))
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap();
    let total = LINES_PER_SECOND * LOG_SECONDS;
    let epoch = Instant::now();
    let counter = written.clone();
    let writer = tokio::spawn(async move {
        let per_batch = LINES_PER_SECOND / 100;
        let mut seq = 0i64;
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        while (seq as usize) < total {
            tick.tick().await;
            let sent = epoch.elapsed().as_micros();
            let lines = (0..per_batch)
                .map(|_| {
                    seq += 1;
                    RunLogLine {
                        run_id: "r_bench_log".into(),
                        seq,
                        at: portico_store::now(),
                        level: "INFO".into(),
                        message: format!("sent-at-us {sent}"),
                    }
                })
                .collect();
            store.append_run_logs(lines).await.expect("append");
            counter.store(seq as usize, Ordering::Relaxed);
        }
    });
    // The page's backlog while the writer writes: lines written but not shown yet.
    let client = browser.client().clone();
    let progress = written.clone();
    let sampled = tokio::spawn(async move {
        let mut worst = 0;
        while progress.load(Ordering::Relaxed) < total {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let before = progress.load(Ordering::Relaxed);
            let shown = client
                .execute(
                    "return document.querySelectorAll('#log .line').length;",
                    vec![],
                )
                .await
                .ok()
                .and_then(|v| v.as_u64())
                .unwrap_or(0) as usize;
            worst = worst.max(before.saturating_sub(shown));
        }
        worst
    });
    let mut lags = Vec::with_capacity(total);
    let mut buffer = String::new();
    let deadline = Instant::now() + Duration::from_secs(LOG_SECONDS as u64 + 10);
    while lags.len() < total && Instant::now() < deadline {
        let Ok(Ok(Some(chunk))) =
            tokio::time::timeout(Duration::from_secs(5), stream.chunk()).await
        else {
            break;
        };
        let now = epoch.elapsed().as_micros();
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: "))
                && let Ok(line) = serde_json::from_str::<Value>(data)
                && let Some(sent) = line["message"]
                    .as_str()
                    .and_then(|m| m.strip_prefix("sent-at-us "))
            {
                let sent: u128 = sent.parse().unwrap();
                lags.push((now - sent) as f64 / 1e3);
            }
        }
    }
    writer.await.expect("writer");
    let arrived = lags.len();
    let shown_now = "return document.querySelectorAll('#log .line').length;";
    let mut shown = 0;
    for _ in 0..50 {
        shown = browser.execute(shown_now).await.as_u64().unwrap_or(0) as usize;
        if shown >= total {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let backlog = sampled.await.expect("sampler");
    browser.close().await;
    Followed {
        arrived,
        lag: percentiles(lags),
        shown,
        backlog,
    }
}

#[tokio::main]
async fn main() {
    for backend in backends() {
        let p = Portico::with_examples(backend).await;
        eprintln!("{backend:?}: loading {SERVICES} services...");
        let took = load(&p).await;
        eprintln!("{backend:?}: loaded in {:.1} s", took.as_secs_f64());
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let cookie = portal_sign_in(&http, &p.url, ADMIN_TOKEN, "/")
            .await
            .expect("signed in")
            .cookie;
        println!(
            "\nportal pages at {SERVICES} entities, {backend:?} ({FETCHES} fetches each, one at a time)"
        );
        println!("{:<28} {:>9} {:>9}", "page", "p50 ms", "p99 ms");
        for (name, p50, p99) in pages(&p, &http, &cookie).await {
            println!("{name:<28} {p50:>9.2} {p99:>9.2}");
        }
        let f = live_log(&p, &http, &cookie).await;
        let total = LINES_PER_SECOND * LOG_SECONDS;
        println!(
            "live log at {LINES_PER_SECOND} lines/s for {LOG_SECONDS} s: the stream delivered {} of {total} lines, \
             {:.1} ms after their write at p50 and {:.1} ms at p99; the run page in Chromium showed {} \
             (at most {} lines behind the writer while it wrote, sampled every 500 ms)",
            f.arrived, f.lag.0, f.lag.1, f.shown, f.backlog
        );
    }
}
