//! `/v1/users` and `/v1/teams`, managed by admins, and `/v1/users/{user}/tokens`, which a user
//! manages for themself (and an admin for anyone). A token's value is shown once: when it is
//! created or rotated.

use crate::AppState;
use crate::auth::{Caller, forget_tokens, hash_token, new_token, token_prefix, token_record};
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use portico_store::{ApiToken, AuditRecord, Role, StoreError, Team, User};
use serde::Deserialize;
use serde_json::{Value, json};

/// The most tokens one user may hold; past it, creating one is refused (409) until one is
/// revoked, so a leaked or looping client cannot fill the database.
pub(crate) const MAX_TOKENS_PER_USER: usize = 25;

fn record(caller: &Caller, resource_type: &str, id: &str, after: Value) -> AuditRecord {
    let mut record = AuditRecord::success(
        &caller.user.identifier,
        caller.origin,
        "CREATE",
        resource_type,
        id,
    );
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

/// 422 naming the first team that does not exist.
async fn check_teams(state: &AppState, teams: &[String]) -> ApiResult<()> {
    let known: Vec<String> = state
        .store
        .list_teams()
        .await?
        .into_iter()
        .map(|t| t.name)
        .collect();
    if let Some((i, team)) = teams.iter().enumerate().find(|(_, t)| !known.contains(t)) {
        return Err(invalid(
            &format!("teams[{i}]"),
            &format!("team `{team}` does not exist; create it first"),
        ));
    }
    Ok(())
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
    check_teams(&state, &input.teams).await?;
    let user = User {
        identifier: input.identifier,
        email: input.email,
        role,
        teams: input.teams,
        disabled: false,
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
        .create_user(
            user.clone(),
            token_record(&user.identifier, None, &token),
            hash_token(&token),
            audit,
        )
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

/// The user, or 404.
async fn existing_user(state: &AppState, id: &str) -> ApiResult<User> {
    state
        .store
        .get_user(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("user `{id}` not found")))
}

/// A user's own tokens are theirs to manage; anyone else's need an admin (403, audited).
async fn own_or_admin(state: &AppState, caller: &Caller, what: &str, user: &str) -> ApiResult<()> {
    if caller.user.identifier == user {
        return Ok(());
    }
    caller
        .require_admin(state.store.as_ref(), what, "user", user)
        .await
}

/// A refusal by the store that leaves the last admin in place (409), recorded in the audit log
/// like other refused admin changes.
async fn refused(state: &AppState, e: StoreError, mut audit: AuditRecord) -> ApiError {
    if let StoreError::InUse(message) = &e {
        audit.status = portico_store::AuditStatus::Failure;
        audit.reason = Some(message.clone());
        audit.after = None;
        if let Err(e) = state.store.record(audit).await {
            tracing::error!("cannot record a refused change: {e}");
        }
    }
    e.into()
}

/// A JSON body that may be left out (`{}` is assumed): 400 when it is not JSON, 413 past the
/// body limit, 422 when it does not have the expected shape.
fn optional_body<T: serde::de::DeserializeOwned + Default>(
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<T> {
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the body is larger than the server's request body limit",
        ),
        status => ApiError::new(status, "bad_request", rejection.body_text()),
    })?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    crate::extract::require_object(&body)?;
    serde_json::from_slice(&body).map_err(|e| {
        if e.classify() == serde_json::error::Category::Data {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                format!("the body does not have the expected shape: {e}"),
            )
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("the body is not valid JSON: {e}"),
            )
        }
    })
}

/// A token as shown once, with its value.
fn with_value(token: &ApiToken, value: &str) -> Value {
    let mut shown = serde_json::to_value(token).unwrap_or_default();
    shown["value"] = json!(value);
    shown
}

fn token_audit(caller: &Caller, operation: &str, token: &ApiToken) -> AuditRecord {
    AuditRecord::success(
        &caller.user.identifier,
        "api",
        operation,
        "token",
        &format!("{}/{}", token.user, token.id),
    )
}

/// A user's tokens (the user themself, or an admin): id, name, prefix, when created, rotated
/// and last used (to the minute). Never their values.
#[utoipa::path(get, path = "/v1/users/{user}/tokens", tag = "users", security(("bearer" = [])),
    params(("user" = String, Path)),
    responses((status = 200, description = "`{ok, tokens: [{id, user, name, prefix, createdAt, rotatedAt, lastUsedAt}]}`"),
        (status = 401, description = "no valid token"), (status = 403, description = "another user's tokens, and not an admin"),
        (status = 404, description = "no such user")))]
