//! A hostile plugin can neither read an injected secret nor make the host keep more than its
//! action's limits allow. Each limit is shown both ways: at its value the plugin is stopped,
//! raised the same plugin goes through.

use portico_runtime::FailureKind;
use portico_tests::server::TestServer;
use portico_tests::{TEST_SECRET, TestRun, artifacts::PROBE};
use serde_json::{Value, json};

fn probe(steps: Value) -> TestRun {
    TestRun::new(PROBE).inputs(json!({ "steps": steps }))
}

fn secret_grant(server: &TestServer) -> Value {
    json!({ "http": [ { "url": server.origin(), "headers": {
        "Authorization": "Bearer {{ .secrets.test_token }}" } } ] })
}

#[tokio::test]
async fn an_origin_that_echoes_the_request_never_shows_the_plugin_the_secret() {
    let server = TestServer::start().await;
    let run = probe(json!([{ "http": { "url": server.url("/echo") } }]))
        .grant(secret_grant(&server))
        .run()
        .await;

    // The secret reached the origin...
    let received = server.requests();
    assert_eq!(
        received[0].header("authorization"),
        Some(format!("Bearer {TEST_SECRET}").as_str())
    );
    // ...which sent it back in headers and a body streamed in 3-byte chunks, as is, in
    // base64 and percent-encoded; the plugin saw only the marker.
    let result = &run.output()["results"][0]["ok"];
    assert_eq!(result["status"], 200, "{result}");
    let body = result["body"].as_str().unwrap();
    assert!(body.contains("authorization: [REDACTED]"), "{body}");
    assert!(
        body.contains("base64: ") && body.contains("escaped: "),
        "{body}"
    );
    let headers = result["headers"].to_string();
    assert!(headers.contains("[REDACTED]"), "{headers}");
    let seen = format!("{}\n{}", run.output(), run.logs());
    for form in forms_of(TEST_SECRET) {
        assert!(!seen.contains(&form), "the plugin saw {form}: {seen}");
    }
}

/// The forms an echo gives the secret in: as is, base64 at each alignment, percent-encoded.
fn forms_of(secret: &str) -> Vec<String> {
    use base64::Engine as _;
    let mut forms = vec![secret.to_owned()];
    for shift in 0..3 {
        let padded = format!("{}{secret}", "x".repeat(shift));
        let encoded = base64::engine::general_purpose::STANDARD.encode(padded);
        // The middle of the encoding, made of the secret's bits alone.
        forms.push(encoded[4..encoded.len() - 4].to_owned());
    }
    forms.push(secret.replace('-', "%2D"));
    forms
}

#[tokio::test]
async fn a_compressed_answer_is_refused_when_the_grant_injects_secrets() {
    let server = TestServer::start().await;
    let steps = json!([{ "http": { "url": server.url("/gzip"),
        "headers": { "accept-encoding": "gzip" } } }]);
    let run = probe(steps.clone())
        .grant(secret_grant(&server))
        .run()
        .await;
    let error = run.output()["results"][0]["error"].to_string();
    assert!(error.to_lowercase().contains("content"), "{error}");
    assert!(
        run.logs().contains("it is compressed (gzip)"),
        "{}",
        run.logs()
    );
    assert_eq!(
        server.requests()[0].header("accept-encoding"),
        Some("identity"),
        "the host asks for an answer it can scan"
    );

    // Without a secret there is nothing to hide: the answer passes as it is.
    let plain = probe(steps)
        .grant(json!({ "http": [ { "url": server.origin() } ] }))
        .run()
        .await;
    assert_eq!(plain.output()["results"][0]["ok"]["status"], 200);
}

#[tokio::test]
async fn trace_is_never_sent_and_methods_and_paths_narrow_a_grant() {
    let server = TestServer::start().await;
    let trace = probe(json!([{ "http": { "method": "TRACE", "url": server.url("/") } }]))
        .grant(json!({ "http": [ { "url": server.origin() } ] }))
        .run()
        .await;
    assert!(
        trace.logs().contains("TRACE is never sent"),
        "{}",
        trace.logs()
    );
    assert!(server.requests().is_empty());

    let grant = json!({ "http": [ { "url": server.origin(), "methods": ["GET"],
        "paths": ["/repos/acme"] } ] });
    let run = probe(json!([
        { "http": { "url": server.url("/repos/acme/pulls") } },
        { "http": { "method": "DELETE", "url": server.url("/repos/acme") } },
        { "http": { "url": server.url("/repos/acme-evil") } },
        { "http": { "url": server.url("/repos/acme/../../admin") } },
    ]))
    .grant(grant)
    .run()
    .await;
    let results = &run.output()["results"];
    assert_eq!(results[0]["ok"]["status"], 200, "{results}");
    for denied in 1..4 {
        assert!(results[denied]["error"].is_string(), "{results}");
    }
    assert!(
        run.logs()
            .contains("the grant for this origin allows methods: GET; paths: /repos/acme"),
        "{}",
        run.logs()
    );
    let paths: Vec<String> = server.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths,
        ["/repos/acme/pulls"],
        "only the allowed request left the host"
    );
}

