//! Runs: `POST /v1/actions/{id}/runs` commits a run and answers 202 at once; workers execute it.
//! `GET /v1/actions/runs[/{id}[/logs]]` show runs and their logs; `POST .../cancel` stops one.

use crate::AppState;
use crate::auth::{Caller, Reporter};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Query};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portico_runs::external::{ExternalLog, ExternalReport, Reports};
use portico_runs::intake::{RunAsk, Source};
use portico_store::{Role, RunFilter, RunRecord, RunStatus};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// What a client sends to start a run.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewRun {
    #[serde(default)]
    properties: Value,
    /// The entity's identifier, for DAY-2 and DELETE actions.
    #[serde(default)]
    entity: Option<String>,
}

/// A run as the API shows it (Port's run fields plus progress, error and affected entities).
pub fn show(run: &RunRecord) -> Value {
    serde_json::to_value(Shown::of(run)).unwrap_or_default()
}

/// [`show`], serialized straight from the record (no `Value` tree on the hot path).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Shown<'a> {
    id: &'a str,
    action: Identifier<'a>,
    blueprint: Option<Identifier<'a>>,
    entity: Option<Identifier<'a>>,
    properties: &'a Value,
    status: RunStatus,
    status_label: &'a Option<String>,
    link: &'a [Value],
    summary: &'a Option<String>,
    progress: &'a Option<Value>,
    error: &'a Option<Value>,
    affected_entities: &'a Value,
    output: &'a Option<Value>,
    source: &'a str,
    created_by: &'a str,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
    ended_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Serialize)]
struct Identifier<'a> {
    identifier: &'a str,
}

impl<'a> Shown<'a> {
    fn of(run: &'a RunRecord) -> Self {
        let identifier =
            |id: &'a Option<String>| id.as_deref().map(|identifier| Identifier { identifier });
        Self {
            id: &run.id,
            action: Identifier {
                identifier: &run.action,
            },
            blueprint: identifier(&run.blueprint),
            entity: identifier(&run.entity),
            properties: &run.properties,
            status: run.status,
            status_label: &run.status_label,
            link: &run.link,
            summary: &run.summary,
            progress: &run.progress,
            error: &run.error,
            affected_entities: &run.affected_entities,
            output: &run.output,
            source: &run.source,
            created_by: &run.created_by,
            created_at: run.created_at,
            updated_at: run.updated_at,
            ended_at: run.ended_at,
        }
    }
}

/// The 202 answer: `{ok, run}`.
#[derive(Serialize)]
struct Accepted<'a> {
    ok: bool,
    run: Shown<'a>,
}

/// Triggers a run: validated, committed, then answered 202 with the run.
#[utoipa::path(post, path = "/v1/actions/{action}/runs", tag = "runs", security(("bearer" = [])),
    params(("action" = String, Path)), request_body(content = Object, description = "`{properties, entity?}`"),
    responses((status = 202, description = "`{ok, run}` (committed)"), (status = 403, description = "may not execute"),
        (status = 409, description = "an automation: its event runs it"), (status = 422, description = "invalid inputs; `details` names each input"),
        (status = 429, description = "over one of the action's quotas"), (status = 503, description = "queue full; retry after Retry-After")))]
pub(crate) async fn create(
    State(state): State<AppState>,
    arrived: Option<axum::Extension<crate::metrics::RequestStarted>>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<NewRun>,
) -> ApiResult<Response> {
    let ask = RunAsk {
        properties: body.properties,
        entity: body.entity,
    };
    let run = state
        .intake
        .request(&caller.user, Source::Api, &id, ask)
        .await?;
    if let Some(axum::Extension(arrived)) = arrived {
        portico_runs::metrics::accept_latency(arrived.0.elapsed());
    }
    accepted(&run)
}

