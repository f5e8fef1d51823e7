//! The approvals inbox: runs waiting for the viewer's decision.

use super::page as render_page;
use crate::Portal;
use crate::error::PageResult;
use crate::viewer::Viewer;
use axum::Extension;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use portico_store::{RunFilter, RunStatus};
use serde_json::json;

/// The most waiting runs the inbox looks through.
const LOOK_AT: usize = 500;

/// `GET /approvals`.
pub async fn page(
    State(portal): State<Portal>,
    Extension(viewer): Extension<Viewer>,
) -> PageResult<Response> {
    let control = portal.state.run_control();
    let filter = RunFilter {
        status: Some(RunStatus::WaitingForApproval),
        limit: LOOK_AT,
        ..RunFilter::default()
    };
    let mut waiting = Vec::new();
    for run in portal.state.store.list_runs(&filter).await? {
        let approvers = control.approvers(&run).await.unwrap_or_default();
        if approvers
            .iter()
            .any(|a| a.user_id == viewer.user.identifier && a.state == "PENDING")
        {
            let mut shown = super::run_rows(&portal, std::slice::from_ref(&run))
                .await?
                .remove(0);
            shown["approvers"] = json!(approvers);
            waiting.push(shown);
        }
    }
    Ok(render_page(
        "approvals.html",
        &viewer,
        "approvals",
        json!({ "runs": waiting }),
    )
    .into_response())
}
