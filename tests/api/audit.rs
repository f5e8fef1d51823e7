//! `/v1/audit-log`: every mutation with actor, operation, resource, before and after; failed
//! and denied attempts too; filters; members see only what they may see.

use portico_tests::api::Portico;
use serde_json::{Value, json};

async fn entries(p: &Portico, token: &str, query: &str) -> Vec<Value> {
    let answer = p
        .as_user(token, "GET", &format!("/v1/audit-log{query}"), json!(null))
        .await;
    answer.expect(200)["audit"].as_array().unwrap().clone()
}

#[tokio::test]
async fn mutations_are_recorded_with_before_and_after() {
    for p in Portico::each().await {
        let admin = portico_tests::api::ADMIN_TOKEN;
        p.admin("POST", "/v1/blueprints", json!({ "identifier": "service" }))
            .await
            .expect(201);
        p.admin(
            "POST",
            "/v1/blueprints/service/entities",
            json!({ "identifier": "pay", "title": "Pay" }),
        )
        .await
        .expect(201);
        p.admin(
            "PATCH",
            "/v1/blueprints/service/entities/pay",
            json!({ "title": "Payments" }),
        )
        .await
        .expect(200);
        p.admin("DELETE", "/v1/blueprints/service/entities/pay", json!(null))
            .await
            .expect(200);

        let log = entries(&p, admin, "?resource=entity&identifier=service/pay").await;
        let ops: Vec<&str> = log
            .iter()
            .map(|e| e["operation"].as_str().unwrap())
            .collect();
        assert_eq!(ops, ["DELETE", "UPDATE", "CREATE"], "newest first");
        assert_eq!(log[1]["before"]["title"], "Pay");
        assert_eq!(log[1]["after"]["title"], "Payments");
        assert_eq!(log[0]["after"], Value::Null);
        for e in &log {
            assert_eq!(e["actor"], "admin");
            assert_eq!(e["status"], "SUCCESS");
            assert_eq!(e["origin"], "api");
            assert!(e["at"].is_string());
        }
        assert_eq!(
            entries(&p, admin, "?resource=blueprint").await[0]["resourceId"],
            "service"
        );
    }
}

#[tokio::test]
async fn failed_and_denied_attempts_are_recorded_with_the_reason() {
    for p in Portico::each().await {
        let admin = portico_tests::api::ADMIN_TOKEN;
        let bob = p.member("bob", &["payments"]).await;
        p.admin("POST", "/v1/blueprints", json!({ "identifier": "service", "schema": { "properties": { "n": { "type": "number" } } } }))
            .await
            .expect(201);
        p.admin(
            "POST",
            "/v1/blueprints/service/entities",
            json!({ "identifier": "x", "properties": { "n": "one" } }),
        )
        .await
        .expect(422);
        p.as_user(
            &bob,
            "POST",
            "/v1/blueprints",
            json!({ "identifier": "evil" }),
        )
        .await
        .expect(403);
        p.as_user(&bob, "GET", "/v1/users", json!(null))
            .await
            .expect(403);

        let failures: Vec<Value> = entries(&p, admin, "")
            .await
            .into_iter()
            .filter(|e| e["status"] == "FAILURE")
            .collect();
        assert_eq!(failures.len(), 3, "{failures:#?}");
        assert_eq!(failures[0]["actor"], "bob");
        assert!(
            failures[0]["reason"]
                .as_str()
                .unwrap()
                .contains("listing users needs the admin role")
        );
        assert!(
            failures[1]["reason"]
                .as_str()
                .unwrap()
                .contains("changing blueprints needs the admin role")
        );
        assert_eq!(failures[2]["resourceId"], "service/x");
        assert!(
            failures[2]["reason"]
                .as_str()
                .unwrap()
                .contains("properties.n")
        );
    }
}

#[tokio::test]
async fn the_log_is_filtered_and_paged() {
    for p in Portico::each().await {
        let admin = portico_tests::api::ADMIN_TOKEN;
        p.admin("POST", "/v1/blueprints", json!({ "identifier": "service" }))
            .await
            .expect(201);
        for i in 0..5 {
            p.admin(
                "POST",
                "/v1/blueprints/service/entities",
                json!({ "identifier": format!("s{i}") }),
            )
            .await
            .expect(201);
        }
        assert_eq!(
            entries(&p, admin, "?actor=admin&resource=entity")
                .await
                .len(),
            5
        );
        assert!(entries(&p, admin, "?actor=nobody").await.is_empty());
        assert!(
            entries(&p, admin, "?from=2999-01-01T00:00:00Z")
                .await
                .is_empty()
        );
        assert_eq!(
            entries(&p, admin, "?to=2999-01-01T00:00:00Z&resource=entity")
                .await
                .len(),
            5
        );
        let first = p
            .admin("GET", "/v1/audit-log?resource=entity&limit=2", json!(null))
            .await;
        let next = first.expect(200)["next"]
            .as_str()
            .expect("a next page")
            .to_owned();
        let second = entries(
            &p,
            admin,
            &format!("?resource=entity&limit=2&cursor={next}"),
        )
        .await;
        assert_eq!(second[0]["resourceId"], "service/s2");
        p.admin("GET", "/v1/audit-log?from=yesterday", json!(null))
            .await
            .expect_error(400, "bad_request", "`from` must be a date-time");
    }
}

#[tokio::test]
async fn members_see_catalog_changes_and_their_own_attempts_only() {
    for p in Portico::each().await {
        let bob = p.member("bob", &["payments"]).await;
        let carol = p.member("carol", &["payments"]).await;
        p.admin("POST", "/v1/blueprints", json!({ "identifier": "service" }))
            .await
            .expect(201);
        p.as_user(&carol, "GET", "/v1/users", json!(null))
            .await
            .expect(403);
        let seen = entries(&p, &bob, "").await;
        let kinds: Vec<&str> = seen
            .iter()
            .map(|e| e["resourceType"].as_str().unwrap())
            .collect();
        assert!(kinds.contains(&"blueprint"), "{kinds:?}");
        assert!(
            !kinds.contains(&"user") && !kinds.contains(&"team"),
            "{kinds:?}"
        );
        assert!(
            seen.iter().all(|e| e["actor"] != "carol"),
            "carol's failed attempt is hers"
        );
    }
}
