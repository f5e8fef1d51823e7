//! Hostile plugins: each misbehaves in one way and must fail only its own run, with the right
//! kind and a message naming the limit or grant, while well-behaved runs alongside succeed.

use portico_runtime::{FailureKind, MemoryCatalog};
use portico_tests::artifacts::*;
use portico_tests::server::TestServer;
use portico_tests::{Finished, TestRun};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// What a hostile run must end as.
struct Expect {
    kind: Option<FailureKind>,
    message: &'static str,
}

fn fails(kind: FailureKind, message: &'static str) -> Expect {
    Expect {
        kind: Some(kind),
        message,
    }
}

fn check(name: &str, run: &Finished, expect: &Expect) {
    match expect.kind {
        Some(kind) => {
            let failure = run.failure();
            assert_eq!(failure.kind, kind, "{name}: {failure}\n{}", run.logs());
            assert!(
                failure.message.contains(expect.message),
                "{name}: {failure}"
            );
        }
        None => {
            run.outcome();
        }
    }
}

async fn hostile_runs(server: &TestServer) -> Vec<(&'static str, TestRun, Expect)> {
    let loopback_by_name = server.url("/").replace("127.0.0.1", "localhost");
    let loopback_origin = server.origin().replace("127.0.0.1", "localhost");
    vec![
        (
            "infinite loop",
            TestRun::new(INFINITE_LOOP).limits(json!({ "timeoutSeconds": 2 })),
            fails(
                FailureKind::Timeout,
                "time limit of 2 s (limits.timeoutSeconds)",
            ),
        ),
        (
            "memory bomb",
            TestRun::new(MEMORY_BOMB).limits(json!({ "memoryMiB": 32 })),
            fails(FailureKind::Memory, "limit of 32 MiB (limits.memoryMiB)"),
        ),
        (
            "deep recursion",
            TestRun::new(DEEP_RECURSION),
            fails(FailureKind::Trap, "overflowed its stack"),
        ),
        (
            "panic",
            TestRun::new(PANIC),
            fails(
                FailureKind::Trap,
                "the plugin panicked: the plugin gave up: no items to process",
            ),
        ),
        (
            "log flood",
            TestRun::new(LOG_FLOOD).limits(json!({ "logBytes": 65536 })),
            Expect {
                kind: None,
                message: "",
            },
        ),
        (
            "http to a host not granted",
            TestRun::new(HTTP_GET)
                .inputs(json!({ "url": "http://example.com/" }))
                .grant(json!({ "http": [ { "url": server.origin() } ] })),
            fails(
                FailureKind::Denied,
                "HTTP request to http://example.com:80 denied",
            ),
        ),
        (
            "http to a granted name that resolves to loopback",
            TestRun::new(HTTP_GET)
                .inputs(json!({ "url": loopback_by_name }))
                .grant(json!({ "http": [ { "url": loopback_origin } ] })),
            fails(
                FailureKind::Denied,
                "(private or loopback); a grant must name such an address",
            ),
        ),
        (
            "catalog write outside the grant",
            TestRun::new(CATALOG_ESCAPE)
                .grant(json!({ "catalog": { "write": ["service"] } }))
                .catalog(Arc::new(MemoryCatalog::new())),
            fails(
                FailureKind::Denied,
                "catalog write of blueprint `team` denied",
            ),
        ),
        (
            "reads of /etc/passwd and of .. from the scratch folder",
            TestRun::new(FS_ESCAPE).grant(json!({ "filesystem": "scratch" })),
            fails(
                FailureKind::Denied,
                "/etc/passwd: No such file or directory",
            ),
        ),
        (
            "filling its scratch folder past limits.scratchMiB",
            TestRun::new(SCRATCH_FILLER)
                .grant(json!({ "filesystem": "scratch" }))
                .limits(json!({ "scratchMiB": 1 }))
                .inputs(json!({ "steps": [ { "write": { "path": "big", "bytes": 4 << 20 } } ] })),
            Expect {
                kind: None,
                message: "",
            },
        ),
        (
            "reading environment variables",
            TestRun::new(ENV_SNOOP),
            fails(
                FailureKind::Denied,
                "no environment variables or arguments are visible",
            ),
        ),
        (
            "an output of 4 MiB",
            probe(json!([{ "repeat": { "text": "x", "times": 4 << 20 } }])),
            fails(FailureKind::Limit, "(limits.outputBytes)"),
        ),
        (
            "100,000 empty log lines",
            probe(json!([{ "logLines": { "count": 100_000 } }])),
            Expect {
                kind: None,
                message: "",
            },
        ),
        (
            "TRACE to a granted origin",
            TestRun::new(PROBE)
                .inputs(
                    json!({ "steps": [{ "http": { "method": "TRACE", "url": server.url("/") } }],
                    "failOnError": true }),
                )
                .grant(json!({ "http": [ { "url": server.origin() } ] })),
            fails(FailureKind::Denied, "TRACE is never sent"),
        ),
    ]
}

