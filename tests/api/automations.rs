//! Automations over HTTP: entity events start runs that get the event, chains run and a loop is
//! refused, a condition filters events, and an expired timer fires exactly once, even when a
//! second host (a restart, with no memory of the first) scans the same catalog.

use portico_runs::runner::RunnerConfig;
use portico_tests::api::{Portico, backends};
use portico_tests::artifacts::{NOOP, PROBE, TEARDOWN};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn blueprint(p: &Portico, id: &str) {
    p.admin(
        "POST",
        "/v1/blueprints",
        json!({ "identifier": id,
        "schema": { "properties": { "expires": { "type": "string", "format": "timer" } } } }),
    )
    .await
    .expect(201);
}

/// An automation running `plugin` (with `config`, writing `write`) on `event`.
async fn automation(
    p: &Portico,
    id: &str,
    plugin: &str,
    event: Value,
    write: &[&str],
    config: Value,
) {
    let def = json!({
        "identifier": id,
        "trigger": { "type": "automation", "event": event },
        "invocationMethod": { "type": "WASM", "plugin": plugin, "config": config,
            "capabilities": { "catalog": { "write": write } } },
    });
    p.admin("POST", "/v1/actions", def).await.expect(201);
}

async fn runs_of(p: &Portico, action: &str) -> Vec<Value> {
    let runs = p
        .admin(
            "GET",
            &format!("/v1/actions/runs?action={action}"),
            json!(null),
        )
        .await;
    runs.expect(200)["runs"].as_array().unwrap().clone()
}

