//! `/v1/blueprints`: entity types. Reading needs a token; changing needs the admin role.

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{Json, Query};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use portico_catalog::BlueprintInput;
use serde::Deserialize;
use serde_json::{Value, json};

/// Every blueprint.
#[utoipa::path(get, path = "/v1/blueprints", tag = "blueprints", security(("bearer" = [])),
    responses((status = 200, description = "`{ok, blueprints}`"), (status = 401, description = "missing or unknown token")))]
pub(crate) async fn list(
    State(state): State<AppState>,
    _caller: Caller,
) -> ApiResult<axum::Json<Value>> {
    let blueprints = state.catalog.list_blueprints().await?;
    Ok(axum::Json(json!({ "ok": true, "blueprints": blueprints })))
}

/// Creates a blueprint (admin).
#[utoipa::path(post, path = "/v1/blueprints", tag = "blueprints", security(("bearer" = [])),
    request_body(content = Object, description = "`{identifier, title, icon, description, schema: {properties, required}, relations}`"),
    responses((status = 201, description = "`{ok, blueprint}`"), (status = 403, description = "not an admin"),
        (status = 409, description = "exists"), (status = 422, description = "invalid; `details` lists each problem")))]
pub(crate) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(input): Json<BlueprintInput>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    let blueprint = state
        .catalog
        .create_blueprint(&caller.actor(), input)
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({ "ok": true, "blueprint": blueprint })),
    ))
}

/// One blueprint.
#[utoipa::path(get, path = "/v1/blueprints/{blueprint}", tag = "blueprints", security(("bearer" = [])),
    params(("blueprint" = String, Path)), responses((status = 200, description = "`{ok, blueprint}`"), (status = 404, description = "no such blueprint")))]
pub(crate) async fn get_one(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    let blueprint = state.catalog.get_blueprint(&id).await?;
    Ok(axum::Json(json!({ "ok": true, "blueprint": blueprint })))
}

/// Creates or replaces a blueprint (admin).
#[utoipa::path(put, path = "/v1/blueprints/{blueprint}", tag = "blueprints", security(("bearer" = [])),
    params(("blueprint" = String, Path)), request_body(content = Object),
    responses((status = 200, description = "`{ok, blueprint}`"), (status = 422, description = "invalid")))]
pub(crate) async fn replace(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(input): Json<BlueprintInput>,
) -> ApiResult<axum::Json<Value>> {
    let blueprint = state
        .catalog
        .replace_blueprint(&caller.actor(), &id, input)
        .await?;
    Ok(axum::Json(json!({ "ok": true, "blueprint": blueprint })))
}

#[derive(Debug, Deserialize)]
pub(crate) struct DeleteOptions {
    #[serde(default)]
    delete_entities: bool,
}

/// Deletes a blueprint (admin); 409 while it has entities unless `?delete_entities=true`.
#[utoipa::path(delete, path = "/v1/blueprints/{blueprint}", tag = "blueprints", security(("bearer" = [])),
    params(("blueprint" = String, Path), ("delete_entities" = Option<bool>, Query)),
    responses((status = 200, description = "`{ok}`"), (status = 409, description = "has entities or is a relation target")))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(options): Query<DeleteOptions>,
) -> ApiResult<axum::Json<Value>> {
    state
        .catalog
        .delete_blueprint(&caller.actor(), &id, options.delete_entities)
        .await?;
    Ok(axum::Json(json!({ "ok": true })))
}
