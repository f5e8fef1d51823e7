//! Secret inputs (`encryption: aes256-gcm`): the plugin gets them in clear, and nobody else
//! does: the run, its logs and the audit log show `[REDACTED]`, the database holds them only
//! sealed while the run lives, and not at all once it ends.

use portico_tests::api::Portico;
use portico_tests::artifacts::PROBE;
use portico_tests::server::TestServer;
use serde_json::json;

const SECRET: &str = "ghp_s3cr3t-T0ken-value";

#[tokio::test]
async fn a_secret_input_reaches_only_the_plugin_and_is_gone_when_the_run_ends() {
    for p in Portico::each().await {
        let receiver = TestServer::start().await;
        p.upload("probe", PROBE).await;
        p.admin(
            "POST",
            "/v1/actions",
            json!({
                "identifier": "use_token",
                "trigger": { "type": "self-service", "operation": "CREATE",
                    "userInputs": { "properties": {
                        "token": { "type": "string", "encryption": "aes256-gcm" },
                        "steps": { "type": "array" } }, "required": ["token"] } },
                "invocationMethod": { "type": "WASM", "plugin": "probe",
                    "capabilities": { "http": [{ "url": receiver.origin() }] } }
            }),
        )
        .await
        .expect(201);

        // The plugin tries every way it has to hand the secret back.
        let steps = json!([
            { "log": "using token {{token}} now" },
            { "http": { "method": "POST", "url": receiver.url("/deploy"), "body": "{{token}}" } },
            { "progress": { "percent": 50, "label": "label {{token}}" } },
            { "link": { "title": "title {{token}}", "url": "https://example.com/{{token}}" } },
            { "echo": { "{{token}}": ["output {{token}}"] } },
            { "summary": "summary {{token}}" },
        ]);
        let id = p
            .run(
                "use_token",
                json!({ "properties": { "token": SECRET, "steps": steps } }),
            )
            .await;
        let run = p.finished(&id).await;
        assert_eq!(run["status"], "SUCCESS", "{run}");

        // The plugin had it in clear: the receiver got it.
        let sent = receiver.requests();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].body, SECRET);

        // Nobody else sees it.
        assert_eq!(run["properties"]["token"], "[REDACTED]");
        assert_eq!(run["summary"], "summary [REDACTED]", "{run}");
        assert_eq!(run["progress"]["label"], "label [REDACTED]", "{run}");
        assert_eq!(run["link"][0]["title"], "title [REDACTED]", "{run}");
        assert_eq!(
            run["output"]["results"][4]["ok"],
            json!({ "[REDACTED]": ["output [REDACTED]"] }),
            "{run}"
        );
        let logs = p
            .admin("GET", &format!("/v1/actions/runs/{id}/logs"), json!(null))
            .await;
        let text = logs.expect(200)["logs"].to_string();
        assert!(text.contains("using token [REDACTED] now"), "{text}");
        let audit = p
            .admin("GET", &format!("/v1/audit-log?run_id={id}"), json!(null))
            .await;
        let audit = audit.expect(200).to_string();
        assert!(audit.contains("[REDACTED]"), "{audit}");
        for shown in [run.to_string(), text, audit] {
            assert!(!shown.contains(SECRET), "the secret leaked: {shown}");
        }

        // At rest it was sealed, and it is deleted now that the run ended.
        let store = portico_store::open(&p.database_url()).await.unwrap();
        let stored = store.get_run(&id).await.unwrap().unwrap();
        let payload = stored.payload.value();
        assert!(payload.get("sealed").is_none(), "{payload}");
        assert!(!stored.payload.as_str().contains(SECRET));
        if let Some(path) = p.database_url().strip_prefix("sqlite://") {
            drop(store);
            for file in [path.to_owned(), format!("{path}-wal")] {
                let bytes = std::fs::read(&file).unwrap_or_default();
                let found = bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes());
                assert!(!found, "{file} holds the secret in clear");
            }
        }
    }
}

