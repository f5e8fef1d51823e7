//! `/v1/plugins`: action backends as WebAssembly components. An upload is checked (a component
//! that fits the `action-backend` world) and compiled before it is stored; versions are kept by
//! digest, and a new upload never disturbs runs already using an older one.
//!
//! A Python or JavaScript component (12-19 MB, an interpreter inside) takes seconds to compile.
//! An upload waits [`UPLOAD_WAIT`] for it; past that the version is stored at once and the
//! answer is 202 with `status: "compiling"`: runs of it wait for the compile, which goes on in
//! the background. A component that then fails to compile is withdrawn (audited with the
//! reason), so no action is left naming a version that cannot run.

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use portico_runtime::{PluginError, PluginStatus, Runtime};
use portico_store::{AuditRecord, PluginVersion};
use serde_json::{Value, json};
use std::time::Duration;

/// How long an upload waits for its compile before answering 202: a Rust component is ready
/// well within it, an interpreter's is not.
const UPLOAD_WAIT: Duration = Duration::from_secs(3);

fn valid_name(name: &str) -> bool {
    (1..=100).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// A plugin's versions as the API shows them: the newest first, at the top level. `status` is
/// this server's: `ready`, `compiling`, `failed` or `stored` (loaded on its first run).
fn describe(runtime: &Runtime, versions: &[PluginVersion]) -> Value {
    let described: Vec<Value> = versions
        .iter()
        .map(|v| {
            let mut value = json!(v);
            value["status"] = status(runtime, &v.digest).into();
            value
        })
        .collect();
    // The newest version's fields, its status included, are the plugin's.
    let mut plugin = described[0].clone();
    plugin["versions"] = described.into();
    plugin
}

fn status(runtime: &Runtime, digest: &str) -> &'static str {
    match runtime.plugin_status(digest) {
        PluginStatus::Ready => "ready",
        PluginStatus::Compiling => "compiling",
        PluginStatus::Failed(_) => "failed",
        PluginStatus::NotLoaded => "stored",
    }
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
        .map(|versions| describe(&state.runtime, versions))
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
        json!({ "ok": true, "plugin": describe(&state.runtime, &versions) }),
    ))
}

/// Uploads a version (admin): the body is the component (`application/wasm`). 201 for a new
/// digest, 200 when this digest was uploaded before, 202 when it is stored but still compiling.
#[utoipa::path(put, path = "/v1/plugins/{name}", tag = "plugins", security(("bearer" = [])),
    params(("name" = String, Path, pattern = "^[a-z][a-z0-9_-]{0,99}$")), request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "the component's bytes (any content type, e.g. `application/wasm`)"),
    responses((status = 201, description = "a new version: `{ok, plugin: {name, digest, size, createdAt, createdBy}}`"),
        (status = 200, description = "this digest was uploaded before: `{ok, plugin}` as first stored"),
        (status = 202, description = "stored, still compiling (a large component): `{ok, plugin, status: \"compiling\", message}`; runs wait for it"),
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
    portico_runtime::precheck_plugin(&bytes)?;
    let digest = portico_runtime::plugin_digest(&bytes);
    let runtime = state.runtime.clone();
    let checked = bytes.clone();
    let mut compile = tokio::task::spawn_blocking(move || runtime.load_plugin(&checked));
    let compiling = match tokio::time::timeout(UPLOAD_WAIT, &mut compile).await {
        Ok(compiled) => {
            compiled.map_err(ApiError::internal)??;
            None
        }
        Err(_) => Some(compile),
    };
    let version = PluginVersion {
        name: name.clone(),
        digest: digest.clone(),
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
    let stored = state
        .store
        .list_plugins()
        .await?
        .into_iter()
        .find(|v| v.name == name && v.digest == version.digest)
        .unwrap_or(version);
    if let Some(compile) = compiling {
        let message = format!(
            "stored; compiling in the background (a large component takes seconds): runs of \
             it wait for the compile, and GET /v1/plugins/{name} shows its status"
        );
        tokio::spawn(withdraw_if_it_fails(state, caller, name, digest, compile));
        return Ok((
            StatusCode::ACCEPTED,
            axum::Json(json!({ "ok": true, "plugin": stored, "status": "compiling",
                               "message": message })),
        ));
    }
    let status = if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(json!({ "ok": true, "plugin": stored }))))
}

/// Waits for a background compile; a version that does not compile is withdrawn, with the
/// reason in the audit log (the uploader was told 202 and is no longer there to hear it).
async fn withdraw_if_it_fails(
    state: AppState,
    caller: Caller,
    name: String,
    digest: String,
    compile: tokio::task::JoinHandle<Result<std::sync::Arc<portico_runtime::Plugin>, PluginError>>,
) {
    let why = match compile.await {
        Ok(Ok(_)) => return,
        Ok(Err(e)) => e.to_string(),
        Err(e) => format!("the compile stopped: {e}"),
    };
    tracing::warn!(plugin = %name, %digest, "withdrawing an upload that does not compile: {why}");
    let mut audit = record(&caller, "WITHDRAW", &name, None);
    audit.before = Some(json!({ "digest": digest }));
    audit.after = Some(json!({ "reason": why }));
    match state
        .store
        .withdraw_plugin_version(&name, &digest, audit)
        .await
    {
        Ok(_) => state.runner.plugins_changed(),
        Err(e) => tracing::error!(plugin = %name, %digest, "cannot withdraw the upload: {e}"),
    }
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