/// The 202 of a committed run, serialized straight from the record.
fn accepted(run: &RunRecord) -> ApiResult<Response> {
    let answer = serde_json::to_vec(&Accepted {
        ok: true,
        run: Shown::of(run),
    })
    .map_err(ApiError::internal)?;
    let json = [(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    )];
    Ok((StatusCode::ACCEPTED, json, answer).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct RunFilters {
    action: Option<String>,
    status: Option<String>,
    user: Option<String>,
    entity: Option<String>,
    // Not `#[serde(flatten)] Page`: flattened numbers do not parse from a query string.
    #[serde(default = "default_limit")]
    limit: usize,
    cursor: Option<String>,
}

fn default_limit() -> usize {
    100
}

/// Runs, newest first. Members see their own runs; admins see all.
#[utoipa::path(get, path = "/v1/actions/runs", tag = "runs", security(("bearer" = [])),
    params(("action" = Option<String>, Query), ("status" = Option<String>, Query), ("user" = Option<String>, Query),
        ("entity" = Option<String>, Query), ("limit" = Option<usize>, Query, minimum = 1, maximum = 1000), ("cursor" = Option<String>, Query)),
    responses((status = 200, description = "`{ok, runs, next}`")))]
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(f): Query<RunFilters>,
) -> ApiResult<axum::Json<Value>> {
    if f.limit == 0 || f.limit > 1000 {
        return Err(ApiError::bad_request("`limit` must be between 1 and 1000"));
    }
    let created_by = if caller.user.role == Role::Admin {
        f.user
    } else {
        Some(caller.user.identifier.clone())
    };
    let filter = RunFilter {
        action: f.action,
        status: match f.status.as_deref().map(str::parse) {
            None => None,
            Some(Ok(status)) => Some(status),
            // No run has a status that does not exist.
            Some(Err(_)) => {
                return Ok(axum::Json(json!({ "ok": true, "runs": [], "next": null })));
            }
        },
        created_by,
        entity: f.entity,
        before: f.cursor,
        limit: f.limit + 1,
    };
    let mut runs = state.store.list_runs(&filter).await?;
    let next = if runs.len() > f.limit {
        runs.truncate(f.limit);
        runs.last().map(|r| r.id.clone())
    } else {
        None
    };
    let runs: Vec<Value> = runs.iter().map(show).collect();
    Ok(axum::Json(
        json!({ "ok": true, "runs": runs, "next": next }),
    ))
}

async fn visible_run(state: &AppState, caller: &Caller, id: &str) -> ApiResult<RunRecord> {
    Ok(state.run_control().visible(&caller.user, id).await?)
}

/// One run.
#[utoipa::path(get, path = "/v1/actions/runs/{run_id}", tag = "runs", security(("bearer" = [])),
    params(("run_id" = String, Path)), responses((status = 200, description = "`{ok, run}`"), (status = 404, description = "no such run")))]
pub(crate) async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    let run = visible_run(&state, &caller, &id).await?;
    Ok(axum::Json(json!({ "ok": true, "run": show(&run) })))
}

#[derive(Debug, Deserialize)]
pub(crate) struct LogQuery {
    #[serde(default)]
    after: i64,
    #[serde(default = "log_limit")]
    limit: usize,
}

fn log_limit() -> usize {
    1000
}

/// A run's log lines, in order; `?after=<seq>` continues from a line. With
/// `Accept: text/event-stream` it streams `log` events (id = seq), `status` events when the run
/// changes, and one `end` event with the final run; `Last-Event-ID` resumes after a line.
#[utoipa::path(get, path = "/v1/actions/runs/{run_id}/logs", tag = "runs", security(("bearer" = [])),
    params(("run_id" = String, Path), ("after" = Option<i64>, Query), ("limit" = Option<usize>, Query, minimum = 1, maximum = 10000)),
    responses((status = 200, description = "`{ok, logs: [{seq, at, level, message}]}`, or an event stream")))]
pub(crate) async fn logs(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<LogQuery>,
    headers: axum::http::HeaderMap,
) -> ApiResult<Response> {
    if q.limit == 0 || q.limit > 10_000 {
        return Err(ApiError::bad_request("`limit` must be between 1 and 10000"));
    }
    let run = visible_run(&state, &caller, &id).await?;
    let wants_stream = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/event-stream"));
    if wants_stream {
        let resume = crate::events::resume_after(&headers, q.after);
        return Ok(crate::events::run_events(state, run, resume, None).into_response());
    }
    let lines = state.store.run_logs(&id, q.after, q.limit).await?;
    Ok(axum::Json(json!({ "ok": true, "logs": lines })).into_response())
}

/// Cancels a run that has not ended: a pending run ends at once, a running one within a second.
#[utoipa::path(post, path = "/v1/actions/runs/{run_id}/cancel", tag = "runs", security(("bearer" = [])),
    params(("run_id" = String, Path)),
    responses((status = 200, description = "`{ok, run}`"), (status = 409, description = "already ended")))]
pub(crate) async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    let run = state.run_control().cancel(&caller.user, &id).await?;
    Ok(axum::Json(json!({ "ok": true, "run": show(&run) })))
}

/// What a client sends to run an action again.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Retry {
    /// Inputs to change, and the secret inputs again.
    #[serde(default)]
    properties: Value,
}

