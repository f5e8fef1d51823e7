//! What every endpoint shares: health without a token, 401 without a valid token, 400 for
//! malformed JSON (naming the position), 422 for a body that is not an object, 413 past the body
//! limit, 403 for a wrong role; and /openapi.json says so.

use portico_tests::api::{ADMIN_TOKEN, MAX_BODY_BYTES, Portico};
use serde_json::json;

/// Whether a route reads a JSON body (rotating a token takes none).
fn takes_json(method: &str, path: &str) -> bool {
    method != "GET" && method != "DELETE" && !path.ends_with("/rotate")
}

/// Every authenticated route, with a method and a body that would otherwise be acceptable.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/v1/blueprints"),
    ("POST", "/v1/blueprints"),
    ("GET", "/v1/blueprints/service"),
    ("PUT", "/v1/blueprints/service"),
    ("DELETE", "/v1/blueprints/service"),
    ("GET", "/v1/blueprints/service/entities"),
    ("POST", "/v1/blueprints/service/entities"),
    ("GET", "/v1/blueprints/service/entities/a"),
    ("PUT", "/v1/blueprints/service/entities/a"),
    ("PATCH", "/v1/blueprints/service/entities/a"),
    ("DELETE", "/v1/blueprints/service/entities/a"),
    ("POST", "/v1/entities/search"),
    ("GET", "/v1/users"),
    ("POST", "/v1/users"),
    ("GET", "/v1/users/admin"),
    ("PATCH", "/v1/users/admin"),
    ("DELETE", "/v1/users/admin"),
    ("GET", "/v1/users/admin/tokens"),
    ("POST", "/v1/users/admin/tokens"),
    ("DELETE", "/v1/users/admin/tokens/tok_x"),
    ("POST", "/v1/users/admin/tokens/tok_x/rotate"),
    ("GET", "/v1/teams"),
    ("POST", "/v1/teams"),
    ("GET", "/v1/audit-log"),
    ("GET", "/v1/actions"),
    ("POST", "/v1/actions"),
    ("GET", "/v1/actions/a"),
    ("PUT", "/v1/actions/a"),
    ("DELETE", "/v1/actions/a"),
    ("GET", "/v1/actions/a/permissions"),
    ("PATCH", "/v1/actions/a/permissions"),
    ("GET", "/v1/plugins"),
    ("GET", "/v1/plugins/x"),
    ("DELETE", "/v1/plugins/x"),
];

#[tokio::test]
async fn health_readiness_and_openapi_need_no_token() {
    for p in Portico::each().await {
        assert_eq!(
            p.send("GET", "/healthz", None, None).await.expect(200)["ok"],
            true
        );
        let ready = p.send("GET", "/readyz", None, None).await;
        assert_eq!(
            ready.expect(200)["database"],
            if p.backend == portico_tests::api::Backend::Sqlite {
                "sqlite"
            } else {
                "postgres"
            }
        );
        let spec = p.send("GET", "/openapi.json", None, None).await;
        let paths = spec.expect(200)["paths"]
            .as_object()
            .expect("paths")
            .clone();
        for (_, route) in ROUTES {
            let template = route
                .replace("/service/entities/a", "/{blueprint}/entities/{entity}")
                .replace("/blueprints/service", "/blueprints/{blueprint}")
                .replace("/users/admin", "/users/{user}")
                .replace("/tokens/tok_x", "/tokens/{token_id}")
                .replace("/plugins/x", "/plugins/{name}")
                .replace("/actions/a", "/actions/{action}");
            assert!(
                paths.contains_key(&template),
                "{template} is missing from /openapi.json"
            );
        }
    }
}

#[tokio::test]
async fn every_route_refuses_a_missing_or_unknown_token() {
    for p in Portico::each().await {
        for (method, path) in ROUTES {
            p.send(method, path, None, Some(b"{}".to_vec()))
                .await
                .expect_error(
                    401,
                    "unauthorized",
                    "missing token: send `Authorization: Bearer <token>`",
                );
            p.send(
                method,
                path,
                Some("ptc_not_a_real_token"),
                Some(b"{}".to_vec()),
            )
            .await
            .expect_error(401, "unauthorized", "unknown token");
        }
    }
}

#[tokio::test]
async fn every_json_route_answers_400_for_malformed_json_naming_the_position() {
    for p in Portico::each().await {
        for (method, path) in ROUTES.iter().filter(|(m, p)| takes_json(m, p)) {
            let answer = p
                .send(method, path, Some(ADMIN_TOKEN), Some(b"{,}".to_vec()))
                .await;
            answer.expect_error(400, "malformed_json", "line 1 column");
        }
    }
}