/// Waits until `action` has `n` runs, all ended; answers them.
async fn ended_runs(p: &Portico, action: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let runs = runs_of(p, action).await;
        if runs.len() >= n && runs.iter().all(|r| r["endedAt"].is_string()) {
            return runs;
        }
        assert!(Instant::now() < deadline, "{action}: {runs:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn upsert(blueprint: &str, id: &str) -> Value {
    json!({ "steps": [{ "upsert": { "blueprint": blueprint, "identifier": id,
        "title": null, "team": [], "properties": {}, "relations": {} } }], "failOnError": true })
}

#[tokio::test]
async fn entity_events_chain_automations_and_a_loop_is_refused() {
    for p in Portico::each().await {
        p.upload("probe", PROBE).await;
        blueprint(&p, "x").await;
        blueprint(&p, "y").await;
        // x created -> a creates y/from-x -> b creates x/from-y -> a again: refused.
        let created = |bp: &str| json!({ "type": "ENTITY_CREATED", "blueprintIdentifier": bp });
        automation(
            &p,
            "a",
            "probe",
            created("x"),
            &["y"],
            upsert("y", "from-x"),
        )
        .await;
        automation(
            &p,
            "b",
            "probe",
            created("y"),
            &["x"],
            upsert("x", "from-y"),
        )
        .await;
        // Filtered out by its condition.
        p.admin("POST", "/v1/actions", json!({ "identifier": "never",
            "trigger": { "type": "automation", "event": created("x"),
                "condition": { "type": "JQ", "expressions": [".diff.after.identifier == \"nope\""],
                    "combinator": "and" } },
            "invocationMethod": { "type": "WASM", "plugin": "probe", "config": upsert("y", "never") } }))
            .await
            .expect(201);

        p.admin(
            "POST",
            "/v1/blueprints/x/entities",
            json!({ "identifier": "start" }),
        )
        .await
        .expect(201);

        let a_runs = ended_runs(&p, "a", 1).await;
        assert_eq!(a_runs[0]["status"], "SUCCESS", "{a_runs:?}");
        let b_runs = ended_runs(&p, "b", 1).await;
        assert_eq!(a_runs[0]["source"], "AUTOMATION");
        assert_eq!(a_runs[0]["properties"]["event"]["type"], "ENTITY_CREATED");
        assert_eq!(
            a_runs[0]["properties"]["diff"]["after"]["identifier"],
            "start"
        );
        assert!(a_runs[0]["properties"]["diff"]["before"].is_null());
        assert_eq!(b_runs[0]["status"], "SUCCESS", "{b_runs:?}");
        p.admin("GET", "/v1/blueprints/x/entities/from-y", json!(null))
            .await
            .expect(200);

        // a did not run again for x/from-y: the refusal is audited.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let audit = p
                .admin(
                    "GET",
                    "/v1/audit-log?resource=action&identifier=a",
                    json!(null),
                )
                .await;
            let refused = audit.expect(200)["audit"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["reason"] == "loop refused: a -> b -> a");
            if refused {
                break;
            }
            assert!(Instant::now() < deadline, "no loop refusal recorded");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(runs_of(&p, "a").await.len(), 1);
        assert!(runs_of(&p, "never").await.is_empty());

        // An automation is not run by request.
        p.admin("POST", "/v1/actions/a/runs", json!({}))
            .await
            .expect_error(409, "conflict", "is an automation");
    }
}

#[tokio::test]
async fn an_expired_timer_fires_its_automation_once_even_after_a_restart() {
    for backend in backends() {
        // The first host scans timers but executes nothing; the second is a restart.
        let quiet = RunnerConfig {
            workers: 0,
            ..RunnerConfig::default()
        };
        let p = Portico::start_with(backend, quiet).await;
        p.upload("noop", NOOP).await;
        blueprint(&p, "env").await;
        automation(
            &p,
            "expired",
            "noop",
            json!({ "type": "TIMER_PROPERTY_EXPIRED",
            "blueprintIdentifier": "env", "propertyIdentifier": "expires" }),
            &[],
            json!({}),
        )
        .await;
        let past =
            json!({ "identifier": "old", "properties": { "expires": "2020-01-01T00:00:00Z" } });
        p.admin("POST", "/v1/blueprints/env/entities", past)
            .await
            .expect(201);
        let future =
            json!({ "identifier": "new", "properties": { "expires": "2999-01-01T00:00:00Z" } });
        p.admin("POST", "/v1/blueprints/env/entities", future)
            .await
            .expect(201);

        let deadline = Instant::now() + Duration::from_secs(20);
        while runs_of(&p, "expired").await.is_empty() {
            assert!(Instant::now() < deadline, "the timer never fired");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let store = portico_store::open(&p.database_url()).await.unwrap();
        let restarted = portico_api::AppState::new(store, portico_tests::runtime().clone());
        let workers = restarted
            .runner
            .start(tokio_util::sync::CancellationToken::new());
        let runs = ended_runs(&p, "expired", 1).await;
        // Several scans by both hosts later, still one run.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let runs_now = runs_of(&p, "expired").await;
        workers.abort();
        assert_eq!(runs_now.len(), 1, "{runs_now:?}");
        assert_eq!(runs[0]["status"], "SUCCESS");
        assert_eq!(runs[0]["entity"]["identifier"], "old");
        assert_eq!(
            runs[0]["properties"]["event"]["type"],
            "TIMER_PROPERTY_EXPIRED"
        );
    }
}

#[tokio::test]
async fn the_teardown_plugin_deletes_an_environment_when_its_ttl_passes() {
    for p in Portico::each().await {
        p.upload("teardown", TEARDOWN).await;
        blueprint(&p, "env").await;
        automation(
            &p,
            "teardown_env",
            "teardown",
            json!({ "type": "TIMER_PROPERTY_EXPIRED",
            "blueprintIdentifier": "env", "propertyIdentifier": "expires" }),
            &["env"],
            json!({}),
        )
        .await;
        let soon =
            portico_catalog::timer::format(chrono::Utc::now() + chrono::Duration::seconds(2));
        p.admin(
            "POST",
            "/v1/blueprints/env/entities",
            json!({ "identifier": "pr-42", "properties": { "expires": soon } }),
        )
        .await
        .expect(201);
        p.admin("GET", "/v1/blueprints/env/entities/pr-42", json!(null))
            .await
            .expect(200);

        let runs = ended_runs(&p, "teardown_env", 1).await;
        assert_eq!(runs[0]["status"], "SUCCESS", "{runs:?}");
        assert_eq!(runs[0]["summary"], "env pr-42 torn down");
        p.admin("GET", "/v1/blueprints/env/entities/pr-42", json!(null))
            .await
            .expect(404);
    }
}

#[tokio::test]
async fn the_dev_environment_example_uses_every_guardrail() {
    for p in Portico::each().await {
        // The embedded default, as `portico serve --examples true` loads it.
        let dir = std::path::Path::new(TEARDOWN).parent().unwrap();
        let state = portico_api::AppState::new(
            portico_store::open(&p.database_url()).await.unwrap(),
            portico_tests::runtime().clone(),
        );
        portico_api::startup::load_plugins_dir(&state, dir)
            .await
            .unwrap();
        portico_api::startup::seed_examples(&state).await.unwrap();
        let dev = p.member("dev", &["web"]).await;
        let lead = p.member("lead", &["platform"]).await;
        let ask = |name: &str, ttl: &str| {
            let body = json!({ "properties": { "name": name, "ttl": ttl } });
            p.as_user(
                &dev,
                "POST",
                "/v1/actions/provision_dev_environment/runs",
                body,
            )
        };

        // Up to 24 h: no approval; the environment carries its TTL.
        let id = ask("pr-1", "8h").await.expect(202)["run"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(p.finished(&id).await["status"], "SUCCESS");
        let env = p
            .admin(
                "GET",
                "/v1/blueprints/environment/entities/pr-1",
                json!(null),
            )
            .await;
        let env = env.expect(200)["entity"].clone();
        assert_eq!(env["team"], json!(["web"]));
        let expires: chrono::DateTime<chrono::Utc> = env["properties"]["expires"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let hours = (expires - chrono::Utc::now()).num_minutes() as f64 / 60.0;
        assert!((7.9..=8.0).contains(&hours), "{hours}");

        // Over 24 h: the platform team approves.
        let long = ask("pr-2", "48h").await;
        assert_eq!(long.expect(202)["run"]["status"], "WAITING_FOR_APPROVAL");
        let long = long.body["run"]["id"].as_str().unwrap().to_owned();
        let approve = json!({ "status": "APPROVE", "description": "for the demo" });
        p.as_user(
            &lead,
            "PATCH",
            &format!("/v1/actions/runs/{long}/approval"),
            approve,
        )
        .await
        .expect(200);
        assert_eq!(p.finished(&long).await["status"], "SUCCESS");

        // At most 3 live environments per team.
        let third = ask("pr-3", "1h").await.expect(202)["run"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        p.finished(&third).await;
        ask("pr-4", "1h").await.expect_error(
            429,
            "quota_exceeded",
            "maxActiveEntitiesPerTeam is 3 and team web already has 3",
        );

        // When a TTL passes, the automation tears the environment down, and the quota frees.
        let past = json!({ "properties": { "expires": "2020-01-01T00:00:00Z" } });
        p.admin("PATCH", "/v1/blueprints/environment/entities/pr-1", past)
            .await
            .expect(200);
        let runs = ended_runs(&p, "teardown_expired_environment", 1).await;
        assert_eq!(runs[0]["status"], "SUCCESS", "{runs:?}");
        assert_eq!(runs[0]["entity"]["identifier"], "pr-1");
        p.admin(
            "GET",
            "/v1/blueprints/environment/entities/pr-1",
            json!(null),
        )
        .await
        .expect(404);
        ask("pr-4", "1h").await.expect(202);
    }
}
