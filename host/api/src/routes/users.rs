//! `/v1/users` and `/v1/teams`, managed by admins. A new user's token is shown once.

use crate::AppState;
use crate::auth::{Caller, hash_token, new_token};
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use portico_store::{AuditRecord, Role, Team, User};
use serde::Deserialize;
use serde_json::{Value, json};

fn record(caller: &Caller, resource_type: &str, id: &str, after: Value) -> AuditRecord {
    let mut record =
        AuditRecord::success(&caller.user.identifier, "api", "CREATE", resource_type, id);
    record.after = Some(after);
    record
}

fn invalid(path: &str, message: &str) -> ApiError {
    portico_catalog::CatalogError::field(path, message).into()
}

fn valid_name(name: &str) -> bool {
    (1..=100).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '@' | '_' | '-' | '.'))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewUser {
    identifier: String,
    #[serde(default)]
    email: Option<String>,
    role: String,
    #[serde(default)]
    teams: Vec<String>,
}

/// Every user (admin).
#[utoipa::path(get, path = "/v1/users", tag = "users", security(("bearer" = [])),
    responses((status = 200, description = "`{ok, users}`"), (status = 403, description = "not an admin")))]
pub(crate) async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<axum::Json<Value>> {
    caller
        .require_admin(state.store.as_ref(), "listing users", "user", "*")
        .await?;
    Ok(axum::Json(
        json!({ "ok": true, "users": state.store.list_users().await? }),
    ))
}

/// Creates a user (admin); the answer holds the user's token, shown only this once.
#[utoipa::path(post, path = "/v1/users", tag = "users", security(("bearer" = [])),
    request_body(content = Object, description = "`{identifier, email, role: admin|member, teams}`"),
    responses((status = 201, description = "`{ok, user, token}`"), (status = 409, description = "exists"), (status = 422, description = "invalid")))]
pub(crate) async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    Json(input): Json<NewUser>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    state.lookups.users.clear();
    caller
        .require_admin(
            state.store.as_ref(),
            "creating users",
            "user",
            &input.identifier,
        )
        .await?;
    if !valid_name(&input.identifier) {
        return Err(invalid(
            "identifier",
            "must be 1-100 letters, digits, `@`, `_`, `-` or `.`",
        ));
    }
    let role =
        Role::parse(&input.role).ok_or_else(|| invalid("role", "must be `admin` or `member`"))?;
    if input.email.as_deref().is_some_and(|e| !e.contains('@')) {
        return Err(invalid("email", "must be an e-mail address"));
    }
    let known: Vec<String> = state
        .store
        .list_teams()
        .await?
        .into_iter()
        .map(|t| t.name)
        .collect();
    if let Some((i, team)) = input
        .teams
        .iter()
        .enumerate()
        .find(|(_, t)| !known.contains(t))
    {
        return Err(invalid(
            &format!("teams[{i}]"),
            &format!("team `{team}` does not exist; create it first"),
        ));
    }
    let user = User {
        identifier: input.identifier,
        email: input.email,
        role,
        teams: input.teams,
        created_at: portico_store::now(),
    };
    let token = new_token();
    let audit = record(
        &caller,
        "user",
        &user.identifier,
        serde_json::to_value(&user).unwrap_or_default(),
    );
    state
        .store
        .create_user(user.clone(), hash_token(&token), audit)
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({ "ok": true, "user": user, "token": token })),
    ))
}

/// One user (admin, or the user themself).
#[utoipa::path(get, path = "/v1/users/{user}", tag = "users", security(("bearer" = [])),
    params(("user" = String, Path)), responses((status = 200, description = "`{ok, user}`"), (status = 404, description = "no such user")))]
pub(crate) async fn get_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    if caller.user.identifier != id {
        caller
            .require_admin(state.store.as_ref(), "reading other users", "user", &id)
            .await?;
    }
    let user = state
        .store
        .get_user(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("user `{id}` not found")))?;
    Ok(axum::Json(json!({ "ok": true, "user": user })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewTeam {
    name: String,
    #[serde(default)]
    description: Option<String>,
}

/// Every team (admin).
#[utoipa::path(get, path = "/v1/teams", tag = "users", security(("bearer" = [])),
    responses((status = 200, description = "`{ok, teams}`")))]
pub(crate) async fn list_teams(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<axum::Json<Value>> {
    caller
        .require_admin(state.store.as_ref(), "listing teams", "team", "*")
        .await?;
    Ok(axum::Json(
        json!({ "ok": true, "teams": state.store.list_teams().await? }),
    ))
}

/// Creates a team (admin).
#[utoipa::path(post, path = "/v1/teams", tag = "users", security(("bearer" = [])),
    request_body(content = Object, description = "`{name, description}`"),
    responses((status = 201, description = "`{ok, team}`"), (status = 409, description = "exists")))]
pub(crate) async fn create_team(
    State(state): State<AppState>,
    caller: Caller,
    Json(input): Json<NewTeam>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    state.lookups.users.clear();
    caller
        .require_admin(state.store.as_ref(), "creating teams", "team", &input.name)
        .await?;
    if !valid_name(&input.name) {
        return Err(invalid(
            "name",
            "must be 1-100 letters, digits, `@`, `_`, `-` or `.`",
        ));
    }
    let team = Team {
        name: input.name,
        description: input.description,
        created_at: portico_store::now(),
    };
    let audit = record(
        &caller,
        "team",
        &team.name,
        serde_json::to_value(&team).unwrap_or_default(),
    );
    state.store.create_team(team.clone(), audit).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({ "ok": true, "team": team })),
    ))
}
