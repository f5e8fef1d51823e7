//! `POST /v1/entities/search`: each operator, the meta-properties, nested groups, `relatedTo`
//! both ways, paging, and invalid queries (422 naming the rule).

use portico_tests::api::Portico;
use serde_json::{Value, json};

async fn catalog(p: &Portico) {
    p.admin("POST", "/v1/blueprints", json!({ "identifier": "team" }))
        .await
        .expect(201);
    p.admin(
        "POST",
        "/v1/blueprints",
        json!({ "identifier": "service",
            "schema": { "properties": {
                "language": { "type": "string" }, "replicas": { "type": "number" },
                "public": { "type": "boolean" }, "tags": { "type": "array" },
                "launched": { "type": "string", "format": "date-time" }, "note": { "type": "string" } } },
            "relations": { "owner": { "target": "team" }, "dependsOn": { "target": "service", "many": true } } }),
    )
    .await
    .expect(201);
    for team in ["sre", "web"] {
        p.admin(
            "POST",
            "/v1/blueprints/team/entities",
            json!({ "identifier": team, "title": team.to_uppercase() }),
        )
        .await
        .expect(201);
    }
    let services = [
        json!({ "identifier": "db", "title": "Database", "team": ["sre"],
            "properties": { "language": "rust", "replicas": 1, "public": false, "tags": ["storage"],
                            "launched": "2022-06-15T00:00:00Z" },
            "relations": { "owner": "sre" } }),
        json!({ "identifier": "cache", "title": "Cache", "team": ["sre", "web"],
            "properties": { "language": "rust", "replicas": 5, "tags": [] },
            "relations": { "owner": "sre", "dependsOn": ["db"] } }),
        json!({ "identifier": "api", "title": "Public API", "team": ["web"],
            "properties": { "language": "go", "replicas": 3, "public": true, "tags": ["edge", "http"],
                            "launched": "2024-03-01T00:00:00Z", "note": "" },
            "relations": { "owner": "web", "dependsOn": ["db", "cache"] } }),
        json!({ "identifier": "worker", "team": [],
            "properties": { "language": "python", "replicas": 0, "launched": "2025-01-10T12:00:00Z", "note": "batch jobs" } }),
    ];
    for s in services {
        p.admin("POST", "/v1/blueprints/service/entities", s)
            .await
            .expect(201);
    }
}

async fn ids(p: &Portico, rules: Value) -> Vec<String> {
    let body = json!({ "combinator": "and", "rules": [ { "property": "$blueprint", "operator": "=", "value": "service" }, rules ] });
    let answer = p.admin("POST", "/v1/entities/search", body).await;
    let mut ids: Vec<String> = answer.expect(200)["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["identifier"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn each_operator_filters_in_the_database() {
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (
            json!({ "property": "language", "operator": "=", "value": "rust" }),
            vec!["cache", "db"],
        ),
        (
            json!({ "property": "language", "operator": "!=", "value": "rust" }),
            vec!["api", "worker"],
        ),
        (
            json!({ "property": "public", "operator": "=", "value": true }),
            vec!["api"],
        ),
        (
            json!({ "property": "public", "operator": "!=", "value": true }),
            vec!["cache", "db", "worker"],
        ),
        (
            json!({ "property": "replicas", "operator": ">", "value": 1 }),
            vec!["api", "cache"],
        ),
        (
            json!({ "property": "replicas", "operator": ">=", "value": 1 }),
            vec!["api", "cache", "db"],
        ),
        (
            json!({ "property": "replicas", "operator": "<", "value": 1 }),
            vec!["worker"],
        ),
        (
            json!({ "property": "replicas", "operator": "<=", "value": 1 }),
            vec!["db", "worker"],
        ),
        (
            json!({ "property": "note", "operator": "contains", "value": "batch" }),
            vec!["worker"],
        ),
        (
            json!({ "property": "tags", "operator": "contains", "value": "storage" }),
            vec!["db"],
        ),
        (
            json!({ "property": "language", "operator": "beginsWith", "value": "py" }),
            vec!["worker"],
        ),
        (
            json!({ "property": "language", "operator": "endsWith", "value": "st" }),
            vec!["cache", "db"],
        ),
        (
            json!({ "property": "language", "operator": "in", "value": ["go", "python"] }),
            vec!["api", "worker"],
        ),
        (
            json!({ "property": "language", "operator": "notIn", "value": ["go", "python"] }),
            vec!["cache", "db"],
        ),
        (
            json!({ "property": "note", "operator": "isEmpty" }),
            vec!["api", "cache", "db"],
        ),
        (
            json!({ "property": "tags", "operator": "isEmpty" }),
            vec!["cache", "worker"],
        ),
        (
            json!({ "property": "launched", "operator": "isNotEmpty" }),
            vec!["api", "db", "worker"],
        ),
        (
            json!({ "property": "launched", "operator": "between",
                 "value": { "from": "2023-01-01T00:00:00Z", "to": "2025-12-31T00:00:00Z" } }),
            vec!["api", "worker"],
        ),
        (
            json!({ "property": "launched", "operator": ">", "value": "2024-01-01T00:00:00Z" }),
            vec!["api", "worker"],
        ),
        (
            json!({ "property": "$identifier", "operator": "=", "value": "db" }),
            vec!["db"],
        ),
        (
            json!({ "property": "$identifier", "operator": "beginsWith", "value": "c" }),
            vec!["cache"],
        ),
        (
            json!({ "property": "$title", "operator": "contains", "value": "API" }),
            vec!["api"],
        ),
        (
            json!({ "property": "$title", "operator": "isEmpty" }),
            vec!["worker"],
        ),
        (
            json!({ "property": "$team", "operator": "=", "value": "sre" }),
            vec!["cache", "db"],
        ),
        (
            json!({ "property": "$team", "operator": "in", "value": ["web"] }),
            vec!["api", "cache"],
        ),
        (
            json!({ "property": "$team", "operator": "isEmpty" }),
            vec!["worker"],
        ),
        (
            json!({ "combinator": "or", "rules": [
            { "property": "language", "operator": "=", "value": "go" },
            { "combinator": "and", "rules": [
                { "property": "language", "operator": "=", "value": "rust" },
                { "property": "replicas", "operator": ">", "value": 2 } ] } ] }),
            vec!["api", "cache"],
        ),
        (
            json!({ "operator": "relatedTo", "blueprint": "service", "value": "db", "direction": "downstream" }),
            vec!["api", "cache"],
        ),
        (
            json!({ "operator": "relatedTo", "blueprint": "service", "value": "api", "direction": "upstream" }),
            vec!["cache", "db"],
        ),
    ];
    for p in Portico::each().await {
        catalog(&p).await;
        for (rule, expected) in &cases {
            assert_eq!(
                ids(&p, rule.clone()).await,
                *expected,
                "{:?}: {rule}",
                p.backend
            );
        }
    }
}

