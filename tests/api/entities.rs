//! Entities: create, conflict, upsert, merge, PUT, PATCH, DELETE with dependents, ownership, and
//! every validation keyword (each violation listed in `details` with its path).

use super::blueprints::service_blueprint;
use portico_tests::api::Portico;
use serde_json::{Value, json};

async fn with_blueprints(p: &Portico) {
    p.admin("POST", "/v1/blueprints", service_blueprint())
        .await
        .expect(201);
    p.admin("POST", "/v1/blueprints", json!({ "identifier": "team" }))
        .await
        .expect(201);
    p.admin(
        "POST",
        "/v1/blueprints",
        json!({ "identifier": "deployment", "relations": {
            "service": { "target": "service", "required": true },
            "watchers": { "target": "team", "many": true } } }),
    )
    .await
    .expect(201);
}

fn svc(id: &str, props: Value) -> Value {
    json!({ "identifier": id, "title": id.to_uppercase(), "team": ["payments"], "properties": props })
}

#[tokio::test]
async fn create_get_list_and_conflict() {
    for p in Portico::each().await {
        with_blueprints(&p).await;
        let created = p
            .admin(
                "POST",
                "/v1/blueprints/service/entities",
                svc("pay", json!({ "language": "go" })),
            )
            .await;
        let entity = created.expect(201)["entity"].clone();
        assert_eq!(
            entity["properties"],
            json!({ "language": "go", "replicas": 1 }),
            "the default is applied"
        );
        assert_eq!(entity["team"], json!(["payments"]));
        assert_eq!(entity["createdBy"], "admin");
        let got = p
            .admin("GET", "/v1/blueprints/service/entities/pay", json!(null))
            .await;
        assert_eq!(got.expect(200)["entity"], entity);
        let listed = p
            .admin("GET", "/v1/blueprints/service/entities", json!(null))
            .await;
        assert_eq!(listed.expect(200)["entities"][0]["identifier"], "pay");

        p.admin(
            "POST",
            "/v1/blueprints/service/entities",
            svc("pay", json!({ "language": "go" })),
        )
        .await
        .expect_error(
            409,
            "conflict",
            "entity `pay` of blueprint `service` already exists; use ?upsert=true",
        );
        p.admin(
            "POST",
            "/v1/blueprints/nothing/entities",
            svc("x", json!({})),
        )
        .await
        .expect_error(404, "not_found", "blueprint `nothing` not found");
        p.admin("GET", "/v1/blueprints/service/entities/ghost", json!(null))
            .await
            .expect_error(
                404,
                "not_found",
                "entity `ghost` of blueprint `service` not found",
            );
    }
}

#[tokio::test]
async fn upsert_replaces_and_merge_merges() {
    for p in Portico::each().await {
        with_blueprints(&p).await;
        let first = svc(
            "pay",
            json!({ "language": "go", "slug": "pay", "public": true }),
        );
        p.admin("POST", "/v1/blueprints/service/entities", first)
            .await
            .expect(201);

        let replaced = p
            .admin(
                "POST",
                "/v1/blueprints/service/entities?upsert=true",
                svc("pay", json!({ "language": "rust" })),
            )
            .await;
        assert_eq!(
            replaced.expect(200)["entity"]["properties"],
            json!({ "language": "rust" })
        );

        let merged = p
            .admin(
                "POST",
                "/v1/blueprints/service/entities?upsert=true&merge=true",
                json!({ "identifier": "pay", "properties": { "replicas": 4 } }),
            )
            .await;
        let merged = &merged.expect(200)["entity"];
        assert_eq!(
            merged["properties"],
            json!({ "language": "rust", "replicas": 4 })
        );
        assert_eq!(
            merged["title"], "PAY",
            "fields not sent are kept by a merge"
        );
    }
}

