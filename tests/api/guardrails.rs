//! Guardrails over HTTP: manual approval (ANY, ALL, decline, expiry, self-approval refused),
//! quotas (429 naming the quota and the count), execution policies, and signed notifications,
//! including a receiver that is down, one at a private address (refused unless the operator
//! allows it) and one that redirects (not followed). Every decision is in the audit log.

use portico_runs::notify::NotifyConfig;
use portico_runs::runner::RunnerConfig;
use portico_tests::api::{Portico, backends};
use portico_tests::artifacts::NOOP;
use portico_tests::server::TestServer;
use serde_json::{Value, json};
use std::time::Duration;

const SECRET: &str = "test-webhook-secret";

/// Servers whose notifications may go to the loopback receivers of these tests.
async fn server() -> Vec<Portico> {
    servers_allowing_private(true).await
}

async fn servers_allowing_private(allow_private: bool) -> Vec<Portico> {
    let mut servers = Vec::new();
    for backend in backends() {
        let config = RunnerConfig {
            notify: NotifyConfig {
                secret: SECRET.into(),
                attempts: 3,
                backoff: Duration::from_millis(50),
                timeout: Duration::from_secs(2),
                allow_private,
            },
            ..RunnerConfig::default()
        };
        servers.push(Portico::start_with(backend, config).await);
    }
    servers
}

/// The no-op action `name` with `extra` fields merged in.
async fn action(p: &Portico, name: &str, extra: Value) {
    p.upload("noop", NOOP).await;
    let mut def = json!({
        "identifier": name,
        "trigger": { "type": "self-service", "operation": "CREATE",
            "userInputs": { "properties": { "ttl": { "type": "string" } } } },
        "invocationMethod": { "type": "WASM", "plugin": "noop" },
    });
    for (k, v) in extra.as_object().unwrap() {
        def[k] = v.clone();
    }
    p.admin("POST", "/v1/actions", def).await.expect(201);
}

async fn run_as(
    p: &Portico,
    token: &str,
    action: &str,
    inputs: Value,
) -> portico_tests::api::Answer {
    p.as_user(
        token,
        "POST",
        &format!("/v1/actions/{action}/runs"),
        json!({ "properties": inputs }),
    )
    .await
}

async fn decide(p: &Portico, token: &str, id: &str, status: &str) -> portico_tests::api::Answer {
    let body = json!({ "status": status, "description": format!("{status} from test") });
    p.as_user(
        token,
        "PATCH",
        &format!("/v1/actions/runs/{id}/approval"),
        body,
    )
    .await
}