pub(crate) async fn list_tokens(
    State(state): State<AppState>,
    caller: Caller,
    Path(user): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    own_or_admin(&state, &caller, "listing another user's tokens", &user).await?;
    existing_user(&state, &user).await?;
    let tokens = state.store.list_tokens(&user).await?;
    Ok(axum::Json(json!({ "ok": true, "tokens": tokens })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewToken {
    #[serde(default)]
    name: Option<String>,
}

/// Creates a token for a user (the user themself, or an admin); the answer holds its value,
/// shown only this once. The body (`{name}`, a label) may be left out.
#[utoipa::path(post, path = "/v1/users/{user}/tokens", tag = "users", security(("bearer" = [])),
    params(("user" = String, Path)),
    request_body(content = Object, description = "`{name}` (optional)"),
    responses((status = 201, description = "`{ok, token: {id, user, name, prefix, createdAt, value}}`"),
        (status = 400, description = "malformed JSON"), (status = 401, description = "no valid token"),
        (status = 403, description = "another user, and not an admin"), (status = 404, description = "no such user"),
        (status = 409, description = "the user holds the most tokens allowed"), (status = 422, description = "invalid name")))]
pub(crate) async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(user): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    own_or_admin(&state, &caller, "creating tokens for another user", &user).await?;
    let input: NewToken = optional_body(body)?;
    if let Some(name) = &input.name
        && (name.trim().is_empty()
            || name.chars().count() > 100
            || name.chars().any(char::is_control))
    {
        return Err(invalid(
            "name",
            "must be 1-100 characters, without control characters",
        ));
    }
    existing_user(&state, &user).await?;
    let held = state.store.list_tokens(&user).await?.len();
    if held >= MAX_TOKENS_PER_USER {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!(
                "user `{user}` holds {held} tokens, the most allowed ({MAX_TOKENS_PER_USER}); \
                 revoke one first"
            ),
        ));
    }
    let value = new_token();
    let token = token_record(&user, input.name, &value);
    let mut audit = token_audit(&caller, "CREATE", &token);
    audit.after = Some(serde_json::to_value(&token).unwrap_or_default());
    state
        .store
        .create_token(token.clone(), hash_token(&value), audit)
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({ "ok": true, "token": with_value(&token, &value) })),
    ))
}

/// The user's token, or 404.
async fn existing_token(state: &AppState, user: &str, id: &str) -> ApiResult<ApiToken> {
    state
        .store
        .list_tokens(user)
        .await?
        .into_iter()
        .find(|t| t.id == id)
        .ok_or_else(|| ApiError::not_found(format!("user `{user}` has no token `{id}`")))
}

/// Revokes a token (the user themself, or an admin): it fails from the next request on.
#[utoipa::path(delete, path = "/v1/users/{user}/tokens/{token_id}", tag = "users", security(("bearer" = [])),
    params(("user" = String, Path), ("token_id" = String, Path)),
    responses((status = 200, description = "`{ok, deleted: <token id>}`"), (status = 401, description = "no valid token"),
        (status = 403, description = "another user's token, and not an admin"), (status = 404, description = "no such token")))]
pub(crate) async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    Path((user, id)): Path<(String, String)>,
) -> ApiResult<axum::Json<Value>> {
    own_or_admin(&state, &caller, "revoking another user's tokens", &user).await?;
    let token = existing_token(&state, &user, &id).await?;
    let mut audit = token_audit(&caller, "DELETE", &token);
    audit.before = Some(serde_json::to_value(&token).unwrap_or_default());
    let deleted = state.store.delete_token(&user, &id, audit).await?;
    forget_tokens(&state);
    if !deleted {
        return Err(ApiError::not_found(format!(
            "user `{user}` has no token `{id}`"
        )));
    }
    Ok(axum::Json(json!({ "ok": true, "deleted": id })))
}

/// Gives a token a new value (the user themself, or an admin), shown only this once; the old
/// value fails from the next request on. The id and name stay.
#[utoipa::path(post, path = "/v1/users/{user}/tokens/{token_id}/rotate", tag = "users", security(("bearer" = [])),
    params(("user" = String, Path), ("token_id" = String, Path)),
    responses((status = 200, description = "`{ok, token: {id, user, name, prefix, createdAt, rotatedAt, value}}`"),
        (status = 401, description = "no valid token"), (status = 403, description = "another user's token, and not an admin"),
        (status = 404, description = "no such token")))]