#[tokio::test]
async fn put_replaces_and_patch_merges() {
    for p in Portico::each().await {
        with_blueprints(&p).await;
        p.admin(
            "POST",
            "/v1/blueprints/service/entities",
            svc("pay", json!({ "language": "go", "public": true })),
        )
        .await
        .expect(201);
        let put = p
            .admin(
                "PUT",
                "/v1/blueprints/service/entities/pay",
                json!({ "properties": { "language": "python" } }),
            )
            .await;
        let put = &put.expect(200)["entity"];
        assert_eq!(put["properties"], json!({ "language": "python" }));
        assert_eq!(put["team"], json!([]), "PUT replaces everything");

        let patched = p
            .admin(
                "PATCH",
                "/v1/blueprints/service/entities/pay",
                json!({ "properties": { "replicas": 2, "language": null } }),
            )
            .await;
        // Removing a required property by merging null is refused.
        patched.expect(422);
        let patched = p
            .admin(
                "PATCH",
                "/v1/blueprints/service/entities/pay",
                json!({ "properties": { "replicas": 2 }, "team": "platform" }),
            )
            .await;
        let patched = &patched.expect(200)["entity"];
        assert_eq!(
            patched["properties"],
            json!({ "language": "python", "replicas": 2 })
        );
        assert_eq!(patched["team"], json!(["platform"]));

        p.admin(
            "PATCH",
            "/v1/blueprints/service/entities/ghost",
            json!({ "properties": {} }),
        )
        .await
        .expect_error(404, "not_found", "entity `ghost`");
        p.admin(
            "PUT",
            "/v1/blueprints/service/entities/pay",
            json!({ "identifier": "other", "properties": { "language": "go" } }),
        )
        .await
        .expect_error(422, "invalid", "identifier: must match the path (`pay`)");
    }
}

#[tokio::test]
async fn each_property_rule_is_reported_at_its_path() {
    let cases = [
        (
            json!({}),
            "properties",
            "\"language\" is a required property",
        ),
        (
            json!({ "language": "java" }),
            "properties.language",
            "is not one of",
        ),
        (
            json!({ "language": 5 }),
            "properties.language",
            "is not of type \"string\"",
        ),
        (
            json!({ "language": "go", "replicas": -1 }),
            "properties.replicas",
            "less than the minimum of 0",
        ),
        (
            json!({ "language": "go", "replicas": 51 }),
            "properties.replicas",
            "greater than the maximum of 50",
        ),
        (
            json!({ "language": "go", "slug": "Not_Slug" }),
            "properties.slug",
            "does not match",
        ),
        (
            json!({ "language": "go", "slug": "a" }),
            "properties.slug",
            "shorter than 2 characters",
        ),
        (
            json!({ "language": "go", "slug": "a".repeat(21) }),
            "properties.slug",
            "longer than 20 characters",
        ),
        (
            json!({ "language": "go", "public": "yes" }),
            "properties.public",
            "is not of type \"boolean\"",
        ),
        (
            json!({ "language": "go", "owners": "bob" }),
            "properties.owners",
            "is not of type \"array\"",
        ),
        (
            json!({ "language": "go", "settings": [] }),
            "properties.settings",
            "is not of type \"object\"",
        ),
        (
            json!({ "language": "go", "launched": "yesterday" }),
            "properties.launched",
            "is not a \"date-time\"",
        ),
        (
            json!({ "language": "go", "expires": "soon" }),
            "properties.expires",
            "is not a \"date-time\"",
        ),
        (
            json!({ "language": "go", "docs": "not a url" }),
            "properties.docs",
            "is not a \"uri\"",
        ),
        (
            json!({ "language": "go", "oncall": "nobody" }),
            "properties.oncall",
            "is not a \"email\"",
        ),
        (
            json!({ "language": "go", "ip": "300.1.1.1" }),
            "properties.ip",
            "is not a \"ipv4\"",
        ),
        (
            json!({ "language": "go", "ip6": "::zz" }),
            "properties.ip6",
            "is not a \"ipv6\"",
        ),
        (
            json!({ "language": "go", "colour": "red" }),
            "properties",
            "Additional properties are not allowed",
        ),
    ];
    for p in Portico::each().await {
        with_blueprints(&p).await;
        for (props, path, message) in &cases {
            let answer = p
                .admin(
                    "POST",
                    "/v1/blueprints/service/entities",
                    svc("x", props.clone()),
                )
                .await;
            answer.expect_violation(path, message);
        }
        // Several problems at once are all listed.
        let many = p
            .admin(
                "POST",
                "/v1/blueprints/service/entities",
                svc("x", json!({ "language": "java", "replicas": -1 })),
            )
            .await;
        assert_eq!(many.expect(422)["details"].as_array().unwrap().len(), 2);
        assert_eq!(many.body["message"], "2 problems, listed in details");
        let good = json!({ "language": "go", "launched": "2026-11-28T10:00:00Z", "docs": "https://docs.example.com",
            "oncall": "oncall@example.com", "ip": "10.0.0.1", "ip6": "fe80::1", "readme": "# Hi", "values": "a: 1",
            "lead": "alice", "squad": "payments", "owners": ["a"], "settings": {} });
        p.admin("POST", "/v1/blueprints/service/entities", svc("ok", good))
            .await
            .expect(201);
    }
}

