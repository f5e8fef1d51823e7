//! `GET /metrics`: Prometheus's text format. Runs started and ended by action, status and
//! failure kind; run duration and accept latency; store latency by operation; plugin loads;
//! HTTP requests by route template (never the raw path) and status; queue depth and outbox
//! backlog. Open by default, behind a token when the operator sets one, or off.
//!
//! Every server of this test process shares one recorder: each test names its actions after
//! itself and its backend, so the counts it reads are its own.

use portico_api::metrics::MetricsAccess;
use portico_tests::api::{ADMIN_TOKEN, Backend, Options, Portico};
use portico_tests::artifacts::{NOOP, PANIC};
use serde_json::json;
use std::collections::BTreeMap;

/// One sample of the text format: `name{label="value",...} value`.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// The samples of a scrape (comment lines left out). Label values here hold no `,` or `"`.
fn samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("`series value`");
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => (name, labels.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split(',')
                .filter(|l| !l.is_empty())
                .map(|l| {
                    let (k, v) = l.split_once('=').expect("label=value");
                    (k.to_owned(), v.trim_matches('"').to_owned())
                })
                .collect();
            Sample {
                name: name.to_owned(),
                labels,
                value: value.parse().expect("a number"),
            }
        })
        .collect()
}

/// The sum of the samples named `name` whose labels include all of `labels`.
fn total(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

/// `GET /metrics` with an optional bearer token: status, content type and body.
async fn get_metrics(p: &Portico, token: Option<&str>) -> (u16, String, String) {
    let mut request = portico_tests::http_client().get(format!("{}/metrics", p.url));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("server answers");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, content_type, response.text().await.expect("body"))
}

/// Scrapes until `ready` holds for the samples (or 30 s pass): a run's end is counted just
/// after it is written, so a client that saw the end may scrape a moment before the count.
async fn scrape_until(p: &Portico, ready: impl Fn(&[Sample]) -> bool) -> (String, Vec<Sample>) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (status, _, text) = get_metrics(p, None).await;
        assert_eq!(status, 200, "{text}");
        let parsed = samples(&text);
        if ready(&parsed) {
            return (text, parsed);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the metrics never showed what was expected:\n{text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn backend_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    }
}

#[tokio::test]
async fn a_run_declined_when_its_approval_times_out_is_counted_as_ended() {
    for backend in portico_tests::api::backends() {
        let p = Portico::start(backend).await;
        let action = format!("metrics_gated_{}", backend_name(backend));
        p.upload("noop", NOOP).await;
        p.admin(
            "POST",
            "/v1/actions",
            json!({
            "identifier": action, "trigger": { "type": "self-service", "operation": "CREATE" },
            "invocationMethod": { "type": "WASM", "plugin": "noop" },
            "requiredApproval": { "type": "ANY" }, "approvalTimeout": "1s" }),
        )
        .await
        .expect(201);
        let id = p.run(&action, json!({})).await;
        assert_eq!(p.finished(&id).await["status"], "DECLINED");
        // The decline is written by the approval scan, not by a worker: it is counted too.
        let labels = [
            ("action", action.as_str()),
            ("status", "DECLINED"),
            ("failure_kind", "none"),
        ];
        scrape_until(&p, |s| total(s, "portico_runs_ended_total", &labels) == 1.0).await;
    }
}