pub(crate) async fn rotate_token(
    State(state): State<AppState>,
    caller: Caller,
    Path((user, id)): Path<(String, String)>,
) -> ApiResult<axum::Json<Value>> {
    own_or_admin(&state, &caller, "rotating another user's tokens", &user).await?;
    let before = existing_token(&state, &user, &id).await?;
    let value = new_token();
    let at = portico_store::now();
    let mut audit = token_audit(&caller, "ROTATE", &before);
    audit.before = Some(serde_json::to_value(&before).unwrap_or_default());
    let rotated = state
        .store
        .rotate_token(
            &user,
            &id,
            hash_token(&value),
            token_prefix(&value),
            at,
            audit,
        )
        .await?;
    forget_tokens(&state);
    let token =
        rotated.ok_or_else(|| ApiError::not_found(format!("user `{user}` has no token `{id}`")))?;
    Ok(axum::Json(
        json!({ "ok": true, "token": with_value(&token, &value) }),
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserChange {
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    teams: Option<Vec<String>>,
    #[serde(default)]
    disabled: Option<bool>,
}

/// Changes a user's role, teams or disabled flag (admin). A disabled user's tokens fail from
/// the next request on; the last enabled admin cannot be demoted or disabled (409).
#[utoipa::path(patch, path = "/v1/users/{user}", tag = "users", security(("bearer" = [])),
    params(("user" = String, Path)),
    request_body(content = Object, description = "any of `{role: admin|member, teams: [...], disabled: bool}`"),
    responses((status = 200, description = "`{ok, user}`"), (status = 400, description = "malformed JSON"),
        (status = 401, description = "no valid token"), (status = 403, description = "not an admin"),
        (status = 404, description = "no such user"), (status = 409, description = "the last enabled admin"),
        (status = 422, description = "invalid role or unknown team")))]
pub(crate) async fn patch_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(change): Json<UserChange>,
) -> ApiResult<axum::Json<Value>> {
    caller
        .require_admin(state.store.as_ref(), "changing users", "user", &id)
        .await?;
    if change.role.is_none() && change.teams.is_none() && change.disabled.is_none() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "nothing to change: send any of `role`, `teams` and `disabled`",
        ));
    }
    let before = existing_user(&state, &id).await?;
    let mut after = before.clone();
    if let Some(role) = &change.role {
        after.role =
            Role::parse(role).ok_or_else(|| invalid("role", "must be `admin` or `member`"))?;
    }
    if let Some(teams) = change.teams {
        check_teams(&state, &teams).await?;
        after.teams = teams;
    }
    if let Some(disabled) = change.disabled {
        after.disabled = disabled;
    }
    let mut audit = AuditRecord::success(&caller.user.identifier, "api", "UPDATE", "user", &id);
    audit.before = Some(serde_json::to_value(&before).unwrap_or_default());
    audit.after = Some(serde_json::to_value(&after).unwrap_or_default());
    let updated = match state.store.update_user(after.clone(), audit.clone()).await {
        Ok(updated) => updated,
        Err(e) => return Err(refused(&state, e, audit).await),
    };
    forget_tokens(&state);
    if !updated {
        return Err(ApiError::not_found(format!("user `{id}` not found")));
    }
    Ok(axum::Json(json!({ "ok": true, "user": after })))
}

/// Deletes a user and all their tokens (admin); the last enabled admin cannot be deleted (409).
/// What the user did stays in the audit log under their identifier.
#[utoipa::path(delete, path = "/v1/users/{user}", tag = "users", security(("bearer" = [])),
    params(("user" = String, Path)),
    responses((status = 200, description = "`{ok, deleted: <user>}`"), (status = 401, description = "no valid token"),
        (status = 403, description = "not an admin"), (status = 404, description = "no such user"),
        (status = 409, description = "the last enabled admin")))]
pub(crate) async fn delete_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    caller
        .require_admin(state.store.as_ref(), "deleting users", "user", &id)
        .await?;
    let before = existing_user(&state, &id).await?;
    let mut audit = AuditRecord::success(&caller.user.identifier, "api", "DELETE", "user", &id);
    audit.before = Some(serde_json::to_value(&before).unwrap_or_default());
    let deleted = match state.store.delete_user(&id, audit.clone()).await {
        Ok(deleted) => deleted,
        Err(e) => return Err(refused(&state, e, audit).await),
    };
    forget_tokens(&state);
    if !deleted {
        return Err(ApiError::not_found(format!("user `{id}` not found")));
    }
    Ok(axum::Json(json!({ "ok": true, "deleted": id })))
}
