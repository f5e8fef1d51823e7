//! `/v1/actions`: action definitions (admin writes, everyone reads) and their permissions.

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use portico_catalog::CatalogError;
use portico_runs::action_check::{self, Known};
use portico_runs::actions::{ActionDefinition, Permissions};
use portico_store::{ActionRecord, AuditRecord, Write};
use serde_json::{Value, json};

fn record(
    caller: &Caller,
    operation: &str,
    id: &str,
    before: Option<Value>,
    after: Option<Value>,
) -> AuditRecord {
    let mut record = AuditRecord::success(&caller.user.identifier, "api", operation, "action", id);
    record.before = before;
    record.after = after;
    record
}

/// Checks a definition against the blueprints, plugins and runtime bounds of this server.
async fn check(state: &AppState, body: &Value) -> ApiResult<ActionDefinition> {
    let blueprints: Vec<String> = state
        .store
        .list_blueprints()
        .await?
        .into_iter()
        .map(|b| b.identifier)
        .collect();
    let plugins: Vec<(String, String)> = state
        .store
        .list_plugins()
        .await?
        .into_iter()
        .map(|p| (p.name, p.digest))
        .collect();
    let known = Known {
        blueprints: &blueprints,
        plugins: &plugins,
        runtime: &state.runtime,
    };
    action_check::check(body, &known).map_err(|details| CatalogError::invalid(details).into())
}

async fn write(
    state: &AppState,
    caller: &Caller,
    def: ActionDefinition,
    write: Write,
) -> ApiResult<ActionRecord> {
    let before = state.store.get_action(&def.identifier).await?;
    let now = portico_store::now();
    let stored = ActionRecord {
        identifier: def.identifier.clone(),
        plugin: def.plugin_name().to_owned(),
        data: serde_json::to_value(&def).map_err(ApiError::internal)?,
        created_at: before.as_ref().map_or(now, |b| b.created_at),
        updated_at: now,
    };
    let operation = if before.is_some() { "UPDATE" } else { "CREATE" };
    let audit = record(
        caller,
        operation,
        &def.identifier,
        before.map(|b| b.data),
        Some(stored.data.clone()),
    );
    state.store.put_action(stored.clone(), write, audit).await?;
    state.intake.actions_changed();
    state.runner.refresh_automations().await;
    Ok(stored)
}

fn show(action: &ActionRecord) -> Value {
    let mut data = action.data.clone();
    data["createdAt"] = json!(action.created_at);
    data["updatedAt"] = json!(action.updated_at);
    data
}

async fn found(state: &AppState, id: &str) -> ApiResult<ActionRecord> {
    state
        .store
        .get_action(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("action `{id}` not found")))
}

/// Every action.
#[utoipa::path(get, path = "/v1/actions", tag = "actions", security(("bearer" = [])),
    responses((status = 200, description = "`{ok, actions}`")))]
pub(crate) async fn list(
    State(state): State<AppState>,
    _caller: Caller,
) -> ApiResult<axum::Json<Value>> {
    let actions: Vec<Value> = state.store.list_actions().await?.iter().map(show).collect();
    Ok(axum::Json(json!({ "ok": true, "actions": actions })))
}

/// Creates an action (admin); checked before it is stored.
#[utoipa::path(post, path = "/v1/actions", tag = "actions", security(("bearer" = [])),
    request_body(content = Object, description = "Port's v2 action with `invocationMethod {type: WASM, plugin, config, capabilities, limits}`"),
    responses((status = 201, description = "`{ok, action}`"), (status = 409, description = "exists"),
        (status = 422, description = "invalid; `details` names each path")))]
pub(crate) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<Value>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    let id = body
        .get("identifier")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    caller
        .require_admin(state.store.as_ref(), "changing actions", "action", &id)
        .await?;
    let def = check(&state, &body).await?;
    let stored = write(&state, &caller, def, Write::Create).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({ "ok": true, "action": show(&stored) })),
    ))
}