#[tokio::test]
async fn relations_are_checked_against_the_blueprint_and_the_catalog() {
    for p in Portico::each().await {
        with_blueprints(&p).await;
        p.admin(
            "POST",
            "/v1/blueprints/service/entities",
            svc("pay", json!({ "language": "go" })),
        )
        .await
        .expect(201);
        p.admin(
            "POST",
            "/v1/blueprints/team/entities",
            json!({ "identifier": "sre" }),
        )
        .await
        .expect(201);
        let cases = [
            (json!({}), "relations.service", "required"),
            (
                json!({ "service": "ghost" }),
                "relations.service",
                "entity `ghost` of blueprint `service` does not exist",
            ),
            (
                json!({ "service": ["pay"] }),
                "relations.service",
                "must be one identifier",
            ),
            (
                json!({ "service": "pay", "watchers": "sre" }),
                "relations.watchers",
                "must be a list of identifiers",
            ),
            (
                json!({ "service": "pay", "owner": "sre" }),
                "relations.owner",
                "has no relation `owner`",
            ),
        ];
        for (relations, path, message) in &cases {
            let answer = p
                .admin(
                    "POST",
                    "/v1/blueprints/deployment/entities",
                    json!({ "identifier": "d1", "relations": relations }),
                )
                .await;
            answer.expect_violation(path, message);
        }
        p.admin(
            "POST",
            "/v1/blueprints/deployment/entities",
            json!({ "identifier": "d1", "relations": { "service": "pay", "watchers": ["sre"] } }),
        )
        .await
        .expect(201);
    }
}

#[tokio::test]
async fn deleting_an_entity_others_relate_to_needs_delete_dependents() {
    for p in Portico::each().await {
        with_blueprints(&p).await;
        p.admin(
            "POST",
            "/v1/blueprints/service/entities",
            svc("pay", json!({ "language": "go" })),
        )
        .await
        .expect(201);
        p.admin(
            "POST",
            "/v1/blueprints/deployment/entities",
            json!({ "identifier": "d1", "relations": { "service": "pay" } }),
        )
        .await
        .expect(201);
        p.admin("DELETE", "/v1/blueprints/service/entities/pay", json!(null))
            .await
            .expect_error(
                409,
                "conflict",
                "has dependents (deployment/d1); pass ?delete_dependents=true",
            );
        let deleted = p
            .admin(
                "DELETE",
                "/v1/blueprints/service/entities/pay?delete_dependents=true",
                json!(null),
            )
            .await;
        assert_eq!(
            deleted.expect(200)["deleted"],
            json!([{ "blueprint": "service", "identifier": "pay" }, { "blueprint": "deployment", "identifier": "d1" }])
        );
        p.admin("GET", "/v1/blueprints/deployment/entities/d1", json!(null))
            .await
            .expect(404);
    }
}

