//! Portico's portal: the pages developers, approvers and admins use in a browser, served by
//! `portico serve` at `/` beside the API, from the same binary and origin.
//!
//! Pages are rendered on the server (minijinja templates embedded in the binary) and made live
//! with htmx and one small script (`assets/portal.js`); nothing is built with Node. Every rule
//! is the API's: runs go through the same [`portico_runs::intake::RunIntake`], reads and
//! decisions on runs through [`portico_runs::control::RunControl`], the form's conditions
//! through [`portico_runs::inputs::form_state`], and the admin pages' forms call the API itself
//! with the session (see [`portico_api::session`]).
//!
//! Modules by concern: [`viewer`] (who is signed in, CSRF), [`templates`] and [`assets`] (what
//! is embedded), [`error`] (error pages), [`form`] (an action's form from its `userInputs`), and
//! one module per page under [`pages`].

pub mod assets;
pub mod error;
pub mod form;
mod pages;
pub mod templates;
pub mod viewer;

use axum::Router;
use axum::routing::{get, post};
use portico_api::AppState;
use std::time::Duration;

/// Settings of the portal.
#[derive(Clone, Debug)]
pub struct PortalConfig {
    /// How long a sign-in lasts.
    pub session_ttl: Duration,
    /// Whether cookies get `Secure` (the portal is reached over https).
    pub secure_cookies: bool,
}

impl PortalConfig {
    /// The defaults for a server whose public address is `public_url`: cookies are `Secure`
    /// when it is https.
    pub fn for_public_url(public_url: &str) -> Self {
        Self {
            session_ttl: portico_api::session::DEFAULT_TTL,
            secure_cookies: public_url.starts_with("https://"),
        }
    }
}

/// What every page handler can reach.
#[derive(Clone)]
pub(crate) struct Portal {
    pub(crate) state: AppState,
    pub(crate) config: PortalConfig,
}

/// The portal's routes, to merge with [`portico_api::app`]'s.
pub fn router(state: AppState, config: PortalConfig) -> Router {
    let portal = Portal { state, config };
    let signed_in = Router::new()
        .route("/", get(pages::hub::page))
        .route(
            "/actions/{action}",
            get(pages::action::page).post(pages::action::submit),
        )
        .route("/actions/{action}/fields", post(pages::action::fields))
        .route(
            "/actions/{action}/options/{input}",
            get(pages::action::options),
        )
        .route("/runs", get(pages::runs::list))
        .route("/runs/{run}", get(pages::run::page))
        .route("/runs/{run}/events", get(pages::run::events))
        .route("/runs/{run}/poll", get(pages::run::poll))
        .route("/runs/{run}/cancel", post(pages::run::cancel))
        .route("/runs/{run}/again", get(pages::action::again))
        .route("/runs/{run}/decision", post(pages::run::decide))
        .route("/approvals", get(pages::approvals::page))
        .route("/catalog", get(pages::catalog::blueprints))
        .route("/catalog/{blueprint}", get(pages::catalog::table))
        .route("/catalog/{blueprint}/{entity}", get(pages::catalog::entity))
        .route("/audit", get(pages::audit::page))
        .route("/admin", get(pages::admin::page))
        .route("/logout", post(pages::login::logout))
        .layer(axum::middleware::from_fn_with_state(
            portal.clone(),
            viewer::require,
        ));
    Router::new()
        .route("/login", get(pages::login::page).post(pages::login::submit))
        .route("/assets/{file}", get(assets::serve))
        .merge(signed_in)
        .layer(axum::extract::DefaultBodyLimit::max(1 << 20))
        .layer(axum::middleware::map_response(security_headers))
        .layer(axum::middleware::from_fn(portico_api::metrics::track_http))
        .with_state(portal)
}

/// Scripts only from this origin (none inline, none from plugins' data), no framing, no MIME
/// sniffing, no referrer beyond the origin. Inline styles stay allowed: badges set a hue.
async fn security_headers(mut response: axum::response::Response) -> axum::response::Response {
    use axum::http::HeaderValue;
    let headers = response.headers_mut();
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
             img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; \
             form-action 'self'; base-uri 'none'",
        ),
    );
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    response
}
