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
                    add(
                        responses,
                        "403",
                        "your role or permissions do not allow this",
                    );
                }
            }
            if params.iter().any(|p| p == "path") {
                add(responses, "404", "the path names nothing");
            }
            if params.iter().any(|p| p == "query") {
                add(
                    responses,
                    "400",
                    "a query parameter has the wrong type or range",
                );
            }
            if !body_types.is_empty() {
                add(responses, "413", "the body is over the server's limit");
            }
            if json_body {
                add(responses, "400", "the body is not valid JSON");
                add(
                    responses,
                    "415",
                    "the body is not sent as `application/json`",
                );
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

/// `[A-Za-z0-9@_.-]{1,100}`: user and team names.
const NAME: &str = "^[A-Za-z0-9@_.-]{1,100}$";
/// `[A-Za-z0-9@_=-]{1,100}`: blueprint identifiers.
const BLUEPRINT_ID: &str = "^[A-Za-z0-9@_=-]{1,100}$";
/// 1-200 characters without whitespace or control characters: entity identifiers.
const ENTITY_ID: &str = "^[^\\s\\x00-\\x1f\\x7f-\\x9f]{1,200}$";

/// A closed object: the server refuses fields it does not know (`deny_unknown_fields`).
fn closed(required: &[&str], properties: Value) -> Value {
    json!({ "type": "object", "required": required, "properties": properties,
        "additionalProperties": false })
}

fn entity_body(identifier_required: bool) -> Value {
    let required: &[&str] = if identifier_required {
        &["identifier"]
    } else {
        &[]
    };
    let identifier = if identifier_required {
        json!({ "type": "string", "pattern": ENTITY_ID })
    } else {
        json!({ "type": ["string", "null"], "pattern": ENTITY_ID, "description": "the path's, when given" })
    };
    closed(
        required,
        json!({
            "identifier": identifier,
            "title": { "type": ["string", "null"] },
            "icon": { "type": ["string", "null"] },
            "team": { "oneOf": [
                { "type": "string" }, { "type": "array", "items": { "type": "string" } }, { "type": "null" }] },
            "properties": { "type": ["object", "null"],
                "description": "checked against the blueprint's schema (422 names each problem)" },
            "relations": { "type": ["object", "null"],
                "description": "`{name: identifier | [identifiers]}`, checked against the blueprint" },
        }),
    )
}

/// The request bodies, by `METHOD path`. Their Rust types live in the catalog and runs crates
/// (which do not depend on utoipa), so their JSON Schemas are written here, next to one another.
fn bodies() -> Vec<(&'static str, &'static str, Value)> {
    let blueprint = closed(
        &["identifier"],
        json!({
            "identifier": { "type": "string", "pattern": BLUEPRINT_ID },
            "title": { "type": ["string", "null"] },
            "icon": { "type": ["string", "null"] },
            "description": { "type": ["string", "null"] },
            "schema": { "type": "object", "description": "`{properties, required}`: each property a JSON Schema of type string, number, boolean, object or array" },
            "relations": { "type": "object", "description": "`{name: {target, title, required, many}}`" },
        }),
    );
    let rule = json!({ "type": "object", "required": ["operator"], "properties": {
        "property": { "type": "string" }, "operator": { "type": "string" }, "value": {} } });
    let search = json!({ "type": "object", "required": ["rules"], "properties": {
        "combinator": { "enum": ["and", "or"] },
        "rules": { "type": "array", "items": rule } } });
    let action = json!({ "type": "object", "required": ["identifier", "trigger", "invocationMethod"],
        "description": "Port's v2 action; checked against this server's blueprints and plugins (422 names each path)",
        "properties": {
            "identifier": { "type": "string", "pattern": BLUEPRINT_ID },
            "trigger": { "type": "object" },
            "invocationMethod": { "type": "object" } } });
    vec![
        ("post", "/v1/blueprints", blueprint.clone()),
        ("put", "/v1/blueprints/{blueprint}", blueprint),
        (
            "post",
            "/v1/blueprints/{blueprint}/entities",
            entity_body(true),
        ),
        (
            "put",
            "/v1/blueprints/{blueprint}/entities/{entity}",
            entity_body(false),
        ),
        (
            "patch",
            "/v1/blueprints/{blueprint}/entities/{entity}",
            entity_body(false),
        ),
        ("post", "/v1/entities/search", search),
        ("post", "/v1/actions", action.clone()),
        ("put", "/v1/actions/{action}", action),
        (
            "patch",
            "/v1/actions/{action}/permissions",
            json!({ "type": "object",
            "properties": { "execute": { "type": "object" }, "approve": { "type": "object" } },
            "additionalProperties": false }),
        ),
        (
            "post",
            "/v1/teams",
            closed(
                &["name"],
                json!({
            "name": { "type": "string", "pattern": NAME },
            "description": { "type": ["string", "null"] } }),
            ),
        ),
        (
            "post",
            "/v1/users",
            closed(
                &["identifier", "role"],
                json!({
            "identifier": { "type": "string", "pattern": NAME },
            "email": { "type": ["string", "null"], "pattern": "@" },
            "role": { "enum": ["admin", "member"] },
            "teams": { "type": "array", "items": { "type": "string" },
                "description": "names of existing teams" } }),
            ),
        ),
        (
            "post",
            "/v1/actions/{action}/runs",
            closed(
                &[],
                json!({
            "properties": { "type": ["object", "null"],
                "description": "the action's user inputs, checked against its userInputs (422 names each input)" },
            "entity": { "type": ["string", "null"], "description": "for DAY-2 and DELETE actions" } }),
            ),
        ),
        (
            "patch",
            "/v1/actions/runs/{run_id}",
            closed(
                &[],
                json!({
            "status": { "enum": ["SUCCESS", "FAILURE", "IN_PROGRESS", null] },
            "statusLabel": { "type": ["string", "null"] },
            "summary": { "type": ["string", "null"] },
            "link": { "oneOf": [
                { "type": "null" }, { "type": "string" },
                { "type": "array", "items": { "oneOf": [
                    { "type": "string" },
                    { "type": "object", "required": ["url"], "properties": {
                        "title": {}, "url": { "type": "string" } } }] } }] } }),
            ),
        ),
        (
            "post",
            "/v1/actions/runs/{run_id}/logs",
            closed(
                &["message"],
                json!({
            "message": { "type": "string", "maxLength": 65536 },
            "level": { "type": "string", "pattern": "^([Tt][Rr][Aa][Cc][Ee]|[Dd][Ee][Bb][Uu][Gg]|[Ii][Nn][Ff][Oo]|[Ww][Aa][Rr][Nn]|[Ee][Rr][Rr][Oo][Rr])$" },
            "terminationStatus": { "enum": ["SUCCESS", "FAILURE", "IN_PROGRESS", null] },
            "statusLabel": { "type": ["string", "null"] } }),
            ),
        ),
        (
            "patch",
            "/v1/actions/runs/{run_id}/approval",
            closed(
                &["status"],
                json!({
            "status": { "enum": ["APPROVE", "DECLINE"] },
            "description": { "type": ["string", "null"] } }),
            ),
        ),
    ]
}

/// Puts each body's schema in place of the annotation's generic object.
pub(crate) fn request_bodies(mut doc: Value) -> Value {
    for (method, path, schema) in bodies() {
        let content = &mut doc["paths"][path][method]["requestBody"]["content"]["application/json"];
        debug_assert!(!content.is_null(), "{method} {path} has a JSON body");
        content["schema"] = schema;
        doc["paths"][path][method]["requestBody"]["required"] = json!(true);
    }
    doc
}