#[tokio::test]
async fn a_run_sends_at_most_http_requests() {
    let server = TestServer::start().await;
    let steps = json!([
        { "http": { "url": server.url("/1") } },
        { "http": { "url": server.url("/2") } },
        { "http": { "url": server.url("/3") } },
    ]);
    let grant = json!({ "http": [ { "url": server.origin() } ] });
    let capped = probe(steps.clone())
        .grant(grant.clone())
        .limits(json!({ "httpRequests": 2 }))
        .run()
        .await;
    let results = &capped.output()["results"];
    assert_eq!(results[1]["ok"]["status"], 200);
    assert!(results[2]["error"].is_string(), "{results}");
    assert!(
        capped.logs().contains("limits.httpRequests"),
        "{}",
        capped.logs()
    );
    assert_eq!(server.requests().len(), 2);

    let raised = probe(steps)
        .grant(grant)
        .limits(json!({ "httpRequests": 3 }))
        .run()
        .await;
    assert_eq!(raised.output()["results"][2]["ok"]["status"], 200);
}

#[tokio::test]
async fn an_output_over_output_bytes_fails_the_run_and_names_the_limit() {
    let steps = json!([{ "repeat": { "text": "x", "times": 300_000 } }]);
    let capped = probe(steps.clone())
        .limits(json!({ "outputBytes": 100_000 }))
        .run()
        .await;
    let failure = capped.failure();
    assert_eq!(failure.kind, FailureKind::Limit);
    assert!(
        failure
            .message
            .contains("over the action's limit of 100000 (limits.outputBytes)"),
        "{failure}"
    );

    let raised = probe(steps)
        .limits(json!({ "outputBytes": 400_000 }))
        .run()
        .await;
    assert_eq!(
        raised.output()["results"][0]["ok"].as_str().unwrap().len(),
        300_000
    );
}

#[tokio::test]
async fn summary_failure_text_and_labels_are_cut_with_a_marker() {
    let long = "y".repeat(10_000);
    let run = probe(json!([
        { "summary": long },
        { "progress": { "percent": 10, "label": long } },
    ]))
    .run()
    .await;
    let summary = run.outcome().summary.clone().unwrap();
    assert!(summary.len() <= 4096, "{}", summary.len());
    assert!(
        summary.ends_with("[cut: over limits.textBytes (4096 bytes)]"),
        "{summary}"
    );
    let label = run.events.snapshot().progress[0].1.clone().unwrap();
    assert!(
        label.len() <= 256 && label.contains("limits.labelBytes"),
        "{label}"
    );

    let failed = TestRun::new(PROBE)
        .inputs(json!({ "steps": [{ "fail": long }], "failOnError": true }))
        .limits(json!({ "textBytes": 20_000 }))
        .run()
        .await;
    assert_eq!(failed.failure().message, long, "raised, the text is whole");
}

#[tokio::test]
async fn empty_log_lines_are_counted_and_bounded() {
    let steps = json!([{ "logLines": { "count": 200_000 } }]);
    let capped = probe(steps.clone())
        .limits(json!({ "logLines": 1_000 }))
        .run()
        .await;
    let logs = capped.events.snapshot().logs;
    assert_eq!(
        logs.len(),
        1_001,
        "1,000 lines and the one that says what was dropped"
    );
    assert!(
        logs[1_000].1.contains("199000 lines") && logs[1_000].1.contains("limits.logLines"),
        "{:?}",
        logs[1_000]
    );

    let raised = probe(steps)
        .limits(json!({ "logLines": 300_000, "logBytes": 64 << 20 }))
        .run()
        .await;
    assert!(raised.events.snapshot().logs.len() >= 200_000);
}