fn probe(steps: serde_json::Value) -> TestRun {
    TestRun::new(PROBE).inputs(json!({ "steps": steps }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_hostile_plugin_fails_only_its_own_run_while_50_good_runs_succeed() {
    let server = TestServer::start().await;
    let hostile = hostile_runs(&server).await;

    let mut handles = Vec::new();
    for (name, run, expect) in hostile {
        handles.push(tokio::spawn(async move { (name, run.run().await, expect) }));
    }
    let good: Vec<_> = (0..50)
        .map(|i| tokio::spawn(TestRun::new(NOOP).inputs(json!({ "n": i })).run()))
        .collect();

    for handle in good {
        let run = handle.await.expect("good run task");
        run.outcome();
        assert!(run.logs().starts_with("noop r_test_"), "{}", run.logs());
    }
    for handle in handles {
        let (name, run, expect) = handle.await.expect("hostile run task");
        check(name, &run, &expect);
        if name == "infinite loop" {
            let ran = run.report.duration;
            assert!(
                ran < Duration::from_secs(3),
                "the loop ran {ran:?}, over 2 s + 1 s"
            );
        }
        if name == "100,000 empty log lines" {
            let lines = run.events.snapshot().logs.len();
            assert_eq!(
                lines, 10_001,
                "limits.logLines (10,000) and the line that says so"
            );
        }
        if name == "log flood" {
            let logs = run.logs();
            let kept: usize = run
                .events
                .snapshot()
                .logs
                .iter()
                .map(|(_, l)| l.len())
                .sum();
            assert!(kept < 65536 + 1024, "the log holds {kept} bytes");
            assert!(
                logs.contains("log limit reached:") && logs.contains("limits.logBytes is 65536"),
                "{logs}"
            );
        }
    }
    assert!(
        server.requests().is_empty(),
        "no hostile request reached the server"
    );
}

#[tokio::test]
async fn a_panic_leaves_the_message_and_a_backtrace_in_the_log() {
    let run = TestRun::new(PANIC).run().await;
    let logs = run.logs();
    assert!(logs.contains("panicked at"), "{logs}");
    assert!(logs.contains("wasm backtrace:"), "{logs}");
    assert!(
        logs.contains("run failed (trap): the plugin panicked"),
        "{logs}"
    );
}

#[tokio::test]
async fn a_run_blocked_in_a_host_call_still_times_out() {
    let server = TestServer::start().await;
    let started = Instant::now();
    let run = TestRun::new(PROBE)
        .inputs(json!({ "steps": [ { "http": { "url": server.url("/slow") } } ] }))
        .grant(json!({ "http": [ { "url": server.origin() } ] }))
        .limits(json!({ "timeoutSeconds": 1 }))
        .run()
        .await;
    assert_eq!(run.failure().kind, FailureKind::Timeout);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_cancelled_run_stops_within_a_second() {
    let cancel = CancellationToken::new();
    let run = tokio::spawn(
        TestRun::new(INFINITE_LOOP)
            .cancel_with(cancel.clone())
            .run(),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cancelled_at = Instant::now();
    cancel.cancel();
    let run = run.await.expect("run task");
    assert_eq!(run.failure().kind, FailureKind::Cancelled);
    assert!(
        cancelled_at.elapsed() < Duration::from_secs(1),
        "{:?}",
        cancelled_at.elapsed()
    );
}