/// One action.
#[utoipa::path(get, path = "/v1/actions/{action}", tag = "actions", security(("bearer" = [])),
    params(("action" = String, Path)), responses((status = 200, description = "`{ok, action}`"), (status = 404, description = "no such action")))]
pub(crate) async fn get_one(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    Ok(axum::Json(
        json!({ "ok": true, "action": show(&found(&state, &id).await?) }),
    ))
}

/// Creates or replaces an action (admin).
#[utoipa::path(put, path = "/v1/actions/{action}", tag = "actions", security(("bearer" = [])),
    params(("action" = String, Path)), request_body(content = Object),
    responses((status = 200, description = "`{ok, action}`"), (status = 422, description = "invalid")))]
pub(crate) async fn replace(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> ApiResult<axum::Json<Value>> {
    caller
        .require_admin(state.store.as_ref(), "changing actions", "action", &id)
        .await?;
    if body.get("identifier").and_then(Value::as_str) != Some(id.as_str()) {
        return Err(
            CatalogError::field("identifier", format!("must match the path (`{id}`)")).into(),
        );
    }
    let def = check(&state, &body).await?;
    let stored = write(&state, &caller, def, Write::Replace).await?;
    Ok(axum::Json(json!({ "ok": true, "action": show(&stored) })))
}

/// Deletes an action (admin).
#[utoipa::path(delete, path = "/v1/actions/{action}", tag = "actions", security(("bearer" = [])),
    params(("action" = String, Path)), responses((status = 200, description = "`{ok}`"), (status = 404, description = "no such action")))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    caller
        .require_admin(state.store.as_ref(), "deleting actions", "action", &id)
        .await?;
    let before = found(&state, &id).await?;
    state
        .store
        .delete_action(&id, record(&caller, "DELETE", &id, Some(before.data), None))
        .await?;
    state.intake.actions_changed();
    state.runner.refresh_automations().await;
    Ok(axum::Json(json!({ "ok": true })))
}

/// Who may execute and approve the action.
#[utoipa::path(get, path = "/v1/actions/{action}/permissions", tag = "actions", security(("bearer" = [])),
    params(("action" = String, Path)), responses((status = 200, description = "`{ok, permissions: {execute, approve}}`")))]
pub(crate) async fn get_permissions(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    let action = found(&state, &id).await?;
    let def: ActionDefinition = serde_json::from_value(action.data).map_err(ApiError::internal)?;
    Ok(axum::Json(
        json!({ "ok": true, "permissions": def.permissions }),
    ))
}

/// Changes who may execute or approve (admin); fields not sent are kept.
#[utoipa::path(patch, path = "/v1/actions/{action}/permissions", tag = "actions", security(("bearer" = [])),
    params(("action" = String, Path)), request_body(content = Object, description = "`{execute: {roles, users, teams, ownedByTeam}, approve: {roles, users, teams}}`"),
    responses((status = 200, description = "`{ok, permissions}`"), (status = 422, description = "invalid")))]
pub(crate) async fn patch_permissions(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> ApiResult<axum::Json<Value>> {
    caller
        .require_admin(
            state.store.as_ref(),
            "changing action permissions",
            "action",
            &id,
        )
        .await?;
    let action = found(&state, &id).await?;
    let mut data = action.data.clone();
    let Some(patch) = body.as_object() else {
        return Err(CatalogError::field(
            "permissions",
            "must be an object with `execute` and/or `approve`",
        )
        .into());
    };
    for (key, value) in patch {
        if key != "execute" && key != "approve" {
            return Err(CatalogError::field(
                format!("permissions.{key}"),
                "unknown key; use `execute` or `approve`",
            )
            .into());
        }
        data["permissions"][key] = value.clone();
    }
    let def = check(&state, &data).await?;
    let permissions: Permissions = def.permissions.clone();
    write(&state, &caller, def, Write::Replace).await?;
    Ok(axum::Json(
        json!({ "ok": true, "permissions": permissions }),
    ))
}