/// Runs a run's action again with the inputs it ran with (and the same entity): what "run again"
/// in the portal and `portico runs retry` do. Secret inputs must be given again in
/// `properties`; every rule of a new run request applies.
#[utoipa::path(post, path = "/v1/actions/runs/{run_id}/retry", tag = "runs", security(("bearer" = [])),
    params(("run_id" = String, Path)), request_body(content = Object, description = "`{properties?}`: inputs to change, secret inputs again"),
    responses((status = 202, description = "`{ok, run}`: the new run (committed)"), (status = 403, description = "may not execute the action now"),
        (status = 404, description = "no such run visible to you, or its action is gone"), (status = 409, description = "an automation's run"),
        (status = 422, description = "invalid inputs, e.g. a secret input not given again"), (status = 429, description = "over one of the action's quotas"),
        (status = 503, description = "queue full; retry after Retry-After")))]
pub(crate) async fn retry(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<Retry>,
) -> ApiResult<Response> {
    let previous = visible_run(&state, &caller, &id).await?;
    let run = state
        .intake
        .retry(&caller.user, Source::Api, &previous, body.properties)
        .await?;
    accepted(&run)
}

/// An external system (holding the run's token) or an admin reports on a run:
/// `{status: SUCCESS | FAILURE | IN_PROGRESS, statusLabel, summary, link}`.
#[utoipa::path(patch, path = "/v1/actions/runs/{run_id}", tag = "runs", security(("bearer" = [])),
    params(("run_id" = String, Path)), request_body(content = Object, description = "`{status, statusLabel, summary, link}`"),
    responses((status = 200, description = "`{ok, run}`"), (status = 403, description = "token for another run, or not an admin"),
        (status = 409, description = "already ended")))]
pub(crate) async fn report(
    State(state): State<AppState>,
    reporter: Reporter,
    Path(id): Path<String>,
    Json(body): Json<ExternalReport>,
) -> ApiResult<axum::Json<Value>> {
    let run = reports(&state).report(&reporter.into(), &id, body).await?;
    Ok(axum::Json(json!({ "ok": true, "run": show(&run) })))
}

/// The external report rules over this server's store and runner.
fn reports(state: &AppState) -> Reports<'_> {
    Reports {
        store: state.store.as_ref(),
        runner: &state.runner,
    }
}

/// Appends a line to a run's log (run token or admin); `terminationStatus` ends the run.
#[utoipa::path(post, path = "/v1/actions/runs/{run_id}/logs", tag = "runs", security(("bearer" = [])),
    params(("run_id" = String, Path)), request_body(content = Object, description = "`{message, level?, terminationStatus?, statusLabel?}`"),
    responses((status = 201, description = "`{ok, log}`"), (status = 409, description = "already ended")))]
pub(crate) async fn append_log(
    State(state): State<AppState>,
    reporter: Reporter,
    Path(id): Path<String>,
    Json(body): Json<ExternalLog>,
) -> ApiResult<Response> {
    let line = reports(&state)
        .append_log(&reporter.into(), &id, body)
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({ "ok": true, "log": line })),
    )
        .into_response())
}

/// An approver's decision: `{status: APPROVE | DECLINE, description}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Decision {
    status: String,
    #[serde(default)]
    description: Option<String>,
}

/// An approver approves or declines a run waiting for approval. ANY: one approval starts it;
/// ALL: every approver's; one decline ends it as DECLINED.
#[utoipa::path(patch, path = "/v1/actions/runs/{run_id}/approval", tag = "runs", security(("bearer" = [])),
    params(("run_id" = String, Path)), request_body(content = Object, description = "`{status: APPROVE | DECLINE, description}`"),
    responses((status = 200, description = "`{ok, run}`"), (status = 403, description = "not an approver, or your own run"),
        (status = 409, description = "not waiting, or already decided")))]
pub(crate) async fn approve(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<Decision>,
) -> ApiResult<axum::Json<Value>> {
    let run = state
        .run_control()
        .decide(&caller.user, "api", &id, &body.status, body.description)
        .await?;
    Ok(axum::Json(json!({ "ok": true, "run": show(&run) })))
}

/// Who may decide on a run, and what each decided: `{approvers: [{userId, state, description}]}`.
#[utoipa::path(get, path = "/v1/actions/runs/{run_id}/approvers", tag = "runs", security(("bearer" = [])),
    params(("run_id" = String, Path)), responses((status = 200, description = "`{ok, approvers}`")))]
pub(crate) async fn approvers(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    // Any user may read who decides (approvers must, on runs they did not request).
    let control = state.run_control();
    let run = control.any(&id).await?;
    let list = control.approvers(&run).await?;
    Ok(axum::Json(json!({ "ok": true, "approvers": list })))
}
