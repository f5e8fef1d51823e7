//! The audit log, newest first, with the API's filters. Members see their own records; admins
//! see all.

use super::{page as render_page, when};
use crate::Portal;
use crate::error::PageResult;
use crate::viewer::Viewer;
use axum::Extension;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use portico_store::AuditFilter;
use serde::Deserialize;
use serde_json::{Value, json};

const PAGE: usize = 100;

#[derive(Deserialize, Default)]
pub struct Filters {
    #[serde(default)]
    resource_type: String,
    #[serde(default)]
    resource_id: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    run_id: String,
    #[serde(default)]
    before: Option<i64>,
}

fn given(text: &str) -> Option<String> {
    Some(text.trim().to_owned()).filter(|t| !t.is_empty())
}

/// `GET /audit`.
pub async fn page(
    State(portal): State<Portal>,
    Extension(viewer): Extension<Viewer>,
    Query(f): Query<Filters>,
) -> PageResult<Response> {
    let filter = AuditFilter {
        resource_type: given(&f.resource_type),
        resource_id: given(&f.resource_id),
        actor: given(&f.actor),
        run_id: given(&f.run_id),
        visible_to: (!viewer.is_admin()).then(|| viewer.user.identifier.clone()),
        before_id: f.before,
        limit: PAGE + 1,
        ..AuditFilter::default()
    };
    let mut records = portal.state.store.audit_log(&filter).await?;
    let next = (records.len() > PAGE).then(|| {
        records.truncate(PAGE);
        records.last().map(|r| r.id)
    });
    let rows: Vec<Value> = records
        .iter()
        .map(|r| {
            let mut v = serde_json::to_value(r).unwrap_or_default();
            v["atText"] = json!(when(&r.at));
            v
        })
        .collect();
    let context = json!({
        "records": rows,
        "next": next.flatten(),
        "filters": { "resource_type": f.resource_type, "resource_id": f.resource_id, "actor": f.actor, "run_id": f.run_id },
    });
    Ok(render_page("audit.html", &viewer, "audit", context).into_response())
}
