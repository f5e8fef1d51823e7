//! Runs handed to an external system (a CI pipeline): the plugin calls `progress.hand-off`,
//! sends the run's URL and token to the system, and returns; the run stays IN_PROGRESS until the
//! system reports through the API with that token, or the grant's deadline passes.

use portico_tests::api::{ADMIN_TOKEN, Portico};
use portico_tests::artifacts::PROBE;
use portico_tests::server::TestServer;
use serde_json::{Value, json};

/// An action whose probe hands its run to `ci` (granted with `hand_off`, or not).
async fn setup(p: &Portico, ci: &TestServer, hand_off: Option<u32>) {
    p.upload("probe", PROBE).await;
    let mut capabilities = json!({ "http": [{ "url": ci.origin() }] });
    if let Some(seconds) = hand_off {
        capabilities["handOff"] = json!({ "timeoutSeconds": seconds });
    }
    p.admin(
        "PUT",
        "/v1/actions/deploy",
        json!({
            "identifier": "deploy",
            "trigger": { "type": "self-service", "operation": "CREATE",
                "userInputs": { "properties": { "steps": { "type": "array" },
                    "failOnError": { "type": "boolean" } } } },
            "invocationMethod": { "type": "WASM", "plugin": "probe", "capabilities": capabilities }
        }),
    )
    .await;
}

