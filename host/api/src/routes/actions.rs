//! `/v1/actions`: action definitions (admin writes, everyone reads) and their permissions.

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use portico_catalog::CatalogError;
use portico_runs::actions::{ActionDefinition, Permissions};
use portico_runs::registry::{ActionRegistry, Author};
use portico_store::{ActionRecord, Write};
use serde_json::{Value, json};

/// The action registry over this server's state.
fn registry(state: &AppState) -> ActionRegistry<'_> {
    ActionRegistry {
        store: state.store.as_ref(),
        runtime: &state.runtime,
        intake: &state.intake,
        runner: &state.runner,
    }
}

fn author(caller: &Caller) -> Author<'_> {
    Author {
        actor: &caller.user.identifier,
        origin: caller.origin,
    }
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
    let registry = registry(&state);
    let action = registry.check(&body).await?;
    let stored = registry
        .write(author(&caller), &action, Write::Create)
        .await?;
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

/// `?dryRun=true`: check and answer the action as it would be stored, writing nothing.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct DryRun {
    #[serde(default, rename = "dryRun")]
    dry_run: bool,
}

/// Creates or replaces an action (admin). With `?dryRun=true` it only checks the definition and
/// answers it as it would be stored, defaults filled in: how `portico apply` compares a file
/// with the server without guessing the server's defaults.
#[utoipa::path(put, path = "/v1/actions/{action}", tag = "actions", security(("bearer" = [])),
    params(("action" = String, Path), ("dryRun" = Option<bool>, Query, description = "check only; answer the action as it would be stored")),
    request_body(content = Object),
    responses((status = 200, description = "`{ok, action}`"), (status = 422, description = "invalid")))]
pub(crate) async fn replace(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    crate::extract::Query(q): crate::extract::Query<DryRun>,
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
    let registry = registry(&state);
    let action = registry.check(&body).await?;
    if q.dry_run {
        let now = portico_store::now();
        let created = state.store.get_action(&id).await?.map(|a| a.created_at);
        let mut would = serde_json::to_value(action.definition()).map_err(ApiError::internal)?;
        would["createdAt"] = json!(created.unwrap_or(now));
        would["updatedAt"] = json!(now);
        return Ok(axum::Json(json!({ "ok": true, "action": would })));
    }
    let stored = registry
        .write(author(&caller), &action, Write::Replace)
        .await?;
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
    let current = found(&state, &id).await?;
    registry(&state).delete(author(&caller), current).await?;
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
    let registry = registry(&state);
    let action = registry.check(&data).await?;
    registry
        .write(author(&caller), &action, Write::Replace)
        .await?;
    let permissions: &Permissions = &action.permissions;
    Ok(axum::Json(
        json!({ "ok": true, "permissions": permissions }),
    ))
}
