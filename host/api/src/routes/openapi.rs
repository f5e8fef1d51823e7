//! What every operation of `/openapi.json` shares, added once over the document the route
//! annotations produce: the error envelope's schema, and the statuses the shared extractors
//! answer (401 from the token, 400/413/415/422 from a JSON body, 400 from a query string, 404
//! from a path naming nothing). A fuzzer holds the server to this document, so it must list
//! every status a route can answer.

use serde_json::{Value, json};

/// The error envelope: `{ok: false, error, message, details?}`.
fn error_schema() -> Value {
    json!({
        "type": "object",
        "required": ["ok", "error", "message"],
        "properties": {
            "ok": { "const": false },
            "error": { "type": "string", "description": "a stable code, e.g. `not_found`" },
            "message": { "type": "string", "description": "what to fix" },
            "details": {
                "type": "array",
                "description": "on 422: each problem with its path",
                "items": {
                    "type": "object",
                    "required": ["path", "message"],
                    "properties": { "path": { "type": "string" }, "message": { "type": "string" } }
                }
            }
        }
    })
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
    })
}

/// Adds `status` unless the route's annotation says more about it already.
fn add(responses: &mut serde_json::Map<String, Value>, status: &str, description: &str) {
    responses
        .entry(status)
        .or_insert_with(|| error_response(description));
}

/// Applies the shared conventions to a document produced by utoipa.
pub(crate) fn conventions(mut doc: Value) -> Value {
    doc["components"]["schemas"]["Error"] = error_schema();
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return doc;
    };
    for item in paths.values_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, op) in item.iter_mut() {
            let Some(op) = op.as_object_mut() else {
                continue;
            };
            let secured = op
                .get("security")
                .and_then(Value::as_array)
                .is_some_and(|s| !s.is_empty());
            let params: Vec<String> = op
                .get("parameters")
                .and_then(Value::as_array)
                .map(|ps| {
                    ps.iter()
                        .filter_map(|p| p.get("in").and_then(Value::as_str))
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            let body_types: Vec<String> = op
                .get("requestBody")
                .and_then(|b| b.get("content"))
                .and_then(Value::as_object)
                .map(|c| c.keys().cloned().collect())
                .unwrap_or_default();
            let json_body = body_types.iter().any(|t| t == "application/json");
            let responses = op
                .entry("responses")
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .expect("responses is an object");
            if secured {
                add(responses, "401", "missing, malformed or unknown token");
                if method != "get" {
                    add(responses, "403", "your role or permissions do not allow this");
                }
            }
            if params.iter().any(|p| p == "path") {
                add(responses, "404", "the path names nothing");
            }
            if params.iter().any(|p| p == "query") {
                add(responses, "400", "a query parameter has the wrong type or range");
            }
            if !body_types.is_empty() {
                add(responses, "413", "the body is over the server's limit");
            }
            if json_body {
                add(responses, "400", "the body is not valid JSON");
                add(responses, "415", "the body is not sent as `application/json`");
                add(
                    responses,
                    "422",
                    "the body does not have the expected shape; `details` names each problem",
                );
            }
            // Every 4xx and 5xx carries the envelope, including those the annotations list.
            for (status, response) in responses.iter_mut() {
                if status.starts_with('4') || status.starts_with('5') {
                    let content = &mut response["content"];
                    if content.is_null() {
                        *content = json!({
                            "application/json": { "schema": { "$ref": "#/components/schemas/Error" } }
                        });
                    }
                }
            }
        }
    }
    doc
}
