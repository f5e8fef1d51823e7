//! `/v1/audit-log`: who changed what, newest first. Admins see everything; members see changes
//! to blueprints and entities (which they may read) and their own attempts.

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::Query;
use axum::extract::State;
use chrono::{DateTime, Utc};
use portico_store::AuditFilter;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Deserialize)]
pub(crate) struct Filters {
    resource: Option<String>,
    identifier: Option<String>,
    actor: Option<String>,
    run_id: Option<String>,
    from: Option<String>,
    to: Option<String>,
    #[serde(default = "default_limit")]
    limit: usize,
    cursor: Option<String>,
}

fn default_limit() -> usize {
    100
}

fn date(name: &str, value: Option<String>) -> ApiResult<Option<DateTime<Utc>>> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(&v)
                .map(|d| d.with_timezone(&Utc))
                .map_err(|_| {
                    ApiError::bad_request(format!(
                        "`{name}` must be a date-time such as 2026-11-28T10:00:00Z"
                    ))
                })
        })
        .transpose()
}

/// Audit entries, newest first, filtered.
#[utoipa::path(get, path = "/v1/audit-log", tag = "audit", security(("bearer" = [])),
    params(("resource" = Option<String>, Query), ("identifier" = Option<String>, Query), ("actor" = Option<String>, Query),
        ("run_id" = Option<String>, Query), ("from" = Option<String>, Query, format = DateTime), ("to" = Option<String>, Query, format = DateTime),
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 1000), ("cursor" = Option<String>, Query, pattern = "^[0-9]{1,18}$")),
    responses((status = 200, description = "`{ok, audit, next}`")))]
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(f): Query<Filters>,
) -> ApiResult<axum::Json<Value>> {
    if f.limit == 0 || f.limit > 1000 {
        return Err(ApiError::bad_request("`limit` must be between 1 and 1000"));
    }
    let before_id = f
        .cursor
        .map(|c| {
            c.parse::<i64>()
                .map_err(|_| ApiError::bad_request("`cursor` is not one this server returned"))
        })
        .transpose()?;
    let filter = AuditFilter {
        resource_type: f.resource,
        resource_id: f.identifier,
        actor: f.actor,
        run_id: f.run_id,
        from: date("from", f.from)?,
        to: date("to", f.to)?,
        visible_to: (!caller.is_admin()).then(|| caller.user.identifier.clone()),
        before_id,
        limit: f.limit + 1,
    };
    let mut entries = state.store.audit_log(&filter).await?;
    let next = if entries.len() > f.limit {
        entries.truncate(f.limit);
        entries.last().map(|e| e.id.to_string())
    } else {
        None
    };
    Ok(axum::Json(
        json!({ "ok": true, "audit": entries, "next": next }),
    ))
}
