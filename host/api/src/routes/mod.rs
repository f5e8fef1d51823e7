//! One module per resource; [`router`] puts them together.

mod actions;
mod audit;
mod blueprints;
mod entities;
pub(crate) mod health;
mod openapi;
mod plugins;
pub(crate) mod runs;
mod users;

use crate::AppState;
use axum::Router;
use axum::routing::{get, post};
use serde::Deserialize;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "Portico", description = "Self-service actions with sandboxed WebAssembly backends"),
    paths(
        health::healthz, health::readyz, health::metrics,
        blueprints::list, blueprints::create, blueprints::get_one, blueprints::replace, blueprints::delete,
        entities::list, entities::create, entities::get_one, entities::replace, entities::patch,
        entities::delete, entities::search,
        users::list_users, users::create_user, users::get_user, users::patch_user, users::delete_user,
        users::list_tokens, users::create_token, users::revoke_token, users::rotate_token,
        users::list_teams, users::create_team,
        audit::list,
        plugins::list, plugins::get_one, plugins::upload, plugins::delete,
        actions::list, actions::create, actions::get_one, actions::replace, actions::delete,
        actions::get_permissions, actions::patch_permissions,
        runs::create, runs::list, runs::get_one, runs::logs, runs::cancel, runs::retry, runs::report, runs::append_log, runs::approve, runs::approvers,
    ),
    tags(
        (name = "health"), (name = "blueprints"), (name = "entities"), (name = "users"), (name = "audit"), (name = "plugins"), (name = "actions"), (name = "runs")
    ),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document, built once: the annotations, the request and success bodies' schemas, then
/// the shared [`openapi::conventions`].
async fn openapi() -> axum::Json<&'static serde_json::Value> {
    static DOC: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    axum::Json(DOC.get_or_init(|| {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
        openapi::conventions(openapi::success_responses(openapi::request_bodies(doc)))
    }))
}

/// `?limit=&cursor=` on list endpoints.
#[derive(Debug, Deserialize)]
pub(crate) struct Page {
    #[serde(default = "default_limit")]
    pub(crate) limit: usize,
    pub(crate) cursor: Option<String>,
}

fn default_limit() -> usize {
    100
}

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/openapi.json", get(openapi))
        .route(
            "/v1/blueprints",
            get(blueprints::list).post(blueprints::create),
        )
        .route(
            "/v1/blueprints/{blueprint}",
            get(blueprints::get_one)
                .put(blueprints::replace)
                .delete(blueprints::delete),
        )
        .route(
            "/v1/blueprints/{blueprint}/entities",
            get(entities::list).post(entities::create),
        )
        .route(
            "/v1/blueprints/{blueprint}/entities/{entity}",
            get(entities::get_one)
                .put(entities::replace)
                .patch(entities::patch)
                .delete(entities::delete),
        )
        .route("/v1/entities/search", post(entities::search))
        .route("/v1/users", get(users::list_users).post(users::create_user))
        .route(
            "/v1/users/{user}",
            get(users::get_user)
                .patch(users::patch_user)
                .delete(users::delete_user),
        )
        .route(
            "/v1/users/{user}/tokens",
            get(users::list_tokens).post(users::create_token),
        )
        .route(
            "/v1/users/{user}/tokens/{token_id}",
            axum::routing::delete(users::revoke_token),
        )
        .route(
            "/v1/users/{user}/tokens/{token_id}/rotate",
            post(users::rotate_token),
        )
        .route("/v1/teams", get(users::list_teams).post(users::create_team))
        .route("/v1/audit-log", get(audit::list))
        .route("/v1/actions", get(actions::list).post(actions::create))
        .route("/v1/actions/runs", get(runs::list))
        .route(
            "/v1/actions/runs/{run_id}",
            get(runs::get_one).patch(runs::report),
        )
        .route(
            "/v1/actions/runs/{run_id}/logs",
            get(runs::logs).post(runs::append_log),
        )
        .route("/v1/actions/runs/{run_id}/cancel", post(runs::cancel))
        .route("/v1/actions/runs/{run_id}/retry", post(runs::retry))
        .route(
            "/v1/actions/runs/{run_id}/approval",
            axum::routing::patch(runs::approve),
        )
        .route("/v1/actions/runs/{run_id}/approvers", get(runs::approvers))
        .route("/v1/actions/{action}/runs", post(runs::create))
        .route(
            "/v1/actions/{action}",
            get(actions::get_one)
                .put(actions::replace)
                .delete(actions::delete),
        )
        .route(
            "/v1/actions/{action}/permissions",
            get(actions::get_permissions).patch(actions::patch_permissions),
        )
        .route("/v1/plugins", get(plugins::list))
        .route(
            "/v1/plugins/{name}",
            get(plugins::get_one)
                .put(plugins::upload)
                .delete(plugins::delete)
                .layer(axum::extract::DefaultBodyLimit::max(
                    portico_runtime::MAX_PLUGIN_BYTES,
                )),
        )
        .fallback(|| async { crate::ApiError::not_found("no such route; see /openapi.json") })
}