#[tokio::test]
async fn every_json_route_answers_422_to_a_body_that_is_not_an_object() {
    for p in Portico::each().await {
        for (method, path) in ROUTES.iter().filter(|(m, p)| takes_json(m, p)) {
            // serde would read a struct from an array of its fields; the API reads objects only.
            for body in ["[null, null]", "\"text\"", "42", "null"] {
                let answer = p
                    .send(
                        method,
                        path,
                        Some(ADMIN_TOKEN),
                        Some(body.as_bytes().to_vec()),
                    )
                    .await;
                answer.expect_error(422, "invalid", "must be a JSON object");
            }
        }
    }
}

#[tokio::test]
async fn openapi_lists_every_status_the_shared_extractors_answer_with_the_error_envelope() {
    let p = Portico::start(portico_tests::api::Backend::Sqlite).await;
    let spec = p.send("GET", "/openapi.json", None, None).await;
    let spec = spec.expect(200);
    assert_eq!(
        spec["components"]["schemas"]["Error"]["required"],
        json!(["ok", "error", "message"])
    );
    let create = &spec["paths"]["/v1/blueprints/{blueprint}/entities"]["post"];
    for status in ["400", "401", "403", "404", "413", "415", "422"] {
        assert_eq!(
            create["responses"][status]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/Error",
            "POST entities, {status}"
        );
    }
    for status in ["200", "201"] {
        assert_eq!(
            create["responses"][status]["content"]["application/json"]["schema"]["properties"]["entity"]
                ["$ref"],
            "#/components/schemas/Entity",
            "POST entities, {status}"
        );
    }
    let body = &create["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(body["required"], json!(["identifier"]));
    assert_eq!(body["additionalProperties"], false);
    // No token, no 401: health answers without one.
    assert!(spec["paths"]["/healthz"]["get"]["responses"]["401"].is_null());
}

#[tokio::test]
async fn every_json_route_answers_413_past_the_body_limit() {
    for p in Portico::each().await {
        let big =
            json!({ "identifier": "x", "description": "a".repeat(MAX_BODY_BYTES) }).to_string();
        for (method, path) in ROUTES.iter().filter(|(m, p)| takes_json(m, p)) {
            let answer = p
                .send(
                    method,
                    path,
                    Some(ADMIN_TOKEN),
                    Some(big.clone().into_bytes()),
                )
                .await;
            answer.expect_error(413, "payload_too_large", "request body limit");
        }
    }
}

#[tokio::test]
async fn admin_routes_answer_403_to_members_saying_which_role_is_needed() {
    for p in Portico::each().await {
        let member = p.member("bob", &["payments"]).await;
        let cases = [
            (
                "POST",
                "/v1/blueprints",
                json!({ "identifier": "x" }),
                "changing blueprints needs the admin role",
            ),
            (
                "PUT",
                "/v1/blueprints/x",
                json!({ "identifier": "x" }),
                "changing blueprints needs the admin role",
            ),
            (
                "GET",
                "/v1/users",
                json!(null),
                "listing users needs the admin role",
            ),
            (
                "POST",
                "/v1/users",
                json!({ "identifier": "eve", "role": "admin" }),
                "creating users needs the admin role",
            ),
            (
                "GET",
                "/v1/users/admin",
                json!(null),
                "reading other users needs the admin role",
            ),
            (
                "PATCH",
                "/v1/users/admin",
                json!({ "role": "member" }),
                "changing users needs the admin role",
            ),
            (
                "DELETE",
                "/v1/users/admin",
                json!(null),
                "deleting users needs the admin role",
            ),
            (
                "GET",
                "/v1/users/admin/tokens",
                json!(null),
                "listing another user's tokens needs the admin role",
            ),
            (
                "GET",
                "/v1/teams",
                json!(null),
                "listing teams needs the admin role",
            ),
            (
                "POST",
                "/v1/teams",
                json!({ "name": "x" }),
                "creating teams needs the admin role",
            ),
        ];
        for (method, path, body, message) in cases {
            p.as_user(&member, method, path, body)
                .await
                .expect_error(403, "forbidden", message);
        }
        p.admin("POST", "/v1/blueprints", json!({ "identifier": "x" }))
            .await
            .expect(201);
        p.as_user(&member, "DELETE", "/v1/blueprints/x", json!(null))
            .await
            .expect_error(403, "forbidden", "deleting blueprints needs the admin role");
    }
}

#[tokio::test]
async fn unknown_routes_answer_404_in_the_envelope() {
    for p in Portico::each().await {
        p.send("GET", "/v1/nothing-here", None, None)
            .await
            .expect_error(404, "not_found", "no such route");
    }
}

/// Every `$ref` in `value`, with where it is.
fn refs(value: &serde_json::Value, at: &str, found: &mut Vec<(String, String)>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, inner) in map {
                if key == "$ref" {
                    found.push((at.to_owned(), inner.as_str().unwrap_or_default().to_owned()));
                } else {
                    refs(inner, &format!("{at}/{key}"), found);
                }
            }
        }
        serde_json::Value::Array(items) => {
            for (i, inner) in items.iter().enumerate() {
                refs(inner, &format!("{at}/{i}"), found);
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn openapi_gives_every_success_answer_a_schema_of_the_ok_envelope() {
    let p = Portico::start(portico_tests::api::Backend::Sqlite).await;
    let answer = p.send("GET", "/openapi.json", None, None).await;
    let spec = answer.expect(200);
    let mut successes = 0;
    for (path, item) in spec["paths"].as_object().expect("paths") {
        if path == "/metrics" {
            // Prometheus's text format, for scrapers (below).
            continue;
        }
        for (method, operation) in item.as_object().expect("an operation map") {
            let responses = operation["responses"].as_object().expect("responses");
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{method} {path} lists no success"
            );
            for (status, response) in responses.iter().filter(|(s, _)| s.starts_with('2')) {
                successes += 1;
                let schema = &response["content"]["application/json"]["schema"];
                let what = format!("{method} {path} {status}");
                assert_eq!(schema["type"], "object", "{what}: {schema}");
                assert_eq!(
                    schema["properties"]["ok"],
                    json!({ "const": true }),
                    "{what}"
                );
                assert!(
                    schema["required"]
                        .as_array()
                        .is_some_and(|r| r.contains(&json!("ok"))),
                    "{what}: `ok` is always sent"
                );
                // The envelope's fields are exactly those listed: a new one needs its schema.
                assert_eq!(schema["additionalProperties"], false, "{what}");
            }
        }
    }
    // 47 JSON operations; creating an entity answers 200 or 201, uploading a plugin 200, 201 or
    // 202.
    assert_eq!(successes, 50);
    let metrics = &spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"];
    assert_eq!(
        metrics["text/plain"]["schema"]["type"], "string",
        "{metrics}"
    );
    // The log route streams on request, as well.
    let logs = &spec["paths"]["/v1/actions/runs/{run_id}/logs"]["get"]["responses"]["200"];
    assert_eq!(
        logs["content"]["text/event-stream"]["schema"]["type"],
        "string"
    );

    let mut found = Vec::new();
    refs(spec, "", &mut found);
    assert!(found.len() > 100, "answers refer to record schemas");
    for (at, target) in found {
        let name = target
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("{at}: {target} is not a component schema"));
        assert!(
            spec["components"]["schemas"][name].is_object(),
            "{at}: {target} does not exist"
        );
    }
    let run = &spec["components"]["schemas"]["Run"];
    assert!(
        run["required"]
            .as_array()
            .expect("required")
            .contains(&json!("endedAt"))
    );
    assert_eq!(
        run["properties"]["endedAt"]["type"],
        json!(["string", "null"])
    );
}

#[tokio::test]
async fn a_limit_outside_its_documented_range_answers_400_naming_the_range() {
    let p = Portico::start(portico_tests::api::Backend::Sqlite).await;
    for (path, range) in [
        ("/v1/actions/runs/r_x/logs", "between 1 and 10000"),
        ("/v1/actions/runs", "between 1 and 1000"),
        ("/v1/audit-log", "between 1 and 1000"),
    ] {
        for limit in ["0", "10001", "47636948803499673518080"] {
            let answer = p
                .admin("GET", &format!("{path}?limit={limit}"), json!(null))
                .await;
            // Past what the server's integers hold, the query string itself is refused.
            let message = if limit.len() > 10 {
                "bad query string"
            } else {
                range
            };
            answer.expect_error(400, "bad_request", message);
        }
    }
    let answer = p.send("GET", "/openapi.json", None, None).await;
    let spec = answer.expect(200);
    let params = &spec["paths"]["/v1/actions/runs/{run_id}/logs"]["get"]["parameters"];
    let limit = params
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "limit"))
        .expect("limit");
    assert_eq!(limit["schema"]["maximum"], 10000);
}
