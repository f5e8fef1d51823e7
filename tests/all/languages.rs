//! Python and JavaScript plugins under the limits and failure kinds Rust plugins have (the
//! capabilities themselves run in every language in `capabilities.rs`). An interpreter turns
//! what traps a Rust plugin (out of memory, a bug) into an exception; the SDKs and the host
//! still report it as the same kind, with the reason.

use portico_runtime::{FailureKind, LogLevel};
use portico_tests::TestRun;
use serde_json::{Value, json};

fn probe(guest: &'static str, steps: Value) -> TestRun {
    TestRun::new(guest).inputs(json!({ "steps": steps, "failOnError": true }))
}

async fn memory_beyond_the_limit_fails_the_run_as_memory(guest: &'static str) {
    let run = probe(guest, json!([{ "allocate": 200 }]))
        .limits(json!({ "memoryMiB": 96 }))
        .run()
        .await;
    let failure = run.failure();
    assert_eq!(failure.kind, FailureKind::Memory, "{failure}");
    assert!(
        failure
            .message
            .contains("limit of 96 MiB (limits.memoryMiB)"),
        "{failure}"
    );
}

async fn a_plugin_that_never_returns_times_out(guest: &'static str) {
    let run = probe(guest, json!([{ "spin": null }]))
        .limits(json!({ "timeoutSeconds": 1 }))
        .run()
        .await;
    assert_eq!(
        run.failure().kind,
        FailureKind::Timeout,
        "{}",
        run.failure()
    );
    assert!(run.failure().message.contains("limits.timeoutSeconds"));
}

async fn an_uncaught_exception_fails_the_run_with_its_type_and_stack_in_the_log(
    guest: &'static str,
) {
    let run = probe(guest, json!([{ "raise": "the database was not there" }]))
        .run()
        .await;
    let failure = run.failure();
    assert_eq!(failure.kind, FailureKind::Plugin, "{failure}");
    assert!(
        failure
            .message
            .contains("Error: the database was not there"),
        "the type and the message: {failure}"
    );
    let errors: Vec<String> = run
        .events
        .snapshot()
        .logs
        .into_iter()
        .filter(|(level, _)| *level == LogLevel::Error)
        .map(|(_, line)| line)
        .collect();
    assert!(
        errors.join("\n").contains("the database was not there")
            && errors.join("\n").lines().count() > 1,
        "the log has the exception with its stack: {errors:?}"
    );
}

async fn each_failure_kind_reaches_the_user_as_the_plugin_said(guest: &'static str) {
    for (step, kind, message) in [
        (
            json!({ "invalid": "name taken" }),
            FailureKind::Plugin,
            "invalid input: name taken",
        ),
        (
            json!({ "fail": "upstream 500" }),
            FailureKind::Plugin,
            "upstream 500",
        ),
        (
            json!({ "deny": "no access to prod" }),
            FailureKind::Denied,
            "no access to prod",
        ),
    ] {
        let run = probe(guest, json!([step])).run().await;
        assert_eq!(run.failure().kind, kind, "{}", run.failure());
        assert_eq!(run.failure().message, message);
    }
}

async fn stdout_and_stderr_are_log_lines_within_the_log_limit(guest: &'static str) {
    let run = probe(
        guest,
        json!([
            { "print": "hello from stdout" },
            { "logLines": { "count": 5000, "text": "a line of the flood" } },
        ]),
    )
    .limits(json!({ "logBytes": 4096 }))
    .run()
    .await;
    assert!(run.report.result.is_ok(), "{:?}", run.report.result);
    let recorded = run.events.snapshot();
    assert!(
        recorded
            .logs
            .contains(&(LogLevel::Info, "hello from stdout".into()))
    );
    let kept: usize = recorded.logs.iter().map(|(_, line)| line.len()).sum();
    assert!(kept < 4096 + 200, "the log stays within logBytes: {kept}");
    assert!(
        recorded
            .logs
            .iter()
            .any(|(_, line)| line.contains("dropped")),
        "the log says lines were dropped"
    );
}

per_guest!(
    [python = PY_PROBE, javascript = JS_PROBE]
    memory_beyond_the_limit_fails_the_run_as_memory,
    a_plugin_that_never_returns_times_out,
    an_uncaught_exception_fails_the_run_with_its_type_and_stack_in_the_log,
    each_failure_kind_reaches_the_user_as_the_plugin_said,
    stdout_and_stderr_are_log_lines_within_the_log_limit,
);
