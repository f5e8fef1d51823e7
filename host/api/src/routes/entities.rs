//! `/v1/blueprints/{bp}/entities` and `/v1/entities/search`. Any user may read; admins may
//! change any entity, members those owned by one of their teams.

use super::Page;
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{Json, Query};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use portico_catalog::{EntityInput, OnExisting};
use serde::Deserialize;
use serde_json::{Value, json};

fn page(entities: Vec<portico_store::Entity>, next: Option<String>) -> axum::Json<Value> {
    axum::Json(json!({ "ok": true, "entities": entities, "next": next }))
}

/// A page of a blueprint's entities.
#[utoipa::path(get, path = "/v1/blueprints/{blueprint}/entities", tag = "entities", security(("bearer" = [])),
    params(("blueprint" = String, Path), ("limit" = Option<usize>, Query, minimum = 1, maximum = 1000), ("cursor" = Option<String>, Query)),
    responses((status = 200, description = "`{ok, entities, next}`"), (status = 422, description = "`limit` out of range, or a cursor this server did not return")))]
pub(crate) async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    Path(bp): Path<String>,
    Query(p): Query<Page>,
) -> ApiResult<axum::Json<Value>> {
    let (entities, next) = state
        .catalog
        .list_entities(&bp, p.limit, p.cursor.as_deref())
        .await?;
    Ok(page(entities, next))
}

#[derive(Debug, Deserialize)]
pub(crate) struct CreateOptions {
    #[serde(default)]
    upsert: bool,
    #[serde(default)]
    merge: bool,
}

/// Creates an entity; `?upsert=true` replaces an existing one, `&merge=true` merges into it.
#[utoipa::path(post, path = "/v1/blueprints/{blueprint}/entities", tag = "entities", security(("bearer" = [])),
    params(("blueprint" = String, Path), ("upsert" = Option<bool>, Query), ("merge" = Option<bool>, Query)),
    request_body(content = Object, description = "`{identifier, title, icon, team, properties, relations}`"),
    responses((status = 201, description = "created: `{ok, entity}`"), (status = 200, description = "replaced or merged"),
        (status = 409, description = "exists (without upsert)"), (status = 422, description = "invalid; `details` lists each problem")))]
pub(crate) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(bp): Path<String>,
    Query(options): Query<CreateOptions>,
    Json(input): Json<EntityInput>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    let on_existing = match (options.upsert, options.merge) {
        (false, _) => OnExisting::Refuse,
        (true, false) => OnExisting::Replace,
        (true, true) => OnExisting::Merge,
    };
    let (entity, created) = state
        .catalog
        .create_entity(&caller.actor(), &bp, input, on_existing)
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(json!({ "ok": true, "entity": entity }))))
}

/// One entity.
#[utoipa::path(get, path = "/v1/blueprints/{blueprint}/entities/{entity}", tag = "entities", security(("bearer" = [])),
    params(("blueprint" = String, Path), ("entity" = String, Path)),
    responses((status = 200, description = "`{ok, entity}`"), (status = 404, description = "no such entity")))]
pub(crate) async fn get_one(
    State(state): State<AppState>,
    _caller: Caller,
    Path((bp, id)): Path<(String, String)>,
) -> ApiResult<axum::Json<Value>> {
    let entity = state.catalog.get_entity(&bp, &id).await?;
    Ok(axum::Json(json!({ "ok": true, "entity": entity })))
}

/// Creates or replaces the entity.
#[utoipa::path(put, path = "/v1/blueprints/{blueprint}/entities/{entity}", tag = "entities", security(("bearer" = [])),
    params(("blueprint" = String, Path), ("entity" = String, Path)), request_body(content = Object),
    responses((status = 200, description = "`{ok, entity}`"), (status = 422, description = "invalid")))]
pub(crate) async fn replace(
    State(state): State<AppState>,
    caller: Caller,
    Path((bp, id)): Path<(String, String)>,
    Json(input): Json<EntityInput>,
) -> ApiResult<axum::Json<Value>> {
    let entity = state
        .catalog
        .replace_entity(&caller.actor(), &bp, &id, input)
        .await?;
    Ok(axum::Json(json!({ "ok": true, "entity": entity })))
}

/// Merges properties and relations into the entity.
#[utoipa::path(patch, path = "/v1/blueprints/{blueprint}/entities/{entity}", tag = "entities", security(("bearer" = [])),
    params(("blueprint" = String, Path), ("entity" = String, Path)), request_body(content = Object),
    responses((status = 200, description = "`{ok, entity}`"), (status = 404, description = "no such entity")))]
pub(crate) async fn patch(
    State(state): State<AppState>,
    caller: Caller,
    Path((bp, id)): Path<(String, String)>,
    Json(input): Json<EntityInput>,
) -> ApiResult<axum::Json<Value>> {
    let entity = state
        .catalog
        .patch_entity(&caller.actor(), &bp, &id, input)
        .await?;
    Ok(axum::Json(json!({ "ok": true, "entity": entity })))
}

#[derive(Debug, Deserialize)]
pub(crate) struct DeleteOptions {
    #[serde(default)]
    delete_dependents: bool,
}

/// Deletes the entity; 409 while others relate to it unless `?delete_dependents=true`.
#[utoipa::path(delete, path = "/v1/blueprints/{blueprint}/entities/{entity}", tag = "entities", security(("bearer" = [])),
    params(("blueprint" = String, Path), ("entity" = String, Path), ("delete_dependents" = Option<bool>, Query)),
    responses((status = 200, description = "`{ok, deleted}`"), (status = 409, description = "has dependents")))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((bp, id)): Path<(String, String)>,
    Query(options): Query<DeleteOptions>,
) -> ApiResult<axum::Json<Value>> {
    let deleted = state
        .catalog
        .delete_entity(&caller.actor(), &bp, &id, options.delete_dependents)
        .await?;
    Ok(axum::Json(json!({ "ok": true, "deleted": deleted })))
}

/// Searches entities: `{combinator, rules: [{property, operator, value}]}`, nested.
#[utoipa::path(post, path = "/v1/entities/search", tag = "entities", security(("bearer" = [])),
    params(("limit" = Option<usize>, Query, minimum = 1, maximum = 1000), ("cursor" = Option<String>, Query)),
    request_body(content = Object, description = "`{combinator: and|or, rules: [...]}`"),
    responses((status = 200, description = "`{ok, entities, next}`"), (status = 422, description = "invalid query; `details` names each rule")))]
pub(crate) async fn search(
    State(state): State<AppState>,
    _caller: Caller,
    Query(p): Query<Page>,
    Json(body): Json<Value>,
) -> ApiResult<axum::Json<Value>> {
    let (entities, next) = state
        .catalog
        .search(&body, p.limit, p.cursor.as_deref())
        .await?;
    Ok(page(entities, next))
}
