//! Signing in with a personal API token, and signing out.
//!
//! The sign-in form is protected from cross-site posts by a double-submit cookie (there is no
//! session yet to hold a CSRF token): the form's hidden field must match the `portico_login`
//! cookie set when the form was shown.

use crate::Portal;
use crate::templates;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use portico_api::session::{self, Principal, Session};
use serde::Deserialize;
use serde_json::json;

const LOGIN_COOKIE: &str = "portico_login";

#[derive(Deserialize)]
pub struct Next {
    next: Option<String>,
}

/// `GET /login`.
pub async fn page(State(portal): State<Portal>, Query(q): Query<Next>) -> Response {
    form(&portal, q.next.as_deref(), None, StatusCode::OK)
}

fn form(portal: &Portal, next: Option<&str>, error: Option<&str>, status: StatusCode) -> Response {
    let nonce = Session::new(
        Principal::Token {
            hash: String::new(),
        },
        session::DEFAULT_TTL,
    )
    .csrf;
    let body = templates::render(
        "login.html",
        &json!({ "next": safe_next(next), "nonce": nonce, "error": error }),
    );
    let cookie = session::set_cookie(LOGIN_COOKIE, &nonce, 3600, portal.config.secure_cookies);
    (status, [(header::SET_COOKIE, cookie)], body).into_response()
}

/// Only a path on this site (never `//host`): sign-in must not redirect elsewhere.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.starts_with("/\\") => n,
        _ => "/",
    }
}

#[derive(Deserialize)]
pub struct SignIn {
    token: String,
    #[serde(default)]
    next: Option<String>,
    #[serde(default)]
    nonce: String,
}

/// `POST /login`: a valid token opens a session.
pub async fn submit(
    State(portal): State<Portal>,
    headers: HeaderMap,
    Form(form_in): Form<SignIn>,
) -> Response {
    let next = form_in.next.as_deref();
    let cookie = session::cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if form_in.nonce.is_empty() || cookie != form_in.nonce {
        return form(
            &portal,
            next,
            Some("This sign-in form expired or came from another site: sign in again."),
            StatusCode::FORBIDDEN,
        );
    }
    let hash = portico_api::auth::hash_token(form_in.token.trim());
    match portico_api::auth::user_by_token_hash(&portal.state, &hash).await {
        Ok(Some(_)) => {
            let session = Session::new(Principal::Token { hash }, portal.config.session_ttl);
            let key = &portal.state.runner.config().key;
            let secure = portal.config.secure_cookies;
            (
                AppendHeaders([
                    (header::SET_COOKIE, session.set_cookie(key, secure)),
                    (
                        header::SET_COOKIE,
                        session::set_cookie(LOGIN_COOKIE, "", 0, secure),
                    ),
                ]),
                Redirect::to(safe_next(next)),
            )
                .into_response()
        }
        Ok(None) => form(
            &portal,
            next,
            Some(
                "That token is not valid: it may be mistyped, revoked or replaced, or its user disabled.",
            ),
            StatusCode::UNAUTHORIZED,
        ),
        Err(e) => crate::error::PageError::internal(e).into_response(),
    }
}

/// `POST /logout`: forgets the session in this browser.
pub async fn logout(State(portal): State<Portal>) -> Response {
    (
        [(
            header::SET_COOKIE,
            session::clear_cookie(portal.config.secure_cookies),
        )],
        Redirect::to("/login"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn sign_in_returns_only_to_this_site() {
        assert_eq!(safe_next(Some("/runs/r_1")), "/runs/r_1");
        assert_eq!(safe_next(Some("//evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example")), "/");
        assert_eq!(safe_next(None), "/");
    }
}
