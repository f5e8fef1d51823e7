//! Who is looking: every page but sign-in needs a session ([`portico_api::session`]), and every
//! request that changes something must carry the session's CSRF token, in the `x-csrf-token`
//! header (htmx and the portal's script send it) or the `_csrf` field (plain forms).

use crate::Portal;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use portico_api::session::{self, CSRF_FIELD, Principal, Session};
use portico_store::{Role, User};

/// The signed-in user of a page, put in the request's extensions by [`require`].
#[derive(Clone, Debug)]
pub struct Viewer {
    /// Who (as the store has them now).
    pub user: User,
    /// Their session (its CSRF token goes into every form).
    pub session: Session,
}

impl Viewer {
    /// Whether the viewer is an admin.
    pub fn is_admin(&self) -> bool {
        self.user.role == Role::Admin
    }

    /// What every page's layout shows of the viewer.
    pub fn context(&self) -> serde_json::Value {
        serde_json::json!({
            "identifier": self.user.identifier,
            "admin": self.is_admin(),
            "csrf": self.session.csrf,
        })
    }
}

/// The largest form a page posts (the run form with every input filled).
const MAX_FORM: usize = 1 << 20;

/// Lets a request through with its [`Viewer`], or sends the browser to sign in; refuses a change
/// without the session's CSRF token.
pub(crate) async fn require(
    State(portal): State<Portal>,
    request: Request,
    next: Next,
) -> Response {
    let key = &portal.state.runner.config().key;
    let session = Session::from_headers(request.headers(), key);
    let user = match &session {
        None => None,
        Some(session) => match &session.principal {
            Principal::Token { hash } => {
                match portico_api::auth::user_by_token_hash(&portal.state, hash).await {
                    Ok(user) => user,
                    Err(e) => return crate::error::PageError::internal(e).into_response(),
                }
            }
        },
    };
    let (Some(session), Some(user)) = (session, user) else {
        return sign_in_first(&portal, &request);
    };
    let mut request = request;
    if !request.method().is_safe() && !session.csrf_matches(request.headers()) {
        // A plain form: look for the field in its body, then hand the body on untouched.
        let (parts, body) = request.into_parts();
        let Ok(bytes) = to_bytes(body, MAX_FORM).await else {
            return (StatusCode::PAYLOAD_TOO_LARGE, "the form is too large").into_response();
        };
        let token = form_field(&bytes, CSRF_FIELD);
        if !token.is_some_and(|t| session.csrf_is(&t)) {
            return refused_without_csrf();
        }
        request = Request::from_parts(parts, Body::from(bytes));
    }
    request.extensions_mut().insert(Viewer { user, session });
    next.run(request).await
}

/// A browser without a (valid) session: pages redirect to sign-in and come back; htmx requests
/// are told to go there; other changes are refused.
fn sign_in_first(portal: &Portal, request: &Request) -> Response {
    let back = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let login = format!("/login?next={}", encode(back));
    // A link followed from another site (a chat message, a notification) arrives without the
    // session, which is `SameSite=Strict`; the same page loaded again from here carries it.
    let from_elsewhere = request
        .headers()
        .get("sec-fetch-site")
        .is_some_and(|v| v == "cross-site");
    if from_elsewhere
        && request.method() == axum::http::Method::GET
        && session::cookie(request.headers(), session::COOKIE).is_none()
    {
        return (
            [(header::CACHE_CONTROL, "no-store")],
            axum::response::Html(
                "<!doctype html><meta http-equiv=\"refresh\" content=\"0\"><title>Portico</title>\
                 <p>Opening Portico…</p>",
            ),
        )
            .into_response();
    }
    let clear = session::clear_cookie(portal.config.secure_cookies);
    if request.headers().contains_key("hx-request") {
        let mut response = StatusCode::UNAUTHORIZED.into_response();
        if let Ok(value) = HeaderValue::from_str(&login) {
            response.headers_mut().insert("hx-redirect", value);
        }
        return response;
    }
    if request.method().is_safe() {
        let mut response = Redirect::to(&login).into_response();
        response.headers_mut().insert(header::SET_COOKIE, clear);
        return response;
    }
    crate::error::PageError::Forbidden(
        "you are not signed in (or your session ended): sign in again, then retry".into(),
    )
    .into_response()
}

fn refused_without_csrf() -> Response {
    crate::error::PageError::Forbidden(
        "this form lacks its security token (CSRF): reload the page and submit it again".into(),
    )
    .into_response()
}

/// The value of `name` in an `application/x-www-form-urlencoded` body (CSRF tokens are hex, so
/// they need no decoding).
fn form_field(body: &[u8], name: &str) -> Option<String> {
    std::str::from_utf8(body)
        .ok()?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// Percent-encodes what goes into a query string.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_csrf_field_is_found_among_others() {
        assert_eq!(
            form_field(b"a=1&_csrf=ab12&b=2", "_csrf").as_deref(),
            Some("ab12")
        );
        assert_eq!(form_field(b"a=1", "_csrf"), None);
    }

    #[test]
    fn a_return_path_is_encoded() {
        assert_eq!(encode("/runs?status=x y"), "/runs%3Fstatus%3Dx%20y");
    }
}