#[tokio::test]
async fn a_secret_sealed_under_another_host_key_fails_its_run_without_showing_it() {
    use portico_runs::runner::RunnerConfig;
    for backend in portico_tests::api::backends() {
        // Workers off: the run stays PENDING with its secret sealed under this server's key.
        let quiet = RunnerConfig {
            workers: 0,
            ..RunnerConfig::default()
        };
        let p = Portico::start_with(backend, quiet).await;
        p.upload("probe", PROBE).await;
        p.admin(
            "POST",
            "/v1/actions",
            json!({
                "identifier": "use_token",
                "trigger": { "type": "self-service", "operation": "CREATE",
                    "userInputs": { "properties": {
                        "token": { "type": "string", "encryption": "aes256-gcm" },
                        "steps": { "type": "array" } } } },
                "invocationMethod": { "type": "WASM", "plugin": "probe" }
            }),
        )
        .await
        .expect(201);
        let id = p
            .run(
                "use_token",
                json!({ "properties": { "token": SECRET, "steps": [] } }),
            )
            .await;

        // A host with another key picks it up.
        let store = portico_store::open(&p.database_url()).await.unwrap();
        let other = portico_api::AppState::new(store.clone(), portico_tests::runtime().clone());
        let workers = other
            .runner
            .start(tokio_util::sync::CancellationToken::new());
        let run = p.finished(&id).await;
        workers.abort();
        assert_eq!(run["status"], "FAILURE");
        assert_eq!(run["error"]["kind"], "internal");
        let message = run["error"]["message"].as_str().unwrap();
        assert!(message.contains("host key"), "{message}");
        assert!(!run.to_string().contains(SECRET));
    }
}

#[tokio::test]
async fn a_failure_text_holding_a_secret_input_is_redacted() {
    for p in Portico::each().await {
        p.upload("probe", PROBE).await;
        p.admin(
            "POST",
            "/v1/actions",
            json!({
                "identifier": "fail_with_token",
                "trigger": { "type": "self-service", "operation": "CREATE",
                    "userInputs": { "properties": {
                        "token": { "type": "string", "encryption": "aes256-gcm" },
                        "steps": { "type": "array" }, "failOnError": { "type": "boolean" } } } },
                "invocationMethod": { "type": "WASM", "plugin": "probe" }
            }),
        )
        .await
        .expect(201);
        let body = json!({ "properties": { "token": SECRET, "failOnError": true,
            "steps": [{ "fail": "bad token {{token}}" }] } });
        let id = p.run("fail_with_token", body).await;
        let run = p.finished(&id).await;
        assert_eq!(run["status"], "FAILURE");
        assert_eq!(run["error"]["message"], "bad token [REDACTED]", "{run}");
    }
}

#[tokio::test]
async fn an_action_may_name_only_the_secrets_the_operator_allows_it() {
    for p in Portico::each().await {
        p.upload("probe", PROBE).await;
        let action = |id: &str| {
            json!({
                "identifier": id,
                "trigger": { "type": "self-service", "operation": "CREATE" },
                "invocationMethod": { "type": "WASM", "plugin": "probe",
                    "capabilities": { "http": [{ "url": "https://api.example.com",
                        "headers": { "Authorization": "Bearer {{ .secrets.test_token }}" } }] } }
            })
        };
        // `test_token.actions` lists `use_secret` (see portico_tests::runtime).
        p.admin("POST", "/v1/actions", action("use_secret"))
            .await
            .expect(201);
        p.admin("POST", "/v1/actions", action("sneaky"))
            .await
            .expect_violation(
                "invocationMethod.capabilities.http[0].headers.Authorization",
                "secret `test_token` may not be used by action `sneaky`",
            );
    }
}

