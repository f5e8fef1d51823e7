//! A run's page: its status, progress, outcome and live log; cancel, run again, and the approval
//! decision for runs waiting for one.

use super::{page as render_page, when};
use crate::Portal;
use crate::error::{PageError, PageResult};
use crate::viewer::Viewer;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form, Json};
use portico_runs::approval::ApprovalError;
use portico_runs::control::ControlError;
use portico_store::{RunRecord, RunStatus};
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;

/// The lines a page shows at first; older ones are in the API (`/v1/actions/runs/{id}/logs`).
const SHOWN_LINES: usize = 2000;

/// How often the page's stream says it is alive (see [`portico_api::events::run_events`]).
const HEARTBEAT: Duration = Duration::from_secs(5);

/// A run as its page shows it.
pub(crate) fn view(run: &RunRecord) -> Value {
    let mut shown = portico_api::show_run(run);
    shown["statusClass"] = json!(status_class(run.status));
    shown["createdAtText"] = json!(when(&run.created_at));
    shown["endedAtText"] = json!(run.ended_at.as_ref().map(when));
    shown["final"] = json!(run.is_final());
    // Links come from plugins and external systems: only http(s) ones become links.
    shown["links"] = run
        .link
        .iter()
        .map(|l| {
            let url = l
                .get("url")
                .and_then(Value::as_str)
                .or(l.as_str())
                .unwrap_or_default();
            let title = l.get("title").and_then(Value::as_str).unwrap_or(url);
            json!({ "title": title, "url": url, "safe": web_address(url) })
        })
        .collect::<Vec<_>>()
        .into();
    shown["propertiesText"] =
        json!(serde_json::to_string_pretty(&run.properties).unwrap_or_default());
    shown
}

/// Whether a link may be followed from the page: `http://` or `https://` only (a
/// `javascript:` or `data:` address from a plugin must not run in the viewer's session).
fn web_address(url: &str) -> bool {
    let lower = url.trim_start().to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://")
}

/// The badge color of a status.
pub(crate) fn status_class(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Success => "ok",
        RunStatus::Failure | RunStatus::Declined => "bad",
        RunStatus::Cancelled => "muted",
        RunStatus::WaitingForApproval => "wait",
        _ => "busy",
    }
}

async fn render(
    portal: &Portal,
    viewer: &Viewer,
    run: &RunRecord,
    notice: Option<String>,
    status: StatusCode,
) -> PageResult<Response> {
    let control = portal.state.run_control();
    let total = portal.state.store.last_log_seq(&run.id).await?;
    let after = (total - SHOWN_LINES as i64).max(0);
    let logs = portal
        .state
        .store
        .run_logs(&run.id, after, SHOWN_LINES)
        .await?;
    // Who decides, while the run waits; who decided, once anyone has.
    let waiting = run.status == RunStatus::WaitingForApproval;
    let approvers = control.approvers(run).await.unwrap_or_default();
    let decided = approvers.iter().any(|a| a.state != "PENDING");
    let approvers = if waiting || decided {
        approvers
    } else {
        Vec::new()
    };
    let pending_for_me = approvers
        .iter()
        .any(|a| a.user_id == viewer.user.identifier && a.state == "PENDING");
    // The requester sees the buttons too when they hold the approve permission: the server
    // then tells them why their own decision does not count.
    let may_decide = waiting
        && (pending_for_me
            || (run.created_by == viewer.user.identifier
                && control.would_approve(&viewer.user, run).await));
    let last_seq = logs.last().map(|l| l.seq).unwrap_or(after);
    let logs: Vec<Value> = logs
        .iter()
        .map(|l| json!({ "seq": l.seq, "at": l.at.format("%H:%M:%S%.3f").to_string(), "level": l.level, "message": l.message }))
        .collect();
    let mut shown = view(run);
    shown["actionTitle"] = match portal.state.intake.action(&run.action).await {
        Ok(Some(a)) => a.title.clone().unwrap_or(run.action.clone()).into(),
        _ => run.action.clone().into(),
    };
    let context = json!({
        "run": shown,
        "logs": logs,
        "skipped": after,
        "last_seq": last_seq,
        "approval": waiting || decided,
        "approvers": approvers,
        "may_decide": may_decide,
        "notice": notice,
    });
    Ok((status, render_page("run.html", viewer, "runs", context)).into_response())
}

