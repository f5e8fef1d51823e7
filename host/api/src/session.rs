//! Browser sessions: what the portal's sign-in gives a browser instead of a bearer token.
//!
//! A session is a cookie sealed with the host key (AES-GCM, see
//! [`portico_runs::host_key::HostKey::seal`]): it holds who signed in ([`Principal`]), the
//! session's CSRF secret and when it ends. Nothing is stored on the server, so every replica
//! sharing the host key accepts it. Each request resolves the principal again, so revoking the
//! token a session was opened with, or disabling its user, ends the session on the next
//! request. A new way to sign in (OIDC) is one more [`Principal`] and one more login route; the
//! cookie, its checks and the CSRF rules stay as they are.

use axum::http::{HeaderMap, HeaderValue, header};
use chrono::Utc;
use portico_runs::host_key::HostKey;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The session cookie's name.
pub const COOKIE: &str = "portico_session";
/// The header a script sends the session's CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The form field a plain HTML form sends it in.
pub const CSRF_FIELD: &str = "_csrf";
/// How long a session lasts unless configured otherwise.
pub const DEFAULT_TTL: Duration = Duration::from_secs(8 * 3600);
/// What sealed cookies are bound to, so no other sealed blob passes for a session.
const CONTEXT: &str = "portico-session-v1";

/// Who a session speaks for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Principal {
    /// Signed in with a personal API token; kept as its hash, which is how the store finds it.
    Token {
        /// SHA-256 of the token, hex.
        hash: String,
    },
}

/// A signed-in browser.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Who.
    pub principal: Principal,
    /// This session's CSRF token: every change the browser asks for must carry it.
    pub csrf: String,
    /// When the session ends (Unix seconds).
    pub expires: i64,
}

impl Session {
    /// A new session for `principal`, ending after `ttl`.
    pub fn new(principal: Principal, ttl: Duration) -> Self {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).unwrap_or_else(|e| panic!("the OS random source failed: {e}"));
        Self {
            principal,
            csrf: hex::encode(bytes),
            expires: Utc::now().timestamp() + ttl.as_secs() as i64,
        }
    }

    /// The cookie's value.
    pub fn seal(&self, key: &HostKey) -> String {
        key.seal(&serde_json::to_value(self).unwrap_or_default(), CONTEXT)
    }

    /// The session a cookie value holds; `None` when it was not sealed by this key, was
    /// altered, or has ended.
    pub fn open(value: &str, key: &HostKey) -> Option<Self> {
        let session: Self = serde_json::from_value(key.open(value, CONTEXT)?).ok()?;
        (session.expires > Utc::now().timestamp()).then_some(session)
    }

    /// The session a request's cookie holds, if any.
    pub fn from_headers(headers: &HeaderMap, key: &HostKey) -> Option<Self> {
        cookie(headers, COOKIE).and_then(|value| Self::open(value, key))
    }

    /// Whether the request carries this session's CSRF token in its header.
    pub fn csrf_matches(&self, headers: &HeaderMap) -> bool {
        headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| self.csrf_is(v))
    }

    /// Whether `token` is this session's CSRF token (compared in constant time).
    pub fn csrf_is(&self, token: &str) -> bool {
        let (a, b) = (self.csrf.as_bytes(), token.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    /// `Set-Cookie` for this session: `HttpOnly`, `SameSite=Strict`, `Secure` over https.
    pub fn set_cookie(&self, key: &HostKey, secure: bool) -> HeaderValue {
        let max_age = (self.expires - Utc::now().timestamp()).max(0);
        set_cookie(COOKIE, &self.seal(key), max_age, secure)
    }
}

/// `Set-Cookie` that removes the session.
pub fn clear_cookie(secure: bool) -> HeaderValue {
    set_cookie(COOKIE, "", 0, secure)
}

/// A `Set-Cookie` value with the attributes every Portico cookie has.
pub fn set_cookie(name: &str, value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text =
        format!("{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The value of cookie `name` in a request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        Session::new(Principal::Token { hash: "abc".into() }, DEFAULT_TTL)
    }

    #[test]
    fn a_sealed_session_opens_with_its_key_only() {
        let key = HostKey::random();
        let s = session();
        assert_eq!(Session::open(&s.seal(&key), &key), Some(s.clone()));
        assert_eq!(Session::open(&s.seal(&key), &HostKey::random()), None);
    }

    #[test]
    fn an_ended_session_is_refused() {
        let key = HostKey::random();
        let mut s = session();
        s.expires = Utc::now().timestamp() - 1;
        assert_eq!(Session::open(&s.seal(&key), &key), None);
    }

    #[test]
    fn an_altered_cookie_is_refused() {
        let key = HostKey::random();
        let mut sealed = session().seal(&key).into_bytes();
        let last = sealed.len() - 3;
        sealed[last] = if sealed[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            Session::open(&String::from_utf8(sealed).unwrap(), &key),
            None
        );
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_over_https() {
        let key = HostKey::random();
        let plain = session().set_cookie(&key, false);
        let plain = plain.to_str().unwrap();
        assert!(plain.contains("HttpOnly") && plain.contains("SameSite=Strict"));
        assert!(!plain.contains("Secure"));
        assert!(
            session()
                .set_cookie(&key, true)
                .to_str()
                .unwrap()
                .ends_with("; Secure")
        );
    }

    #[test]
    fn csrf_tokens_compare_exactly() {
        let s = session();
        assert!(s.csrf_is(&s.csrf.clone()));
        assert!(!s.csrf_is(""));
        assert!(!s.csrf_is(&s.csrf[1..]));
    }
}