/// Starts a run that hands itself to `ci`; answers its id and what `ci` received.
async fn handed_off(p: &Portico, ci: &TestServer) -> (String, Value) {
    let steps = json!([{ "handOffTo": ci.url("/pipelines") }, { "log": "pipeline started" }]);
    let id = p
        .run(
            "deploy",
            json!({ "properties": { "steps": steps, "failOnError": true } }),
        )
        .await;
    // The plugin has returned once the run's label says it waits for the system.
    let run = loop {
        let now = p.until(&id, &["IN_PROGRESS", "FAILURE"]).await;
        if now["statusLabel"].is_string() || now["status"] == "FAILURE" {
            break now;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(run["status"], "IN_PROGRESS", "{run}");
    let received = ci
        .requests()
        .last()
        .map(|r| r.body.clone())
        .expect("ci called");
    (id, serde_json::from_str(&received).unwrap())
}

async fn report(
    p: &Portico,
    token: &str,
    id: &str,
    method: &str,
    tail: &str,
    body: Value,
) -> portico_tests::api::Answer {
    let path = format!("/v1/actions/runs/{id}{tail}");
    p.send(
        method,
        &path,
        Some(token),
        Some(body.to_string().into_bytes()),
    )
    .await
}

#[tokio::test]
async fn an_external_system_reports_logs_and_the_end_of_a_run_handed_to_it() {
    for p in Portico::each().await {
        let ci = TestServer::start().await;
        setup(&p, &ci, Some(3600)).await;
        let (id, handed) = handed_off(&p, &ci).await;
        assert_eq!(handed["url"], format!("{}/v1/actions/runs/{id}", p.url));
        let token = handed["token"].as_str().unwrap();

        let run = p
            .admin("GET", &format!("/v1/actions/runs/{id}"), json!(null))
            .await;
        let run = run.expect(200)["run"].clone();
        assert_eq!(
            run["statusLabel"],
            "Waiting for the external system's report"
        );
        assert!(run["endedAt"].is_null());
        assert!(!run.to_string().contains(token), "the token is not shown");

        // The system logs and reports progress; the plugin's own lines come first.
        report(
            &p,
            token,
            &id,
            "POST",
            "/logs",
            json!({ "message": "tests passed" }),
        )
        .await
        .expect(201);
        report(
            &p,
            token,
            &id,
            "PATCH",
            "",
            json!({ "statusLabel": "Deploying" }),
        )
        .await
        .expect(200);
        let logs = p
            .admin("GET", &format!("/v1/actions/runs/{id}/logs"), json!(null))
            .await;
        let messages: Vec<String> = logs.expect(200)["logs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["message"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(messages.last().unwrap(), "tests passed");
        assert!(
            messages.contains(&"pipeline started".to_owned()),
            "{messages:?}"
        );

        // Bad reports say what to fix.
        report(&p, token, &id, "PATCH", "", json!({ "status": "DONE" }))
            .await
            .expect_violation("status", "not one of SUCCESS, FAILURE, IN_PROGRESS");
        report(
            &p,
            token,
            &id,
            "POST",
            "/logs",
            json!({ "message": "x", "level": "LOUD" }),
        )
        .await
        .expect_violation("level", "one of TRACE");

        // The end.
        let done = report(&p, token, &id, "PATCH", "", json!({
            "status": "SUCCESS", "summary": "deployed v42", "link": "https://ci.example.com/runs/42" }))
            .await;
        let done = done.expect(200)["run"].clone();
        assert_eq!(done["status"], "SUCCESS");
        assert_eq!(done["summary"], "deployed v42");
        assert!(done["endedAt"].is_string());
        assert_eq!(done["link"][0]["url"], "https://ci.example.com/runs/42");
        report(&p, token, &id, "PATCH", "", json!({ "status": "FAILURE" }))
            .await
            .expect_error(409, "conflict", "already ended (SUCCESS)");

        // Each report is audited under the run token.
        let audit = p
            .admin("GET", &format!("/v1/audit-log?run_id={id}"), json!(null))
            .await;
        let reports: Vec<&Value> = audit.expect(200)["audit"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["operation"] == "REPORT")
            .collect();
        assert_eq!(reports.len(), 2, "{reports:?}");
        assert_eq!(reports[0]["actor"], format!("run-token:{id}"));
    }
}

#[tokio::test]
async fn a_run_token_is_good_for_its_own_run_only_and_users_need_the_admin_role() {
    for p in Portico::each().await {
        let ci = TestServer::start().await;
        setup(&p, &ci, Some(3600)).await;
        let (first, handed) = handed_off(&p, &ci).await;
        let token = handed["token"].as_str().unwrap().to_owned();
        let (second, _) = handed_off(&p, &ci).await;

        report(
            &p,
            &token,
            &second,
            "PATCH",
            "",
            json!({ "status": "SUCCESS" }),
        )
        .await
        .expect_error(
            403,
            "forbidden",
            &format!("for run `{first}`, not `{second}`"),
        );
        let forged = token.replace(&first, &second);
        report(
            &p,
            &forged,
            &second,
            "PATCH",
            "",
            json!({ "status": "SUCCESS" }),
        )
        .await
        .expect_error(401, "unauthorized", "invalid run token");
        let member = p.member("dana", &[]).await;
        report(
            &p,
            &member,
            &second,
            "POST",
            "/logs",
            json!({ "message": "hi" }),
        )
        .await
        .expect_error(403, "forbidden", "the admin role");
        let none = p
            .send(
                "PATCH",
                &format!("/v1/actions/runs/{second}"),
                None,
                Some(b"{}".to_vec()),
            )
            .await;
        none.expect_error(401, "unauthorized", "missing token");

        // An admin may report on any run (e.g. to close one whose system went away).
        report(
            &p,
            ADMIN_TOKEN,
            &second,
            "POST",
            "/logs",
            json!({ "message": "closed by hand", "terminationStatus": "FAILURE" }),
        )
        .await
        .expect(201);
        let closed = p.finished(&second).await;
        assert_eq!(closed["status"], "FAILURE");
        assert_eq!(closed["error"]["kind"], "external");
    }
}

#[tokio::test]
async fn hand_off_needs_its_grant() {
    for p in Portico::each().await {
        let ci = TestServer::start().await;
        setup(&p, &ci, None).await;
        let steps = json!([{ "handOffTo": ci.url("/pipelines") }]);
        let id = p
            .run(
                "deploy",
                json!({ "properties": { "steps": steps, "failOnError": true } }),
            )
            .await;
        let run = p.finished(&id).await;
        assert_eq!(run["status"], "FAILURE");
        assert_eq!(run["error"]["kind"], "denied");
        let message = run["error"]["message"].as_str().unwrap();
        assert!(message.contains("capabilities.handOff"), "{message}");
        assert!(ci.requests().is_empty(), "no token left the host");
    }
}

#[tokio::test]
async fn a_handed_off_run_fails_as_timeout_when_no_report_comes_before_the_deadline() {
    for p in Portico::each().await {
        let ci = TestServer::start().await;
        setup(&p, &ci, Some(1)).await;
        let (id, handed) = handed_off(&p, &ci).await;
        let run = p.finished(&id).await;
        assert_eq!(run["status"], "FAILURE");
        assert_eq!(run["error"]["kind"], "timeout");
        assert!(
            run["error"]["message"]
                .as_str()
                .unwrap()
                .contains("did not report")
        );
        let token = handed["token"].as_str().unwrap();
        report(&p, token, &id, "PATCH", "", json!({ "status": "SUCCESS" }))
            .await
            .expect_error(409, "conflict", "already ended");
    }
}