#[tokio::test]
async fn created_and_updated_dates_are_searchable() {
    for p in Portico::each().await {
        catalog(&p).await;
        let before = "2000-01-01T00:00:00Z";
        let rule = json!({ "property": "$createdAt", "operator": ">", "value": before });
        assert_eq!(ids(&p, rule).await.len(), 4);
        let rule = json!({ "property": "$updatedAt", "operator": "between", "value": { "from": before, "to": "2001-01-01T00:00:00Z" } });
        assert!(ids(&p, rule).await.is_empty());
        let related = json!({ "combinator": "and", "rules": [
            { "operator": "relatedTo", "blueprint": "team", "value": "sre", "direction": "downstream" } ] });
        let teams = p.admin("POST", "/v1/entities/search", related).await;
        assert_eq!(
            teams.expect(200)["entities"].as_array().unwrap().len(),
            2,
            "db and cache are owned by sre"
        );
    }
}

#[tokio::test]
async fn results_are_paged_with_a_cursor() {
    for p in Portico::each().await {
        catalog(&p).await;
        let query = json!({ "combinator": "and", "rules": [ { "property": "$blueprint", "operator": "in", "value": ["service", "team"] } ] });
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/v1/entities/search?limit=4&cursor={c}"),
                None => "/v1/entities/search?limit=4".to_owned(),
            };
            let page = p.admin("POST", &path, query.clone()).await;
            let body = page.expect(200);
            for e in body["entities"].as_array().unwrap() {
                seen.push(format!(
                    "{}/{}",
                    e["blueprint"].as_str().unwrap(),
                    e["identifier"].as_str().unwrap()
                ));
            }
            match body["next"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        assert_eq!(
            seen,
            [
                "service/api",
                "service/cache",
                "service/db",
                "service/worker",
                "team/sre",
                "team/web"
            ]
        );
        let listed = p
            .admin(
                "GET",
                "/v1/blueprints/service/entities?limit=3",
                json!(null),
            )
            .await;
        assert_eq!(listed.expect(200)["entities"].as_array().unwrap().len(), 3);
        assert!(listed.body["next"].is_string());
        p.admin("POST", "/v1/entities/search?cursor=garbage", query.clone())
            .await
            .expect_error(422, "invalid", "cursor: not a cursor this server returned");
        p.admin("POST", "/v1/entities/search?limit=0", query)
            .await
            .expect_error(422, "invalid", "limit");
    }
}

#[tokio::test]
async fn invalid_queries_name_the_rule() {
    for p in Portico::each().await {
        let cases = [
            (
                json!({ "combinator": "xor", "rules": [] }),
                "combinator",
                "`xor` is not `and` or `or`",
            ),
            (json!({ "combinator": "and" }), "rules", "required"),
            (
                json!({ "rules": [ { "property": "a", "operator": "~", "value": 1 } ] }),
                "rules[0].operator",
                "unknown operator `~`",
            ),
            (
                json!({ "rules": [ { "operator": "=", "value": 1 } ] }),
                "rules[0].property",
                "required",
            ),
            (
                json!({ "rules": [ { "property": "$owner", "operator": "=", "value": 1 } ] }),
                "rules[0].property",
                "unknown meta-property",
            ),
            (
                json!({ "rules": [ { "property": "a", "operator": "in", "value": "x" } ] }),
                "rules[0].value",
                "takes a list",
            ),
            (
                json!({ "rules": [ { "property": "a", "operator": "between", "value": 3 } ] }),
                "rules[0].value",
                "`between` takes",
            ),
            (
                json!({ "rules": [ { "property": "$createdAt", "operator": ">", "value": "last week" } ] }),
                "rules[0].value",
                "date-time",
            ),
            (
                json!({ "rules": [ { "combinator": "or", "rules": [ { "operator": "relatedTo", "value": "x" } ] } ] }),
                "rules[0].rules[0].blueprint",
                "required",
            ),
        ];
        for (body, path, message) in cases {
            let answer = p.admin("POST", "/v1/entities/search", body).await;
            answer.expect_violation(path, message);
        }
    }
}
