//! Admin: users and teams, tokens, plugins and actions. The page lists what is there; its
//! forms send JSON to the API itself (the browser's session authenticates, its CSRF header
//! comes along), so every rule and every error, by path, is the API's.

use super::{page as render_page, when};
use crate::Portal;
use crate::error::{PageError, PageResult};
use crate::viewer::Viewer;
use axum::Extension;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize, Default)]
pub struct Focus {
    /// Whose tokens to show.
    #[serde(default)]
    user: String,
    /// Which action to edit.
    #[serde(default)]
    action: String,
}

/// `GET /admin`.
pub async fn page(
    State(portal): State<Portal>,
    Extension(viewer): Extension<Viewer>,
    Query(focus): Query<Focus>,
) -> PageResult<Response> {
    if !viewer.is_admin() {
        return Err(PageError::Forbidden(
            "the admin pages need the admin role; you are a member".into(),
        ));
    }
    let store = &portal.state.store;
    let users: Vec<Value> = store
        .list_users()
        .await?
        .into_iter()
        .map(|u| json!({ "identifier": u.identifier, "email": u.email, "role": u.role.as_str(), "teams": u.teams.join(", "), "disabled": u.disabled }))
        .collect();
    let teams = store.list_teams().await?;
    let token_user = if focus.user.is_empty() {
        viewer.user.identifier.clone()
    } else {
        focus.user.clone()
    };
    let tokens: Vec<Value> = store
        .list_tokens(&token_user)
        .await?
        .into_iter()
        .map(|t| json!({ "id": t.id, "name": t.name, "prefix": t.prefix, "created": when(&t.created_at), "lastUsed": t.last_used_at.as_ref().map(when) }))
        .collect();
    let plugins: Vec<Value> = store
        .list_plugins()
        .await?
        .into_iter()
        .map(|p| json!({ "name": p.name, "digest": p.digest, "size": p.size, "created": when(&p.created_at), "createdBy": p.created_by }))
        .collect();
    let actions = store.list_actions().await?;
    let editing = actions
        .iter()
        .find(|a| a.identifier == focus.action)
        .map(|a| {
            let permissions = a.data.get("permissions").cloned().unwrap_or(json!({}));
            json!({
                "identifier": a.identifier,
                "json": serde_json::to_string_pretty(&a.data).unwrap_or_default(),
                "permissions": serde_json::to_string_pretty(&permissions).unwrap_or_default(),
            })
        });
    let actions: Vec<Value> = actions
        .iter()
        .map(|a| json!({ "identifier": a.identifier, "plugin": a.plugin, "title": a.data.get("title"), "updated": when(&a.updated_at) }))
        .collect();
    let context = json!({
        "users": users,
        "teams": teams.iter().map(|t| json!({ "name": t.name, "description": t.description })).collect::<Vec<_>>(),
        "token_user": token_user,
        "tokens": tokens,
        "plugins": plugins,
        "actions": actions,
        "editing": editing,
    });
    Ok(render_page("admin.html", &viewer, "admin", context).into_response())
}
