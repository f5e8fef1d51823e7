//! 1,000 hostile runs in a row leave the host's resident memory flat. Its own test binary, so
//! that no other test's allocations move the figure.

use portico_runtime::MemoryCatalog;
use portico_tests::artifacts::*;
use portico_tests::{TestRun, rss_kib};
use serde_json::json;
use std::sync::Arc;

/// Cycles through the hostile plugins that end quickly (the loop is covered by the suite).
fn hostile(i: usize, echo: &str) -> TestRun {
    let probe = |steps: serde_json::Value| TestRun::new(PROBE).inputs(json!({ "steps": steps }));
    match i % 10 {
        7 => probe(json!([{ "logLines": { "count": 50_000 } }])),
        // 2 MiB of output against the default 1 MiB limit.
        8 => probe(json!([{ "repeat": { "text": "x", "times": 2 << 20 } }])),
        // An origin that echoes the injected secret back, in 3-byte chunks.
        9 => probe(json!([{ "http": { "url": format!("{echo}/echo") } }])).grant(json!({
            "http": [ { "url": echo, "headers": {
                "Authorization": "Bearer {{ .secrets.test_token }}" } } ] })),
        0 => TestRun::new(PANIC),
        1 => TestRun::new(MEMORY_BOMB).limits(json!({ "memoryMiB": 16 })),
        2 => TestRun::new(DEEP_RECURSION),
        3 => TestRun::new(CATALOG_ESCAPE)
            .grant(json!({ "catalog": { "write": ["service"] } }))
            .catalog(Arc::new(MemoryCatalog::new())),
        4 => TestRun::new(FS_ESCAPE).grant(json!({ "filesystem": "scratch" })),
        5 => TestRun::new(ENV_SNOOP),
        _ => TestRun::new(LOG_FLOOD)
            .inputs(json!({ "mib": 1 }))
            .limits(json!({ "logBytes": 4096 })),
    }
}

async fn batch(from: usize, to: usize, echo: &str) {
    for chunk in (from..to).collect::<Vec<_>>().chunks(8) {
        let runs: Vec<_> = chunk
            .iter()
            .map(|&i| tokio::spawn(hostile(i, echo).run()))
            .collect();
        for run in runs {
            run.await.expect("run task");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_hostile_runs_leave_resident_memory_flat() {
    let server = portico_tests::server::TestServer::start().await;
    let echo = server.origin();
    // Warm up: compile every plugin and touch the pool slots this concurrency uses.
    batch(0, 100, &echo).await;
    let before = rss_kib();
    batch(100, 1100, &echo).await;
    let after = rss_kib();
    println!("resident memory: {before} KiB before, {after} KiB after 1,000 hostile runs");
    assert!(
        after < before + 32 * 1024,
        "resident memory grew from {before} KiB to {after} KiB"
    );
}
