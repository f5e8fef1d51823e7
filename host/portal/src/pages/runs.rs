//! My runs (and, for admins, everyone's): filters by action, status, user and entity; pages of
//! 50, newest first.

use super::page as render_page;
use crate::Portal;
use crate::error::PageResult;
use crate::viewer::Viewer;
use axum::Extension;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use portico_store::RunFilter;
use serde::Deserialize;
use serde_json::json;

const PAGE: usize = 50;

#[derive(Deserialize, Default)]
pub struct Filters {
    #[serde(default)]
    action: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    entity: String,
    #[serde(default)]
    cursor: String,
}

fn given(text: &str) -> Option<String> {
    Some(text.trim().to_owned()).filter(|t| !t.is_empty())
}

/// `GET /runs`.
pub async fn list(
    State(portal): State<Portal>,
    Extension(viewer): Extension<Viewer>,
    Query(f): Query<Filters>,
) -> PageResult<Response> {
    let created_by = if viewer.is_admin() {
        given(&f.user)
    } else {
        Some(viewer.user.identifier.clone())
    };
    let status = given(&f.status).and_then(|s| s.parse().ok());
    let filter = RunFilter {
        action: given(&f.action),
        status,
        created_by,
        entity: given(&f.entity),
        before: given(&f.cursor),
        limit: PAGE + 1,
    };
    let mut runs = if given(&f.status).is_some() && status.is_none() {
        Vec::new()
    } else {
        portal.state.store.list_runs(&filter).await?
    };
    let next = (runs.len() > PAGE).then(|| {
        runs.truncate(PAGE);
        runs.last().map(|r| r.id.clone())
    });
    let titles = super::action_titles(&portal).await?;
    let rows = super::run_rows(&titles, &runs);
    let mut actions: Vec<&String> = titles.keys().collect();
    actions.sort();
    let context = json!({
        "runs": rows,
        "next": next.flatten(),
        "filters": { "action": f.action, "status": f.status, "user": f.user, "entity": f.entity },
        "actions": actions,
        "statuses": ["WAITING_FOR_APPROVAL", "PENDING", "IN_PROGRESS", "SUCCESS", "FAILURE", "CANCELLED", "DECLINED"],
        "all": viewer.is_admin(),
    });
    Ok(render_page("runs.html", &viewer, "runs", context).into_response())
}
