//! The approvals inbox: runs waiting for the viewer's decision.

use super::page as render_page;
use crate::Portal;
use crate::error::PageResult;
use crate::viewer::Viewer;
use axum::Extension;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The most waiting runs the inbox looks through.
const LOOK_AT: usize = 500;

/// `GET /approvals`.
pub async fn page(
    State(portal): State<Portal>,
    Extension(viewer): Extension<Viewer>,
) -> PageResult<Response> {
    let awaiting = portal
        .state
        .run_control()
        .awaiting(&viewer.user, LOOK_AT)
        .await?;
    let runs: Vec<_> = awaiting.iter().map(|(run, _)| run.clone()).collect();
    let titles = super::action_titles(&portal).await?;
    let mut waiting = super::run_rows(&titles, &runs);
    for (shown, (_, approvers)) in waiting.iter_mut().zip(&awaiting) {
        shown["approvers"] = json!(approvers);
    }
    Ok(render_page(
        "approvals.html",
        &viewer,
        "approvals",
        json!({ "runs": waiting }),
    )
    .into_response())
}