/// `GET /runs/{run}`. Approvers may open runs waiting for them.
pub async fn page(
    State(portal): State<Portal>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
) -> PageResult<Response> {
    let run = portal
        .state
        .run_control()
        .viewable(&viewer.user, &id)
        .await?;
    render(&portal, &viewer, &run, None, StatusCode::OK).await
}

#[derive(Deserialize)]
pub struct After {
    #[serde(default)]
    after: i64,
}

/// `GET /runs/{run}/events`: the live stream (`Last-Event-ID` resumes after a line).
pub async fn events(
    State(portal): State<Portal>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    Query(q): Query<After>,
    headers: HeaderMap,
) -> PageResult<Response> {
    let run = portal
        .state
        .run_control()
        .viewable(&viewer.user, &id)
        .await?;
    let after = portico_api::events::resume_after(&headers, q.after);
    Ok(
        portico_api::events::run_events(portal.state.clone(), run, after, Some(HEARTBEAT))
            .into_response(),
    )
}

/// `GET /runs/{run}/poll?after=`: what a page polls when its stream is buffered by a proxy.
pub async fn poll(
    State(portal): State<Portal>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    Query(q): Query<After>,
) -> PageResult<Json<Value>> {
    let run = portal
        .state
        .run_control()
        .viewable(&viewer.user, &id)
        .await?;
    let logs = portal.state.store.run_logs(&id, q.after, 1000).await?;
    Ok(Json(
        json!({ "run": portico_api::show_run(&run), "logs": logs }),
    ))
}

/// `POST /runs/{run}/cancel`.
pub async fn cancel(
    State(portal): State<Portal>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
) -> PageResult<Response> {
    match portal.state.run_control().cancel(&viewer.user, &id).await {
        Ok(_) => Ok(Redirect::to(&format!("/runs/{id}")).into_response()),
        Err(e @ ControlError::Ended { .. }) => {
            let run = portal
                .state
                .run_control()
                .visible(&viewer.user, &id)
                .await?;
            render(
                &portal,
                &viewer,
                &run,
                Some(e.to_string()),
                StatusCode::CONFLICT,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct Decision {
    decision: String,
    #[serde(default)]
    reason: String,
    /// Where to go after deciding (the inbox, or the run).
    #[serde(default)]
    back: String,
}

/// `POST /runs/{run}/decision`: approve or decline, with a reason. A refusal is shown on the
/// run's page with the rule's words.
pub async fn decide(
    State(portal): State<Portal>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    Form(d): Form<Decision>,
) -> PageResult<Response> {
    let reason = Some(d.reason.trim().to_owned()).filter(|r| !r.is_empty());
    let decided = portal
        .state
        .run_control()
        .decide(&viewer.user, "ui", &id, &d.decision, reason)
        .await;
    match decided {
        Ok(_) => {
            let back = if d.back == "inbox" {
                "/approvals".to_owned()
            } else {
                format!("/runs/{id}")
            };
            Ok(Redirect::to(&back).into_response())
        }
        Err(ControlError::Approval(e)) => {
            let status = match e {
                ApprovalError::Forbidden(_) => StatusCode::FORBIDDEN,
                ApprovalError::Conflict(_) => StatusCode::CONFLICT,
                ApprovalError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
                _ => return Err(PageError::internal(e)),
            };
            let run = portal
                .state
                .run_control()
                .viewable(&viewer.user, &id)
                .await?;
            render(&portal, &viewer, &run, Some(e.to_string()), status).await
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::web_address;

    #[test]
    fn only_web_addresses_become_links() {
        assert!(web_address("https://github.com/acme/payments"));
        assert!(web_address("HTTP://example.com"));
        assert!(!web_address("javascript:alert(1)"));
        assert!(!web_address(" data:text/html,<script>"));
        assert!(!web_address("//evil.example"));
    }
}
