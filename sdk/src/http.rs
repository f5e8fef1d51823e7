//! Outgoing HTTP, to the origins the action grants (`capabilities.http`).
//!
//! The host adds the grant's headers (credentials) after the request leaves the plugin: do not
//! set them yourself, and expect never to see them. A request to an origin that is not granted
//! fails with [`HttpError::Denied`].
//!
//! ```no_run
//! use portico_sdk::{http, json};
//!
//! let response = http::post("https://api.example.com/deployments")
//!     .json(&json!({ "service": "payments", "tag": "v1.2.3" }))
//!     .send()?;
//! if !response.is_success() {
//!     println!("upstream said {}: {}", response.status, response.text());
//! }
//! # Ok::<(), http::HttpError>(())
//! ```

use crate::types::Failure;
use wstd::http::{Body, Client, ErrorCode, Request};

/// A request being built.
#[derive(Clone, Debug)]
#[must_use = "a request does nothing until `send` is called"]
pub struct RequestBuilder {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// Starts a request with any method.
pub fn request(method: &str, url: &str) -> RequestBuilder {
    RequestBuilder {
        method: method.to_owned(),
        url: url.to_owned(),
        headers: Vec::new(),
        body: Vec::new(),
    }
}

/// Starts a GET request.
pub fn get(url: &str) -> RequestBuilder {
    request("GET", url)
}

/// Starts a POST request.
pub fn post(url: &str) -> RequestBuilder {
    request("POST", url)
}

/// Starts a PUT request.
pub fn put(url: &str) -> RequestBuilder {
    request("PUT", url)
}

/// Starts a DELETE request.
pub fn delete(url: &str) -> RequestBuilder {
    request("DELETE", url)
}

impl RequestBuilder {
    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets a JSON body and its content type.
    pub fn json<T: serde::Serialize + ?Sized>(self, value: &T) -> Self {
        let body = serde_json::to_vec(value).unwrap_or_default();
        self.header("content-type", "application/json").body(body)
    }

    /// Sends the request and reads the whole response.
    pub fn send(self) -> Result<Response, HttpError> {
        let mut builder = Request::builder()
            .method(self.method.as_str())
            .uri(&self.url);
        for (name, value) in &self.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let request = builder
            .body(Body::from(self.body))
            .map_err(|e| HttpError::InvalidRequest(e.to_string()))?;
        wstd::runtime::block_on(async move {
            let response = Client::new()
                .send(request)
                .await
                .map_err(HttpError::from_wstd)?;
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let mut body = response.into_body();
            let body = body
                .contents()
                .await
                .map_err(HttpError::from_wstd)?
                .to_vec();
            Ok(Response {
                status,
                headers,
                body,
            })
        })
    }
}

/// A response, read in full.
#[derive(Clone, Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Headers, names lower-case.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, HttpError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| HttpError::Transport(format!("response body: {e}")))
    }

    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why a request failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpError {
    /// The action does not grant this origin, or it resolves to a private address.
    Denied(String),
    /// The request could not be built (bad URL, header or method).
    InvalidRequest(String),
    /// Connecting, sending or receiving failed.
    Transport(String),
}

impl HttpError {
    fn from_wstd(e: wstd::http::Error) -> Self {
        match e.downcast_ref::<ErrorCode>() {
            Some(ErrorCode::HttpRequestDenied) => {
                Self::Denied("the host denied the request (origin not granted)".into())
            }
            Some(ErrorCode::DestinationIpProhibited) => {
                Self::Denied("the host denied the request (destination address not allowed)".into())
            }
            Some(code) => Self::Transport(format!("{code:?}")),
            None => Self::Transport(format!("{e:#}")),
        }
    }
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Denied(m) => write!(f, "HTTP request denied: {m}"),
            Self::InvalidRequest(m) => write!(f, "invalid HTTP request: {m}"),
            Self::Transport(m) => write!(f, "HTTP request failed: {m}"),
        }
    }
}

impl std::error::Error for HttpError {}

/// A denial stays a denial; anything else fails the run with the error's text.
impl From<HttpError> for Failure {
    fn from(e: HttpError) -> Self {
        match e {
            HttpError::Denied(m) => Failure::Denied(m),
            other => Failure::Failed(other.to_string()),
        }
    }
}