#[tokio::test]
async fn metrics_count_runs_by_action_status_and_failure_kind_and_time_them() {
    for backend in portico_tests::api::backends() {
        let p = Portico::start(backend).await;
        let name = backend_name(backend);
        let (fine, crash) = (
            format!("metrics_noop_{name}"),
            format!("metrics_panic_{name}"),
        );
        p.upload("noop", NOOP).await;
        p.upload("panic", PANIC).await;
        for (action, plugin) in [(&fine, "noop"), (&crash, "panic")] {
            p.admin(
                "POST",
                "/v1/actions",
                json!({
                "identifier": action, "trigger": { "type": "self-service", "operation": "CREATE" },
                "invocationMethod": { "type": "WASM", "plugin": plugin } }),
            )
            .await
            .expect(201);
        }
        let ok = p.run(&fine, json!({})).await;
        assert_eq!(p.finished(&ok).await["status"], "SUCCESS");
        let failed = p.run(&crash, json!({})).await;
        let failed_run = p.finished(&failed).await;
        assert_eq!(failed_run["error"]["kind"], "trap");
        p.send("GET", "/no/such/route/42", None, None)
            .await
            .expect(404);

        let ended = |s: &[Sample], action: &str, status: &str, kind: &str| {
            let labels = [
                ("action", action),
                ("status", status),
                ("failure_kind", kind),
            ];
            total(s, "portico_runs_ended_total", &labels)
        };
        let (text, s) = scrape_until(&p, |s| {
            ended(s, &fine, "SUCCESS", "none") == 1.0 && ended(s, &crash, "FAILURE", "trap") == 1.0
        })
        .await;

        // Runs, by action: started, ended with their status and failure kind, and how long
        // their plugin ran.
        for action in [&fine, &crash] {
            let labels = [("action", action.as_str())];
            assert_eq!(
                total(&s, "portico_runs_started_total", &labels),
                1.0,
                "{action}"
            );
            assert_eq!(
                total(&s, "portico_runs_ended_total", &labels),
                1.0,
                "{action}"
            );
            assert_eq!(
                total(&s, "portico_run_duration_seconds_count", &labels),
                1.0
            );
            let inf = [("action", action.as_str()), ("le", "+Inf")];
            assert_eq!(total(&s, "portico_run_duration_seconds_bucket", &inf), 1.0);
        }
        assert!(
            text.contains("# TYPE portico_runs_started_total counter"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE portico_run_duration_seconds histogram"),
            "{text}"
        );

        // From the request's arrival to the run committed; the store calls that took.
        assert!(total(&s, "portico_run_accept_seconds_count", &[]) >= 2.0);
        let created = total(&s, "portico_store_seconds_count", &[("op", "insert_run")]);
        assert!(created >= 2.0, "{text}");
        for op in ["finish_run", "claim_runs"] {
            assert!(
                total(&s, "portico_store_seconds_count", &[("op", op)]) >= 1.0,
                "{op}: {text}"
            );
        }
        assert!(total(&s, "portico_plugin_load_seconds_count", &[]) >= 1.0);

        // HTTP by route template and status: the runs' POSTs, the polls of each run, the 404.
        let post = [
            ("method", "POST"),
            ("route", "/v1/actions/{action}/runs"),
            ("status", "202"),
        ];
        assert!(
            total(&s, "portico_http_requests_total", &post) >= 2.0,
            "{text}"
        );
        let poll = [("route", "/v1/actions/runs/{run_id}"), ("status", "200")];
        assert!(
            total(&s, "portico_http_requests_total", &poll) >= 2.0,
            "{text}"
        );
        let unmatched = [("route", "unmatched"), ("status", "404")];
        assert!(total(&s, "portico_http_requests_total", &unmatched) >= 1.0);
        let timed = [("method", "POST"), ("route", "/v1/actions/{action}/runs")];
        assert!(total(&s, "portico_http_request_duration_seconds_count", &timed) >= 2.0);
        for id in [&ok, &failed] {
            assert!(
                !text.contains(id.as_str()),
                "a raw path leaked into a label: {id}"
            );
        }
        assert!(
            !text.contains("/no/such/route"),
            "a raw path leaked into a label"
        );

        // The gauges: runs waiting (none now), and the outbox backlog.
        assert!(s.iter().any(|s| s.name == "portico_queue_depth"), "{text}");
        assert!(
            s.iter().any(|s| s.name == "portico_outbox_backlog"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn metrics_are_open_by_default_in_the_text_format() {
    let p = Portico::start(Backend::Sqlite).await;
    let (status, content_type, text) = get_metrics(&p, None).await;
    assert_eq!(status, 200, "{text}");
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let spec = p.send("GET", "/openapi.json", None, None).await;
    let metrics = &spec.expect(200)["paths"]["/metrics"]["get"];
    assert!(
        metrics["responses"]["200"]["content"]["text/plain"].is_object(),
        "{metrics}"
    );
}

#[tokio::test]
async fn metrics_can_require_their_own_token_or_be_turned_off() {
    let token = "ptc_metrics_scraper_token_0123456789";
    let options = Options {
        metrics: MetricsAccess::Token(token.into()),
        ..Options::default()
    };
    let p = Portico::start_options(Backend::Sqlite, options).await;
    for wrong in [None, Some("not-the-token"), Some(ADMIN_TOKEN)] {
        let (status, _, body) = get_metrics(&p, wrong).await;
        assert_eq!(status, 401, "{wrong:?}: {body}");
        assert!(body.contains("PORTICO_METRICS_TOKEN"), "{body}");
    }
    let (status, _, text) = get_metrics(&p, Some(token)).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("portico_http_requests_total"), "{text}");

    let options = Options {
        metrics: MetricsAccess::Off,
        ..Options::default()
    };
    let off = Portico::start_options(Backend::Sqlite, options).await;
    let (status, _, _) = get_metrics(&off, None).await;
    assert_eq!(status, 404, "no route when metrics are off");
}