#[tokio::test]
async fn a_member_deletes_dependents_only_when_they_may_delete_every_one() {
    for p in Portico::each().await {
        with_blueprints(&p).await;
        let bob = p.member("bob", &["payments"]).await;
        p.as_user(
            &bob,
            "POST",
            "/v1/blueprints/service/entities",
            svc("pay", json!({ "language": "go" })),
        )
        .await
        .expect(201);
        // d1 is bob's team's; d2 and d3, which also point at pay, are another team's.
        for (id, team) in [("d1", "payments"), ("d2", "platform"), ("d3", "platform")] {
            p.admin(
                "POST",
                "/v1/blueprints/deployment/entities",
                json!({ "identifier": id, "team": team, "relations": { "service": "pay" } }),
            )
            .await
            .expect(201);
        }
        let cascade = "/v1/blueprints/service/entities/pay?delete_dependents=true";
        let refused = p.as_user(&bob, "DELETE", cascade, json!(null)).await;
        refused.expect_error(
            403,
            "forbidden",
            "you may not delete `deployment/d2`, which depends on `service/pay`: it is owned by \
             [platform] and members may delete only entities owned by one of their teams \
             (payments); nothing was deleted",
        );
        assert!(
            !refused.body["message"].as_str().unwrap().contains("d3"),
            "the first one only"
        );
        for path in [
            "/v1/blueprints/service/entities/pay",
            "/v1/blueprints/deployment/entities/d1",
            "/v1/blueprints/deployment/entities/d2",
        ] {
            p.admin("GET", path, json!(null)).await.expect(200);
        }
        let log = p
            .admin(
                "GET",
                "/v1/audit-log?resource=entity&actor=bob",
                json!(null),
            )
            .await;
        assert_eq!(log.expect(200)["audit"][0]["status"], "FAILURE");
        assert_eq!(log.body["audit"][0]["operation"], "DELETE");

        // Once the others are bob's team's too, the cascade goes through.
        for id in ["d2", "d3"] {
            p.admin(
                "PATCH",
                &format!("/v1/blueprints/deployment/entities/{id}"),
                json!({ "team": ["payments"] }),
            )
            .await
            .expect(200);
        }
        let deleted = p.as_user(&bob, "DELETE", cascade, json!(null)).await;
        assert_eq!(deleted.expect(200)["deleted"].as_array().unwrap().len(), 4);
    }
}

#[tokio::test]
async fn members_change_only_entities_their_teams_own() {
    for p in Portico::each().await {
        with_blueprints(&p).await;
        let bob = p.member("bob", &["payments"]).await;
        // Readable by anyone with a token.
        p.admin(
            "POST",
            "/v1/blueprints/service/entities",
            json!({ "identifier": "core", "team": "platform", "properties": { "language": "go" } }),
        )
        .await
        .expect(201);
        p.as_user(
            &bob,
            "GET",
            "/v1/blueprints/service/entities/core",
            json!(null),
        )
        .await
        .expect(200);

        p.as_user(
            &bob,
            "POST",
            "/v1/blueprints/service/entities",
            svc("pay", json!({ "language": "go" })),
        )
        .await
        .expect(201);
        p.as_user(
            &bob,
            "PATCH",
            "/v1/blueprints/service/entities/pay",
            json!({ "properties": { "replicas": 3 } }),
        )
        .await
        .expect(200);
        p.as_user(
            &bob,
            "PATCH",
            "/v1/blueprints/service/entities/core",
            json!({ "properties": { "replicas": 3 } }),
        )
        .await
        .expect_error(
            403,
            "forbidden",
            "members may change only entities owned by one of their teams (payments)",
        );
        p.as_user(
            &bob,
            "POST",
            "/v1/blueprints/service/entities",
            json!({ "identifier": "nobody", "properties": { "language": "go" } }),
        )
        .await
        .expect_error(403, "forbidden", "Set `team` to one of yours");
        p.as_user(
            &bob,
            "DELETE",
            "/v1/blueprints/service/entities/core",
            json!(null),
        )
        .await
        .expect(403);
        p.as_user(
            &bob,
            "DELETE",
            "/v1/blueprints/service/entities/pay",
            json!(null),
        )
        .await
        .expect(200);
    }
}
