//! `/v1/plugins`: action backends as WebAssembly components. An upload is checked (a component
//! that fits the `action-backend` world) and compiled before it is stored; versions are kept by
//! digest, and a new upload never disturbs runs already using an older one.

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use portico_runtime::PluginError;
use portico_store::{AuditRecord, PluginVersion};
use serde_json::{Value, json};

fn valid_name(name: &str) -> bool {
    (1..=100).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// A plugin's versions as the API shows them: the newest first, at the top level.
fn describe(versions: &[PluginVersion]) -> Value {
    let newest = &versions[0];
    json!({
        "name": newest.name,
        "digest": newest.digest,
        "size": newest.size,
        "createdAt": newest.created_at,
        "createdBy": newest.created_by,
        "versions": versions,
    })
}

fn record(caller: &Caller, operation: &str, name: &str, after: Option<Value>) -> AuditRecord {
    let mut record = AuditRecord::success(
        &caller.user.identifier,
        caller.origin,
        operation,
        "plugin",
        name,
    );
    record.after = after;
    record
}

impl From<PluginError> for ApiError {
    fn from(e: PluginError) -> Self {
        let message = e.to_string();
        match e {
            PluginError::NotAComponent(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "not_a_component", message)
            }
            PluginError::TooLarge { .. } => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
            }
            PluginError::Invalid(_)
            | PluginError::UnsupportedImport(_)
            | PluginError::MissingExport(_) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_plugin", message)
            }
            PluginError::Cache { .. } => ApiError::internal(message),
        }
    }
}

/// Every plugin with its versions.
#[utoipa::path(get, path = "/v1/plugins", tag = "plugins", security(("bearer" = [])),
    responses((status = 200, description = "`{ok, plugins: [{name, digest, size, createdAt, versions}]}`")))]
pub(crate) async fn list(
    State(state): State<AppState>,
    _caller: Caller,
) -> ApiResult<axum::Json<Value>> {
    let all = state.store.list_plugins().await?;
    let plugins: Vec<Value> = all
        .chunk_by(|a, b| a.name == b.name)
        .map(describe)
        .collect();
    Ok(axum::Json(json!({ "ok": true, "plugins": plugins })))
}

/// One plugin with its versions, newest first.
#[utoipa::path(get, path = "/v1/plugins/{name}", tag = "plugins", security(("bearer" = [])),
    params(("name" = String, Path)),
    responses((status = 200, description = "`{ok, plugin}`"), (status = 404, description = "no such plugin")))]
pub(crate) async fn get_one(
    State(state): State<AppState>,
    _caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    let versions: Vec<PluginVersion> = state
        .store
        .list_plugins()
        .await?
        .into_iter()
        .filter(|v| v.name == name)
        .collect();
    if versions.is_empty() {
        return Err(ApiError::not_found(format!("plugin `{name}` not found")));
    }
    Ok(axum::Json(
        json!({ "ok": true, "plugin": describe(&versions) }),
    ))
}

/// Uploads a version (admin): the body is the component (`application/wasm`). 201 for a new
/// digest, 200 when this digest was uploaded before.
#[utoipa::path(put, path = "/v1/plugins/{name}", tag = "plugins", security(("bearer" = [])),
    params(("name" = String, Path, pattern = "^[a-z][a-z0-9_-]{0,99}$")), request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "the component's bytes (any content type, e.g. `application/wasm`)"),
    responses((status = 201, description = "a new version: `{ok, plugin: {name, digest, size, createdAt, createdBy}}`"),
        (status = 200, description = "this digest was uploaded before: `{ok, plugin}` as first stored"),
        (status = 400, description = "not a component"), (status = 413, description = "too large"),
        (status = 422, description = "does not fit the action-backend world (missing export, imports Portico does not offer)")))]
pub(crate) async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    caller
        .require_admin(state.store.as_ref(), "uploading plugins", "plugin", &name)
        .await?;
    if !valid_name(&name) {
        return Err(ApiError::bad_request(
            "a plugin name is 1-100 lower-case letters, digits, `-` or `_`, starting with a letter",
        ));
    }
    let bytes = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::from(PluginError::TooLarge {
                size: portico_runtime::MAX_PLUGIN_BYTES + 1,
            })
        } else {
            ApiError::bad_request(e.body_text())
        }
    })?;
    let runtime = state.runtime.clone();
    let checked = bytes.clone();
    let plugin = tokio::task::spawn_blocking(move || runtime.load_plugin(&checked))
        .await
        .map_err(ApiError::internal)??;
    let version = PluginVersion {
        name: name.clone(),
        digest: plugin.digest().to_owned(),
        size: bytes.len() as u64,
        created_at: portico_store::now(),
        created_by: caller.user.identifier.clone(),
    };
    let audit = record(
        &caller,
        "UPLOAD",
        &name,
        Some(serde_json::to_value(&version).unwrap_or_default()),
    );
    let added = state
        .store
        .put_plugin(version.clone(), bytes.to_vec(), audit)
        .await?;
    state.runner.plugins_changed();
    let status = if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let stored = state
        .store
        .list_plugins()
        .await?
        .into_iter()
        .find(|v| v.name == name && v.digest == version.digest)
        .unwrap_or(version);
    Ok((status, axum::Json(json!({ "ok": true, "plugin": stored }))))
}

/// Deletes every version of a plugin (admin).
#[utoipa::path(delete, path = "/v1/plugins/{name}", tag = "plugins", security(("bearer" = [])),
    params(("name" = String, Path)),
    responses((status = 200, description = "`{ok}`"), (status = 404, description = "no such plugin"),
        (status = 409, description = "an action uses it")))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    caller
        .require_admin(state.store.as_ref(), "deleting plugins", "plugin", &name)
        .await?;
    if !state
        .store
        .delete_plugin(&name, record(&caller, "DELETE", &name, None))
        .await?
    {
        return Err(ApiError::not_found(format!("plugin `{name}` not found")));
    }
    state.runner.plugins_changed();
    Ok(axum::Json(json!({ "ok": true })))
}