fn id_of(answer: &portico_tests::api::Answer) -> String {
    answer.body["run"]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn any_approval_starts_the_run_and_self_approval_is_refused() {
    for p in server().await {
        let ann = p.member("ann", &["platform"]).await;
        let bob = p.member("bob", &["platform"]).await;
        let eve = p.member("eve", &["sales"]).await;
        action(
            &p,
            "deploy",
            json!({ "requiredApproval": { "type": "ANY" },
            "permissions": { "approve": { "teams": ["platform"] } } }),
        )
        .await;

        let asked = run_as(&p, &ann, "deploy", json!({})).await;
        assert_eq!(asked.expect(202)["run"]["status"], "WAITING_FOR_APPROVAL");
        let id = id_of(&asked);

        decide(&p, &ann, &id, "APPROVE").await.expect_error(
            403,
            "forbidden",
            "does not allow self-approval",
        );
        decide(&p, &eve, &id, "APPROVE")
            .await
            .expect_error(403, "forbidden", "not an approver");
        decide(&p, &bob, &id, "MAYBE")
            .await
            .expect_violation("status", "not APPROVE or DECLINE");
        // A reason is shown to everyone who reads the run and sent in notifications: bounded.
        p.as_user(
            &bob,
            "PATCH",
            &format!("/v1/actions/runs/{id}/approval"),
            json!({ "status": "APPROVE", "description": "x".repeat(1001) }),
        )
        .await
        .expect_violation("description", "at most 1000 characters");

        let approvers = p
            .as_user(
                &bob,
                "GET",
                &format!("/v1/actions/runs/{id}/approvers"),
                json!(null),
            )
            .await;
        let listed: Vec<String> = approvers.expect(200)["approvers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                format!(
                    "{}:{}",
                    a["userId"].as_str().unwrap(),
                    a["state"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(
            listed,
            ["bob:PENDING"],
            "the requester is not an approver of their own run"
        );

        decide(&p, &bob, &id, "APPROVE").await.expect(200);
        assert_eq!(p.finished(&id).await["status"], "SUCCESS");
        decide(&p, &bob, &id, "APPROVE").await.expect_error(
            409,
            "conflict",
            "not waiting for approval",
        );

        let audit = p
            .admin("GET", &format!("/v1/audit-log?run_id={id}"), json!(null))
            .await;
        let ops: Vec<String> = audit.expect(200)["audit"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                format!(
                    "{} {} {}",
                    e["actor"].as_str().unwrap(),
                    e["operation"].as_str().unwrap(),
                    e["status"].as_str().unwrap()
                )
            })
            .collect();
        for expected in [
            "bob APPROVE SUCCESS",
            "ann APPROVE FAILURE",
            "eve APPROVE FAILURE",
        ] {
            assert!(
                ops.iter().any(|o| o.eq_ignore_ascii_case(expected)),
                "{expected} in {ops:?}"
            );
        }
    }
}

#[tokio::test]
async fn all_approval_waits_for_every_approver_and_one_decline_ends_the_run() {
    for p in server().await {
        let ann = p.member("ann", &[]).await;
        let bob = p.member("bob", &["platform"]).await;
        let cat = p.member("cat", &["platform"]).await;
        action(
            &p,
            "deploy",
            json!({ "requiredApproval": { "type": "ALL" },
            "permissions": { "approve": { "teams": ["platform"] } } }),
        )
        .await;

        let id = id_of(&run_as(&p, &ann, "deploy", json!({})).await);
        let first = decide(&p, &bob, &id, "APPROVE").await;
        assert_eq!(
            first.expect(200)["run"]["status"],
            "WAITING_FOR_APPROVAL",
            "cat has not decided"
        );
        decide(&p, &cat, &id, "APPROVE").await.expect(200);
        assert_eq!(p.finished(&id).await["status"], "SUCCESS");

        let declined = id_of(&run_as(&p, &ann, "deploy", json!({})).await);
        decide(&p, &bob, &declined, "APPROVE").await.expect(200);
        let run = decide(&p, &cat, &declined, "DECLINE").await;
        let run = run.expect(200)["run"].clone();
        assert_eq!(run["status"], "DECLINED");
        assert_eq!(run["error"]["kind"], "declined");
        assert!(
            run["error"]["message"]
                .as_str()
                .unwrap()
                .contains("DECLINE from test")
        );
    }
}

#[tokio::test]
async fn an_unanswered_run_is_declined_as_expired_and_a_condition_decides_when_approval_is_needed()
{
    for p in server().await {
        action(&p, "env", json!({
            "requiredApproval": { "type": "ANY", "when": "(.inputs.ttl | rtrimstr(\"h\") | tonumber) > 24" },
            "approvalTimeout": "1s" })).await;
        let short = p.run("env", json!({ "properties": { "ttl": "8h" } })).await;
        assert_eq!(
            p.finished(&short).await["status"],
            "SUCCESS",
            "8h needs no approval"
        );

        let long = p
            .run("env", json!({ "properties": { "ttl": "48h" } }))
            .await;
        let run = p.finished(&long).await;
        assert_eq!(run["status"], "DECLINED");
        assert_eq!(run["error"]["kind"], "expired");
        let audit = p
            .admin("GET", &format!("/v1/audit-log?run_id={long}"), json!(null))
            .await;
        let expired = audit.expect(200)["audit"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["operation"] == "DECLINE" && e["reason"] == "expired");
        assert!(expired);

        p.admin(
            "POST",
            "/v1/actions",
            json!({ "identifier": "bad",
            "trigger": { "type": "self-service", "operation": "CREATE" },
            "invocationMethod": { "type": "WASM", "plugin": "noop" },
            "requiredApproval": { "type": "SOME" }, "approvalTimeout": "soon" }),
        )
        .await
        .expect_violation("approvalTimeout", "not a duration");
    }
}

#[tokio::test]
async fn each_quota_refuses_with_429_naming_it_and_its_count() {
    for p in server().await {
        let ann = p.member("ann", &["web"]).await;
        // Runs wait for approval, so they stay live while the test counts them.
        action(
            &p,
            "slow",
            json!({ "requiredApproval": true,
            "quotas": { "maxConcurrentRunsPerUser": 2 } }),
        )
        .await;
        run_as(&p, &ann, "slow", json!({})).await.expect(202);
        run_as(&p, &ann, "slow", json!({})).await.expect(202);
        run_as(&p, &ann, "slow", json!({})).await.expect_error(
            429,
            "quota_exceeded",
            "quota maxConcurrentRunsPerUser is 2 and you already has 2",
        );

        action(
            &p,
            "daily",
            json!({ "quotas": { "maxRunsPerUserPerDay": 1 } }),
        )
        .await;
        let first = id_of(&run_as(&p, &ann, "daily", json!({})).await);
        p.finished(&first).await;
        run_as(&p, &ann, "daily", json!({})).await.expect_error(
            429,
            "quota_exceeded",
            "maxRunsPerUserPerDay is 1",
        );

        p.admin(
            "POST",
            "/v1/blueprints",
            json!({ "identifier": "environment",
            "schema": { "properties": { "expiresAt": { "type": "string", "format": "timer" } } } }),
        )
        .await
        .expect(201);
        p.admin("POST", "/v1/actions", json!({ "identifier": "env",
            "trigger": { "type": "self-service", "operation": "CREATE", "blueprintIdentifier": "environment" },
            "invocationMethod": { "type": "WASM", "plugin": "noop" },
            "quotas": { "maxActiveEntitiesPerTeam": 1 } })).await.expect(201);
        let expired = json!({ "identifier": "old", "team": ["web"], "properties": { "expiresAt": "2020-01-01T00:00:00Z" } });
        p.admin("POST", "/v1/blueprints/environment/entities", expired)
            .await
            .expect(201);
        run_as(&p, &ann, "env", json!({})).await.expect(202);
        let live = json!({ "identifier": "live", "team": ["web"], "properties": { "expiresAt": "2099-01-01T00:00:00+02:00" } });
        p.admin("POST", "/v1/blueprints/environment/entities", live)
            .await
            .expect(201);
        run_as(&p, &ann, "env", json!({})).await.expect_error(
            429,
            "quota_exceeded",
            "maxActiveEntitiesPerTeam is 1 and team web already has 1",
        );

        // Expired entities are found by isExpired, live ones by isNotExpired.
        let search = |op: &str| json!({ "rules": [{ "property": "expiresAt", "operator": op }] });
        let found = p
            .admin("POST", "/v1/entities/search", search("isExpired"))
            .await;
        assert_eq!(found.expect(200)["entities"][0]["identifier"], "old");
        let found = p
            .admin("POST", "/v1/entities/search", search("isNotExpired"))
            .await;
        let live = found.expect(200)["entities"][0].clone();
        assert_eq!(
            live["properties"]["expiresAt"], "2098-12-31T22:00:00.000Z",
            "stored in UTC"
        );
    }
}

#[tokio::test]
async fn racing_requests_against_a_quota_start_exactly_its_limit() {
    for p in server().await {
        let ann = p.member("ann", &["web"]).await;
        // Runs wait for approval, so they stay live while the requests race.
        action(
            &p,
            "slow",
            json!({ "requiredApproval": true,
            "quotas": { "maxConcurrentRunsPerUser": 3 } }),
        )
        .await;
        action(
            &p,
            "daily",
            json!({ "quotas": { "maxRunsPerUserPerDay": 4 } }),
        )
        .await;
        for (name, limit) in [("slow", 3), ("daily", 4)] {
            let racing = (0..24).map(|_| run_as(&p, &ann, name, json!({})));
            let answers = futures_util::future::join_all(racing).await;
            let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
            let accepted = statuses.iter().filter(|s| **s == 202).count();
            let refused = statuses.iter().filter(|s| **s == 429).count();
            assert_eq!(
                (accepted, refused),
                (limit, 24 - limit),
                "{name}: {statuses:?}"
            );
            let stored = p
                .admin(
                    "GET",
                    &format!("/v1/actions/runs?action={name}"),
                    json!(null),
                )
                .await;
            assert_eq!(stored.expect(200)["runs"].as_array().unwrap().len(), limit);
        }
    }
}

#[tokio::test]
async fn a_policy_allows_or_denies_from_catalog_queries_and_fails_closed() {
    for p in server().await {
        p.admin(
            "POST",
            "/v1/blueprints",
            json!({ "identifier": "service",
            "schema": { "properties": {} } }),
        )
        .await
        .expect(201);
        p.admin(
            "POST",
            "/v1/blueprints/service/entities",
            json!({ "identifier": "taken" }),
        )
        .await
        .expect(201);
        action(&p, "create_service", json!({ "permissions": { "execute": { "roles": ["member", "admin"],
            "policy": {
                "queries": { "same_name": { "combinator": "and", "rules": [
                    { "property": "$blueprint", "operator": "=", "value": "service" },
                    { "property": "$identifier", "operator": "=", "value": "{{ .inputs.ttl }}" } ] } },
                "conditions": [ ".results.same_name.entities | length == 0" ] } } } })).await;
        let ann = p.member("ann", &[]).await;
        run_as(&p, &ann, "create_service", json!({ "ttl": "fresh" }))
            .await
            .expect(202);
        run_as(&p, &ann, "create_service", json!({ "ttl": "taken" }))
            .await
            .expect_error(403, "forbidden", "no policy condition holds");

        action(
            &p,
            "broken",
            json!({ "permissions": { "execute": { "roles": ["member"],
            "policy": { "conditions": [ ".inputs.ttl | tonumber > 1" ] } } } }),
        )
        .await;
        let broken = run_as(&p, &ann, "broken", json!({ "ttl": "not a number" })).await;
        broken.expect_error(403, "forbidden", "policy condition");
        // The error says what failed, not the input it failed on.
        assert!(
            !broken.body.to_string().contains("not a number"),
            "{}",
            broken.body
        );
    }
}

#[tokio::test]
async fn a_jq_expression_that_recurses_without_end_is_refused_and_the_server_lives_on() {
    for p in server().await {
        action(
            &p,
            "recursing_policy",
            json!({ "permissions": { "execute": { "roles": ["member"],
                "policy": { "conditions": [ "def f: [f]; f" ] } } } }),
        )
        .await;
        action(
            &p,
            "recursing_form",
            json!({ "trigger": { "type": "self-service", "operation": "CREATE",
                "userInputs": { "properties": {
                    "token": { "type": "string", "encryption": "aes256-gcm" },
                    "ttl": { "type": "string",
                        "visible": { "jqQuery": "def f: [f]; f" } } } } } }),
        )
        .await;
        action(&p, "plain", json!({})).await;
        let ann = p.member("ann", &[]).await;

        // The policy fails closed, says which budget ran out, and shows no input.
        let refused = run_as(
            &p,
            &ann,
            "recursing_policy",
            json!({ "ttl": "hunter2-ttl" }),
        )
        .await;
        refused.expect_error(403, "forbidden", "exceeded its recursion budget");
        assert!(
            !refused.body.to_string().contains("hunter2"),
            "{}",
            refused.body
        );

        // A `visible` condition refuses the run at the expression's path.
        let refused = run_as(
            &p,
            &ann,
            "recursing_form",
            json!({ "token": "hunter2-token", "ttl": "1h" }),
        )
        .await;
        refused.expect_violation(
            "trigger.userInputs.properties.ttl.visible.jqQuery",
            "exceeded its recursion budget",
        );
        assert!(
            !refused.body.to_string().contains("hunter2"),
            "{}",
            refused.body
        );

        // The same server goes on serving.
        run_as(&p, &ann, "plain", json!({ "ttl": "1h" }))
            .await
            .expect(202);
        p.admin("GET", "/v1/actions/plain", Value::Null)
            .await
            .expect(200);
    }
}

#[tokio::test]
async fn notifications_are_signed_and_a_dead_receiver_is_retried_without_affecting_the_run() {
    for p in server().await {
        let receiver = TestServer::start().await;
        let dead = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}/hook", listener.local_addr().unwrap())
        };
        action(&p, "deploy", json!({
            "requiredApproval": true,
            "approvalNotification": { "type": "webhook", "format": "slack", "url": receiver.url("/approvals") },
            "notifications": [
                { "url": receiver.url("/events"), "events": ["RUN_CREATED"], "format": "json" },
                { "url": dead, "events": ["RUN_CREATED"] } ] })).await;
        let id = p.run("deploy", json!({})).await;
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let events = loop {
            let got: Vec<String> = receiver.requests().iter().map(|r| r.path.clone()).collect();
            if got.len() >= 2 {
                break got;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "notifications never came: {got:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(events.contains(&"/approvals".to_owned()), "{events:?}");
        assert!(events.contains(&"/events".to_owned()), "{events:?}");

        for request in receiver.requests() {
            let timestamp: i64 = request
                .header("x-portico-timestamp")
                .unwrap()
                .parse()
                .unwrap();
            let expected = portico_runs::notify::sign(SECRET, timestamp, &request.body);
            assert_eq!(
                request.header("x-portico-signature"),
                Some(expected.as_str())
            );
            let body: Value = serde_json::from_str(&request.body).unwrap();
            if request.path == "/approvals" {
                assert!(
                    body["text"].as_str().unwrap().contains("needs approval"),
                    "{body}"
                );
            } else {
                assert_eq!(body["event"], "RUN_CREATED");
                assert_eq!(body["run"]["id"], id);
            }
        }

        // The dead receiver was tried 3 times and the failure audited; the run did not wait.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let audit = p
                .admin("GET", &format!("/v1/audit-log?run_id={id}"), json!(null))
                .await;
            let entries = audit.expect(200)["audit"].as_array().unwrap().clone();
            let failed = entries
                .iter()
                .find(|e| e["operation"] == "NOTIFY" && e["status"] == "FAILURE");
            if let Some(failed) = failed {
                assert_eq!(failed["after"]["attempts"], 3);
                assert!(
                    failed["reason"]
                        .as_str()
                        .unwrap()
                        .contains("could not connect"),
                    "{failed}"
                );
                assert!(
                    entries
                        .iter()
                        .any(|e| e["operation"] == "NOTIFY" && e["status"] == "SUCCESS")
                );
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no failed delivery audited: {entries:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test]
async fn every_attempt_at_a_delivery_carries_the_same_idempotency_key() {
    for p in server().await {
        let receiver = TestServer::start().await;
        action(
            &p,
            "deploy",
            json!({
            "notifications": [
                { "url": receiver.url("/status/503"), "events": ["RUN_CREATED"] },
                { "url": receiver.url("/events"), "events": ["RUN_CREATED", "SUCCESS"] } ] }),
        )
        .await;
        let id = p.run("deploy", json!({})).await;
        p.finished(&id).await;
        let notified = deliveries(&p, &id, 3).await;
        assert_eq!(notified.len(), 3, "{notified:?}");

        let requests = receiver.requests();
        let keys = |path: &str| -> Vec<String> {
            requests
                .iter()
                .filter(|r| r.path == path)
                .map(|r| {
                    let key = r.header("idempotency-key").expect("an idempotency key");
                    assert_eq!(r.header("x-portico-delivery"), Some(key));
                    key.to_owned()
                })
                .collect()
        };
        // Three attempts at the refusing receiver, one key; each delivery its own key.
        let refused = keys("/status/503");
        assert_eq!(refused.len(), 3, "{refused:?}");
        assert!(refused.iter().all(|k| *k == refused[0]), "{refused:?}");
        let delivered = keys("/events");
        assert_eq!(delivered.len(), 2, "RUN_CREATED and SUCCESS: {delivered:?}");
        assert_ne!(delivered[0], delivered[1]);
        assert!(!delivered.contains(&refused[0]));
        let failed = notified.iter().find(|e| e["status"] == "FAILURE").unwrap();
        assert_eq!(failed["after"]["key"], refused[0].as_str());
        assert!(
            failed["reason"]
                .as_str()
                .unwrap()
                .contains("after 3 attempts: HTTP 503"),
            "{failed}"
        );
    }
}

#[tokio::test]
async fn each_status_is_announced_once_even_for_a_run_started_at_once() {
    for p in server().await {
        let receiver = TestServer::start().await;
        action(
            &p,
            "deploy",
            json!({
            "notifications": [{ "url": receiver.url("/events"),
                "events": ["RUN_CREATED", "IN_PROGRESS", "SUCCESS"] }] }),
        )
        .await;
        let id = p.run("deploy", json!({})).await;
        p.finished(&id).await;
        deliveries(&p, &id, 3).await;
        let mut events: Vec<String> = receiver
            .requests()
            .iter()
            .map(|r| serde_json::from_str::<Value>(&r.body).unwrap()["event"].to_string())
            .collect();
        events.sort();
        assert_eq!(
            events,
            ["\"IN_PROGRESS\"", "\"RUN_CREATED\"", "\"SUCCESS\""]
        );
    }
}

/// The NOTIFY entries of a run's audit log once `count` deliveries have ended (or 20 s pass).
async fn deliveries(p: &Portico, run: &str, count: usize) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let audit = p
            .admin("GET", &format!("/v1/audit-log?run_id={run}"), json!(null))
            .await;
        let notified: Vec<Value> = audit.expect(200)["audit"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["operation"] == "NOTIFY")
            .cloned()
            .collect();
        if notified.len() >= count {
            return notified;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{count} deliveries never ended: {notified:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_receiver_at_a_loopback_address_is_refused_and_audited_unless_the_operator_allows_it() {
    for p in servers_allowing_private(false).await {
        let receiver = TestServer::start().await;
        // One receiver named by its address, one by a name that resolves to loopback.
        let by_name = format!("http://localhost:{}/by-name", receiver.addr.port());
        action(
            &p,
            "deploy",
            json!({ "notifications": [
            { "url": receiver.url("/by-address"), "events": ["RUN_CREATED"] },
            { "url": by_name, "events": ["RUN_CREATED"] } ] }),
        )
        .await;
        let id = p.run("deploy", json!({})).await;

        let notified = deliveries(&p, &id, 2).await;
        for entry in &notified {
            assert_eq!(entry["status"], "FAILURE", "{entry}");
            assert_eq!(entry["after"]["attempts"], 1, "a refusal is not retried");
            let reason = entry["reason"].as_str().unwrap();
            assert!(reason.contains("not a public address"), "{reason}");
            assert!(
                reason.contains("notifications.allow_private")
                    && reason.contains("PORTICO_NOTIFY_ALLOW_PRIVATE=true"),
                "the reason names the setting: {reason}"
            );
        }
        assert!(
            notified
                .iter()
                .any(|e| e["reason"].as_str().unwrap().contains("localhost is")),
            "{notified:?}"
        );
        assert!(
            receiver.requests().is_empty(),
            "nothing reached the receiver: {:?}",
            receiver.requests()
        );
    }
    // The same receiver with the setting on: delivered.
    for p in server().await {
        let receiver = TestServer::start().await;
        action(
            &p,
            "deploy",
            json!({ "notifications": [
            { "url": receiver.url("/by-address"), "events": ["RUN_CREATED"] } ] }),
        )
        .await;
        let id = p.run("deploy", json!({})).await;
        let notified = deliveries(&p, &id, 1).await;
        assert_eq!(notified[0]["status"], "SUCCESS", "{notified:?}");
        assert_eq!(receiver.requests().len(), 1);
    }
}

#[tokio::test]
async fn a_receiver_that_redirects_is_not_followed() {
    for p in server().await {
        let receiver = TestServer::start().await;
        action(
            &p,
            "deploy",
            json!({ "notifications": [
            { "url": receiver.url("/redirect/elsewhere"), "events": ["RUN_CREATED"] } ] }),
        )
        .await;
        let id = p.run("deploy", json!({})).await;

        let notified = deliveries(&p, &id, 1).await;
        assert_eq!(notified[0]["status"], "FAILURE", "{notified:?}");
        assert_eq!(notified[0]["after"]["attempts"], 3);
        let reason = notified[0]["reason"].as_str().unwrap();
        assert!(
            reason.contains("HTTP 307 (redirects are not followed"),
            "{reason}"
        );
        let paths: Vec<String> = receiver.requests().iter().map(|r| r.path.clone()).collect();
        assert_eq!(paths, vec!["/redirect/elsewhere"; 3], "never /elsewhere");
    }
}