#[tokio::test]
async fn what_is_reported_with_the_run_token_is_redacted_too() {
    // The plugin holds the run's hand-off token: what it (or anyone with it) reports about the
    // run is scrubbed of the run's secret inputs.
    for p in Portico::each().await {
        let ci = TestServer::start().await;
        p.upload("probe", PROBE).await;
        p.admin(
            "POST",
            "/v1/actions",
            json!({
                "identifier": "hand_token",
                "trigger": { "type": "self-service", "operation": "CREATE",
                    "userInputs": { "properties": {
                        "token": { "type": "string", "encryption": "aes256-gcm" },
                        "steps": { "type": "array" } } } },
                "invocationMethod": { "type": "WASM", "plugin": "probe",
                    "capabilities": { "http": [{ "url": ci.origin() }],
                        "handOff": { "timeoutSeconds": 600 } } }
            }),
        )
        .await
        .expect(201);
        let steps = json!([{ "handOffTo": ci.url("/pipelines") }]);
        let id = p
            .run(
                "hand_token",
                json!({ "properties": { "token": SECRET, "steps": steps } }),
            )
            .await;
        let handed: serde_json::Value = loop {
            if let Some(r) = ci.requests().last() {
                break serde_json::from_str(&r.body).unwrap();
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        let token = handed["token"].as_str().unwrap();
        let send = |method: &'static str, tail: &'static str, body: serde_json::Value| {
            let path = format!("/v1/actions/runs/{id}{tail}");
            let p = &p;
            async move {
                p.send(
                    method,
                    &path,
                    Some(token),
                    Some(body.to_string().into_bytes()),
                )
                .await
            }
        };
        send(
            "POST",
            "/logs",
            json!({ "message": format!("log {SECRET}") }),
        )
        .await
        .expect(201);
        send(
            "PATCH",
            "",
            json!({ "status": "SUCCESS", "statusLabel": format!("label {SECRET}"),
                    "summary": format!("done {SECRET}"),
                    "link": [{ "title": SECRET, "url": format!("https://ci.example.com/{SECRET}") }] }),
        )
        .await
        .expect(200);
        let run = p.finished(&id).await;
        assert_eq!(run["statusLabel"], "label [REDACTED]", "{run}");
        assert_eq!(run["summary"], "done [REDACTED]", "{run}");
        let logs = p
            .admin("GET", &format!("/v1/actions/runs/{id}/logs"), json!(null))
            .await;
        let logs = logs.expect(200).to_string();
        assert!(logs.contains("log [REDACTED]"), "{logs}");
        for shown in [run.to_string(), logs] {
            assert!(!shown.contains(SECRET), "the secret leaked: {shown}");
        }
    }
}

/// "Run again" (`POST /v1/actions/runs/{id}/retry`) starts a new run with the inputs the old one
/// ran with; a secret input was never kept in clear, so it must be given again.
#[tokio::test]
async fn a_run_is_run_again_with_its_inputs_and_its_secret_given_again() {
    for p in Portico::each().await {
        p.upload("probe", PROBE).await;
        p.admin(
            "POST",
            "/v1/actions",
            json!({
                "identifier": "use_token",
                "trigger": { "type": "self-service", "operation": "CREATE",
                    "userInputs": { "properties": {
                        "token": { "type": "string", "encryption": "aes256-gcm" },
                        "steps": { "type": "array" } }, "required": ["token"] } },
                "invocationMethod": { "type": "WASM", "plugin": "probe" }
            }),
        )
        .await
        .expect(201);
        let steps = json!([{ "summary": "done" }]);
        let first = p
            .run(
                "use_token",
                json!({ "properties": { "token": SECRET, "steps": steps } }),
            )
            .await;
        assert_eq!(p.finished(&first).await["status"], "SUCCESS");

        let again = format!("/v1/actions/runs/{first}/retry");
        p.admin("POST", &again, json!({}))
            .await
            .expect_violation("properties.token", "required");
        let answer = p
            .admin("POST", &again, json!({ "properties": { "token": SECRET } }))
            .await;
        let second = answer.expect(202)["run"].clone();
        assert_ne!(second["id"], first);
        assert_eq!(
            second["properties"]["steps"], steps,
            "the inputs it ran with"
        );
        assert_eq!(second["properties"]["token"], "[REDACTED]");
        let second = p.finished(second["id"].as_str().unwrap()).await;
        assert_eq!(second["status"], "SUCCESS", "{second}");

        // Someone else's run is not theirs to run again.
        let bob = p.member("bob", &[]).await;
        p.as_user(
            &bob,
            "POST",
            &again,
            json!({ "properties": { "token": "x" } }),
        )
        .await
        .expect_error(404, "not_found", "not found");
    }
}
