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

/// 1-100 characters without control characters, not only white space: token names.
const TOKEN_NAME: &str =
    "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$";

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
            "patch",
            "/v1/users/{user}",
            // At least one field, and not null (a null field changes nothing).
            json!({ "type": "object", "minProperties": 1, "additionalProperties": false,
                "properties": {
                    "role": { "enum": ["admin", "member", null] },
                    "teams": { "type": ["array", "null"], "items": { "type": "string" },
                        "description": "names of existing teams" },
                    "disabled": { "type": ["boolean", "null"] } },
                "anyOf": [
                    { "required": ["role"], "properties": { "role": { "enum": ["admin", "member"] } } },
                    { "required": ["teams"], "properties": { "teams": { "type": "array" } } },
                    { "required": ["disabled"], "properties": { "disabled": { "type": "boolean" } } }] }),
        ),
        (
            "post",
            "/v1/users/{user}/tokens",
            closed(
                &[],
                json!({
            "name": { "type": ["string", "null"], "minLength": 1, "maxLength": 100,
                "pattern": TOKEN_NAME, "description": "a label, e.g. `ci`" } }),
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
            "post",
            "/v1/actions/runs/{run_id}/retry",
            closed(
                &[],
                json!({
            "properties": { "type": ["object", "null"],
                "description": "inputs to change, and the secret inputs again (a run never keeps them in clear)" } }),
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
        // A token's body may be left out (`{}` is assumed).
        let required = path != "/v1/users/{user}/tokens";
        doc["paths"][path][method]["requestBody"]["required"] = json!(required);
    }
    doc
}

/// `{"$ref": "#/components/schemas/<name>"}`.
fn schema(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn date_time() -> Value {
    json!({ "type": "string", "format": "date-time" })
}

fn nullable_date_time() -> Value {
    json!({ "type": ["string", "null"], "format": "date-time" })
}

fn strings() -> Value {
    json!({ "type": "array", "items": { "type": "string" } })
}

/// A JSON object the client shaped (properties, relations, definitions): any keys.
fn free_object(description: &str) -> Value {
    json!({ "type": "object", "description": description })
}

/// The records answers carry, as `components/schemas`. The Rust types live in the store and
/// runs crates (without utoipa); `record_schemas_fit_what_the_types_serialize` below holds
/// these schemas to the types. Records are closed (`additionalProperties: false`), so a field
/// added to a type without its schema fails that test and the fuzzer; what clients shape
/// themselves (entity properties, Port's action fields) stays open.
fn record_schemas() -> Value {
    let token_properties = json!({
        "id": { "type": "string" },
        "user": { "type": "string" },
        "name": { "type": ["string", "null"] },
        "prefix": { "type": ["string", "null"], "description": "the value's first characters" },
        "createdAt": date_time(),
        "rotatedAt": nullable_date_time(),
        "lastUsedAt": nullable_date_time(),
    });
    let token_required = [
        "id",
        "user",
        "name",
        "prefix",
        "createdAt",
        "rotatedAt",
        "lastUsedAt",
    ];
    let mut new_token_properties = token_properties.clone();
    new_token_properties["value"] =
        json!({ "type": "string", "description": "the token, shown only in this answer" });
    let mut new_token_required = token_required.to_vec();
    new_token_required.push("value");
    let audience = json!({
        "type": "object",
        "required": ["roles", "users", "teams"],
        "properties": {
            "roles": strings(),
            "users": strings(),
            "teams": strings(),
            "ownedByTeam": { "type": "boolean" },
            "policy": free_object("Port's policy: catalog queries and a jq condition"),
        },
        "additionalProperties": false,
    });
    let identifier = |nullable: bool| {
        let object = closed(
            &["identifier"],
            json!({ "identifier": { "type": "string" } }),
        );
        if nullable {
            json!({ "oneOf": [object, { "type": "null" }] })
        } else {
            object
        }
    };
    json!({
        "Blueprint": closed(
            &["identifier", "schema", "relations", "createdAt", "createdBy", "updatedAt", "updatedBy"],
            json!({
                "identifier": { "type": "string" },
                "title": { "type": "string" },
                "icon": { "type": "string" },
                "description": { "type": "string" },
                "schema": free_object("`{properties, required}`"),
                "relations": free_object("`{name: {target, title, required, many}}`"),
                "createdAt": date_time(),
                "createdBy": { "type": "string" },
                "updatedAt": date_time(),
                "updatedBy": { "type": "string" },
            }),
        ),
        "Entity": closed(
            &["identifier", "blueprint", "title", "icon", "team", "properties", "relations",
              "createdAt", "createdBy", "updatedAt", "updatedBy"],
            json!({
                "identifier": { "type": "string" },
                "blueprint": { "type": "string" },
                "title": { "type": ["string", "null"] },
                "icon": { "type": ["string", "null"] },
                "team": strings(),
                "properties": free_object("values of the blueprint's properties"),
                "relations": free_object("`{name: identifier | [identifiers]}`"),
                "createdAt": date_time(),
                "createdBy": { "type": "string" },
                "updatedAt": date_time(),
                "updatedBy": { "type": "string" },
            }),
        ),
        "EntityRef": closed(
            &["blueprint", "identifier"],
            json!({ "blueprint": { "type": "string" }, "identifier": { "type": "string" } }),
        ),
        "User": closed(
            &["identifier", "email", "role", "teams", "disabled", "createdAt"],
            json!({
                "identifier": { "type": "string" },
                "email": { "type": ["string", "null"] },
                "role": { "enum": ["admin", "member"] },
                "teams": strings(),
                "disabled": { "type": "boolean" },
                "createdAt": date_time(),
            }),
        ),
        "Team": closed(
            &["name", "description", "createdAt"],
            json!({
                "name": { "type": "string" },
                "description": { "type": ["string", "null"] },
                "createdAt": date_time(),
            }),
        ),
        "Token": closed(&token_required, token_properties),
        "NewToken": closed(&new_token_required, new_token_properties),
        "AuditEntry": closed(
            &["id", "at", "actor", "operation", "resourceType", "resourceId", "before", "after",
              "status", "origin"],
            json!({
                "id": { "type": "integer" },
                "at": date_time(),
                "actor": { "type": "string" },
                "operation": { "type": "string" },
                "resourceType": { "type": "string" },
                "resourceId": { "type": "string" },
                "blueprint": { "type": "string" },
                "runId": { "type": "string" },
                "before": { "description": "the resource before (null when created)" },
                "after": { "description": "the resource after (null when deleted)" },
                "status": { "enum": ["SUCCESS", "FAILURE"] },
                "reason": { "type": "string" },
                "origin": { "type": "string" },
            }),
        ),
        "PluginVersion": closed(
            &["name", "digest", "size", "createdAt", "createdBy"],
            json!({
                "name": { "type": "string" },
                "digest": { "type": "string", "pattern": "^sha256:[0-9a-f]{64}$" },
                "size": { "type": "integer", "minimum": 0 },
                "createdAt": date_time(),
                "createdBy": { "type": "string" },
                "status": plugin_status(),
            }),
        ),
        "Plugin": closed(
            &["name", "digest", "size", "createdAt", "createdBy", "status", "versions"],
            json!({
                "name": { "type": "string" },
                "digest": { "type": "string", "pattern": "^sha256:[0-9a-f]{64}$" },
                "size": { "type": "integer", "minimum": 0 },
                "createdAt": date_time(),
                "createdBy": { "type": "string" },
                "status": plugin_status(),
                "versions": { "type": "array", "items": schema("PluginVersion"),
                    "description": "newest first; the top-level fields are the newest's" },
            }),
        ),
        "Action": {
            "type": "object",
            "description": "Port's v2 action as stored, with `createdAt` and `updatedAt`",
            "required": ["identifier", "trigger", "invocationMethod", "requiredApproval", "publish",
                "permissions", "createdAt", "updatedAt"],
            "properties": {
                "identifier": { "type": "string" },
                "title": { "type": "string" },
                "icon": { "type": "string" },
                "description": { "type": "string" },
                "trigger": free_object("`{type, operation, blueprintIdentifier, userInputs, event}`"),
                "invocationMethod": free_object("`{type: WASM, plugin, config, capabilities, limits}`"),
                "requiredApproval": { "description": "`false`, `true` or `{type: ANY | ALL, ...}`" },
                "publish": { "type": "boolean" },
                "permissions": schema("Permissions"),
                "createdAt": date_time(),
                "updatedAt": date_time(),
            },
        },
        "Audience": audience,
        "Permissions": closed(
            &["execute", "approve"],
            json!({ "execute": schema("Audience"), "approve": schema("Audience") }),
        ),
        "Run": closed(
            &["id", "action", "blueprint", "entity", "properties", "status", "statusLabel", "link",
              "summary", "progress", "error", "affectedEntities", "output", "source", "createdBy",
              "createdAt", "updatedAt", "endedAt"],
            json!({
                "id": { "type": "string" },
                "action": identifier(false),
                "blueprint": identifier(true),
                "entity": identifier(true),
                "properties": free_object("the inputs, secrets redacted (an automation's: its event)"),
                "status": { "enum": ["WAITING_FOR_APPROVAL", "PENDING", "IN_PROGRESS", "SUCCESS",
                    "FAILURE", "CANCELLED", "DECLINED"] },
                "statusLabel": { "type": ["string", "null"] },
                "link": { "type": "array", "items": closed(&["title", "url"],
                    json!({ "title": { "type": "string" }, "url": { "type": "string" } })) },
                "summary": { "type": ["string", "null"] },
                "progress": { "type": ["object", "null"], "description": "`{percent, label}`" },
                "error": { "oneOf": [{ "type": "null" }, {
                    "type": "object", "required": ["kind", "message"],
                    "properties": { "kind": { "type": "string" }, "message": { "type": "string" } } }] },
                "affectedEntities": { "type": "array" },
                "output": { "description": "what the plugin returned (null until it ends)" },
                "source": { "enum": ["API", "UI", "AUTOMATION"] },
                "createdBy": { "type": "string" },
                "createdAt": date_time(),
                "updatedAt": date_time(),
                "endedAt": nullable_date_time(),
            }),
        ),
        "LogLine": closed(
            &["runId", "seq", "at", "level", "message"],
            json!({
                "runId": { "type": "string" },
                "seq": { "type": "integer" },
                "at": date_time(),
                "level": { "enum": ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"] },
                "message": { "type": "string" },
            }),
        ),
        "Approver": closed(
            &["userId", "state", "description"],
            json!({
                "userId": { "type": "string" },
                "state": { "enum": ["PENDING", "APPROVED", "DECLINED"] },
                "description": { "type": ["string", "null"] },
            }),
        ),
    })
}

/// Where a plugin version stands on the server that answers (listed versions only).
fn plugin_status() -> Value {
    json!({ "type": "string", "enum": ["ready", "compiling", "failed", "stored"],
            "description": "this server's: ready to run, compiling, failed to compile, or stored (loaded on its first run)" })
}

/// How each readiness check went: the database's ping time, the worker loop's last turn.
fn readiness_checks() -> Value {
    let check = |field: &str, description: &str| {
        closed(
            &["ok", field],
            json!({ "ok": { "const": true }, field: { "type": "integer", "minimum": 0, "description": description } }),
        )
    };
    closed(
        &["database", "worker_loop"],
        json!({
            "database": check("ms", "how long the ping took"),
            "worker_loop": check("last_turn_ms", "since the worker loop last turned"),
        }),
    )
}

/// A success answer: `{ok: true, <field>: ...}` with exactly these fields.
fn ok(fields: &[(&str, Value)]) -> Value {
    let mut required = vec!["ok"];
    let mut properties = json!({ "ok": { "const": true } });
    for (name, schema) in fields {
        required.push(name);
        properties[*name] = schema.clone();
    }
    closed(&required, properties)
}

fn list(name: &str) -> Value {
    json!({ "type": "array", "items": schema(name) })
}

/// `next`: the cursor of the following page, null on the last one.
fn next() -> Value {
    json!({ "type": ["string", "null"], "description": "pass as `cursor` for the next page; null on the last" })
}

/// Each success answer's schema, by `METHOD path` and status.
fn successes() -> Vec<(&'static str, &'static str, &'static str, Value)> {
    let blueprint = || ok(&[("blueprint", schema("Blueprint"))]);
    let entity = || ok(&[("entity", schema("Entity"))]);
    let entities = || ok(&[("entities", list("Entity")), ("next", next())]);
    let action = || ok(&[("action", schema("Action"))]);
    let run = || ok(&[("run", schema("Run"))]);
    let permissions = || ok(&[("permissions", schema("Permissions"))]);
    let deleted = || {
        ok(&[(
            "deleted",
            json!({ "type": "string", "description": "the identifier deleted" }),
        )])
    };
    let token = || ok(&[("token", schema("NewToken"))]);
    vec![
        ("get", "/healthz", "200", ok(&[])),
        (
            "get",
            "/readyz",
            "200",
            ok(&[
                ("database", json!({ "enum": ["sqlite", "postgres"] })),
                ("checks", readiness_checks()),
            ]),
        ),
        (
            "get",
            "/v1/blueprints",
            "200",
            ok(&[("blueprints", list("Blueprint"))]),
        ),
        ("post", "/v1/blueprints", "201", blueprint()),
        ("get", "/v1/blueprints/{blueprint}", "200", blueprint()),
        ("put", "/v1/blueprints/{blueprint}", "200", blueprint()),
        ("delete", "/v1/blueprints/{blueprint}", "200", ok(&[])),
        (
            "get",
            "/v1/blueprints/{blueprint}/entities",
            "200",
            entities(),
        ),
        (
            "post",
            "/v1/blueprints/{blueprint}/entities",
            "201",
            entity(),
        ),
        (
            "post",
            "/v1/blueprints/{blueprint}/entities",
            "200",
            entity(),
        ),
        (
            "get",
            "/v1/blueprints/{blueprint}/entities/{entity}",
            "200",
            entity(),
        ),
        (
            "put",
            "/v1/blueprints/{blueprint}/entities/{entity}",
            "200",
            entity(),
        ),
        (
            "patch",
            "/v1/blueprints/{blueprint}/entities/{entity}",
            "200",
            entity(),
        ),
        (
            "delete",
            "/v1/blueprints/{blueprint}/entities/{entity}",
            "200",
            ok(&[(
                "deleted",
                json!({ "type": "array", "items": schema("EntityRef"),
                    "description": "the entity, then each dependent deleted with it" }),
            )]),
        ),
        ("post", "/v1/entities/search", "200", entities()),
        ("get", "/v1/users", "200", ok(&[("users", list("User"))])),
        (
            "post",
            "/v1/users",
            "201",
            ok(&[
                ("user", schema("User")),
                (
                    "token",
                    json!({ "type": "string", "description": "the user's first token, shown only in this answer" }),
                ),
            ]),
        ),
        (
            "get",
            "/v1/users/{user}",
            "200",
            ok(&[("user", schema("User"))]),
        ),
        (
            "patch",
            "/v1/users/{user}",
            "200",
            ok(&[("user", schema("User"))]),
        ),
        ("delete", "/v1/users/{user}", "200", deleted()),
        (
            "get",
            "/v1/users/{user}/tokens",
            "200",
            ok(&[("tokens", list("Token"))]),
        ),
        ("post", "/v1/users/{user}/tokens", "201", token()),
        (
            "delete",
            "/v1/users/{user}/tokens/{token_id}",
            "200",
            deleted(),
        ),
        (
            "post",
            "/v1/users/{user}/tokens/{token_id}/rotate",
            "200",
            token(),
        ),
        ("get", "/v1/teams", "200", ok(&[("teams", list("Team"))])),
        ("post", "/v1/teams", "201", ok(&[("team", schema("Team"))])),
        (
            "get",
            "/v1/audit-log",
            "200",
            ok(&[("audit", list("AuditEntry")), ("next", next())]),
        ),
        (
            "get",
            "/v1/plugins",
            "200",
            ok(&[("plugins", list("Plugin"))]),
        ),
        (
            "get",
            "/v1/plugins/{name}",
            "200",
            ok(&[("plugin", schema("Plugin"))]),
        ),
        (
            "put",
            "/v1/plugins/{name}",
            "201",
            ok(&[("plugin", schema("PluginVersion"))]),
        ),
        (
            "put",
            "/v1/plugins/{name}",
            "200",
            ok(&[("plugin", schema("PluginVersion"))]),
        ),
        (
            "put",
            "/v1/plugins/{name}",
            "202",
            ok(&[
                ("plugin", schema("PluginVersion")),
                ("status", json!({ "const": "compiling" })),
                ("message", json!({ "type": "string" })),
            ]),
        ),
        ("delete", "/v1/plugins/{name}", "200", ok(&[])),
        (
            "get",
            "/v1/actions",
            "200",
            ok(&[("actions", list("Action"))]),
        ),
        ("post", "/v1/actions", "201", action()),
        ("get", "/v1/actions/{action}", "200", action()),
        ("put", "/v1/actions/{action}", "200", action()),
        ("delete", "/v1/actions/{action}", "200", ok(&[])),
        (
            "get",
            "/v1/actions/{action}/permissions",
            "200",
            permissions(),
        ),
        (
            "patch",
            "/v1/actions/{action}/permissions",
            "200",
            permissions(),
        ),
        ("post", "/v1/actions/{action}/runs", "202", run()),
        (
            "get",
            "/v1/actions/runs",
            "200",
            ok(&[("runs", list("Run")), ("next", next())]),
        ),
        ("get", "/v1/actions/runs/{run_id}", "200", run()),
        ("patch", "/v1/actions/runs/{run_id}", "200", run()),
        (
            "get",
            "/v1/actions/runs/{run_id}/logs",
            "200",
            ok(&[("logs", list("LogLine"))]),
        ),
        (
            "post",
            "/v1/actions/runs/{run_id}/logs",
            "201",
            ok(&[("log", schema("LogLine"))]),
        ),
        ("post", "/v1/actions/runs/{run_id}/cancel", "200", run()),
        ("post", "/v1/actions/runs/{run_id}/retry", "202", run()),
        ("patch", "/v1/actions/runs/{run_id}/approval", "200", run()),
        (
            "get",
            "/v1/actions/runs/{run_id}/approvers",
            "200",
            ok(&[("approvers", list("Approver"))]),
        ),
    ]
}

/// Puts each success answer's schema on its response, and the records they use in
/// `components/schemas`. The log route also streams (`text/event-stream`) when asked to.
pub(crate) fn success_responses(mut doc: Value) -> Value {
    if let Some(records) = record_schemas().as_object() {
        for (name, schema) in records {
            doc["components"]["schemas"][name] = schema.clone();
        }
    }
    for (method, path, status, schema) in successes() {
        let response = &mut doc["paths"][path][method]["responses"][status];
        debug_assert!(!response.is_null(), "{method} {path} answers {status}");
        response["content"] = json!({ "application/json": { "schema": schema } });
    }
    doc["paths"]["/v1/actions/runs/{run_id}/logs"]["get"]["responses"]["200"]["content"]["text/event-stream"] = json!({ "schema": { "type": "string",
            "description": "`log` events (id = seq, data = a LogLine), `status` events, one `end` event (data = the Run)" } });
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use portico_store::{
        ApiToken, AuditRecord, Blueprint, Entity, PluginVersion, Role, RunLogLine, RunRecord, Team,
        User,
    };

    /// A validator for `schema`, resolving `#/components/schemas/...` in the records above.
    fn validator(schema: &Value) -> jsonschema::Validator {
        let mut root = schema.clone();
        root["components"]["schemas"] = record_schemas();
        jsonschema::options()
            .should_validate_formats(true)
            .build(&root)
            .expect("a usable schema")
    }

    fn assert_fits(schema: &Value, value: &Value, what: &str) {
        let errors: Vec<String> = validator(schema)
            .iter_errors(value)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{what}: {errors:?}\n{value:#}");
    }

    fn fits_record(name: &str, value: impl serde::Serialize) {
        let value = serde_json::to_value(value).expect("serializes");
        assert_fits(&schema(name), &value, name);
    }

    fn success(method: &str, path: &str, status: &str) -> Value {
        successes()
            .into_iter()
            .find(|(m, p, s, _)| (*m, *p, *s) == (method, path, status))
            .map(|(_, _, _, schema)| schema)
            .expect("a success listed")
    }

    #[test]
    fn record_schemas_fit_what_the_types_serialize() {
        let now = portico_store::now();
        let mut blueprint = Blueprint {
            identifier: "service".into(),
            title: None,
            icon: None,
            description: None,
            schema: json!({ "properties": {} }),
            relations: json!({}),
            created_at: now,
            created_by: "admin".into(),
            updated_at: now,
            updated_by: "admin".into(),
        };
        fits_record("Blueprint", &blueprint);
        blueprint.title = Some("Service".into());
        blueprint.icon = Some("Microservice".into());
        blueprint.description = Some("what runs".into());
        fits_record("Blueprint", &blueprint);

        let entity = Entity {
            identifier: "checkout".into(),
            blueprint: "service".into(),
            title: None,
            icon: Some("Rust".into()),
            team: vec!["payments".into()],
            properties: json!({ "replicas": 2, "nested": { "any": ["shape"] } }),
            relations: json!({ "owner": "payments" }),
            created_at: now,
            created_by: "admin".into(),
            updated_at: now,
            updated_by: "admin".into(),
        };
        fits_record("Entity", &entity);

        for email in [None, Some("a@example.com".to_owned())] {
            fits_record(
                "User",
                User {
                    identifier: "alice".into(),
                    email,
                    role: Role::Member,
                    teams: vec![],
                    disabled: true,
                    created_at: now,
                },
            );
        }
        fits_record(
            "Team",
            Team {
                name: "payments".into(),
                description: None,
                created_at: now,
            },
        );

        let mut token = ApiToken {
            id: "tok_5f0c2a9b81d4e3c7".into(),
            user: "alice".into(),
            name: None,
            prefix: None,
            created_at: now,
            rotated_at: None,
            last_used_at: None,
        };
        fits_record("Token", &token);
        token.name = Some("ci".into());
        token.prefix = Some("ptc_ab12".into());
        token.rotated_at = Some(now);
        token.last_used_at = Some(now);
        fits_record("Token", &token);
        let mut shown = serde_json::to_value(&token).expect("serializes");
        shown["value"] = json!("ptc_secret");
        fits_record("NewToken", shown);

        let mut audit = AuditRecord::success("admin", "api", "CREATE", "entity", "service/a");
        audit.id = 7;
        audit.after = Some(serde_json::to_value(&entity).expect("serializes"));
        fits_record("AuditEntry", &audit);
        let mut refused = AuditRecord::failure("bob", "api", "RUN", "action", "a", "not allowed");
        refused.blueprint = Some("service".into());
        refused.run_id = Some("r_1".into());
        fits_record("AuditEntry", &refused);

        let version = PluginVersion {
            name: "scaffold-service".into(),
            digest: format!("sha256:{}", "0a".repeat(32)),
            size: 1024,
            created_at: now,
            created_by: "admin".into(),
        };
        fits_record("PluginVersion", &version);

        let accepted = RunRecord::accepted("r_1", "scaffold", "API", "alice");
        fits_record("Run", super::super::runs::show(&accepted));
        let ended = RunRecord {
            blueprint: Some("service".into()),
            entity: Some("checkout".into()),
            status: portico_store::RunStatus::Failure,
            status_label: Some("Failed".into()),
            link: vec![json!({ "title": "CI", "url": "https://ci/1" })],
            summary: Some("it broke".into()),
            progress: Some(json!({ "percent": 50, "label": "half" })),
            error: Some(json!({ "kind": "trap", "message": "unreachable" })),
            affected_entities: json!([{ "blueprint": "service", "identifier": "checkout" }]),
            output: Some(json!("anything")),
            ended_at: Some(now),
            ..accepted
        };
        fits_record("Run", super::super::runs::show(&ended));

        fits_record(
            "LogLine",
            RunLogLine {
                run_id: "r_1".into(),
                seq: 1,
                at: now,
                level: "INFO".into(),
                message: "hello".into(),
            },
        );
        fits_record(
            "Approver",
            portico_runs::approval::Approver {
                user_id: "bob".into(),
                state: "PENDING".into(),
                description: None,
            },
        );

        let mut action: portico_runs::actions::ActionDefinition = serde_json::from_value(json!({
            "identifier": "scaffold",
            "trigger": { "type": "self-service", "operation": "CREATE", "userInputs": {} },
            "invocationMethod": { "type": "WASM", "plugin": "scaffold-service" },
        }))
        .expect("a definition");
        action.permissions.execute.owned_by_team = true;
        action.permissions.execute.policy = Some(Default::default());
        fits_record("Permissions", &action.permissions);
        let mut shown = serde_json::to_value(&action).expect("serializes");
        shown["createdAt"] = json!(now);
        shown["updatedAt"] = json!(now);
        fits_record("Action", shown);
    }

    #[test]
    fn envelopes_are_closed_and_say_ok_true() {
        let schema = success("get", "/v1/blueprints/{blueprint}/entities", "200");
        let fits = |value: Value| validator(&schema).is_valid(&value);
        assert!(fits(json!({ "ok": true, "entities": [], "next": null })));
        assert!(fits(json!({ "ok": true, "entities": [], "next": "c1" })));
        assert!(!fits(json!({ "ok": false, "entities": [], "next": null })));
        assert!(
            !fits(json!({ "ok": true, "entities": [] })),
            "next is always sent"
        );
        assert!(!fits(
            json!({ "ok": true, "entities": [], "next": null, "extra": 1 })
        ));
    }

    #[test]
    fn every_success_listed_is_a_response_the_annotations_declare() {
        let doc = serde_json::to_value(<super::super::ApiDoc as utoipa::OpenApi>::openapi())
            .expect("serializes");
        for (method, path, status, _) in successes() {
            assert!(
                doc["paths"][path][method]["responses"][status].is_object(),
                "{method} {path} {status} is not annotated"
            );
        }
    }
}
