//! The API client: a bearer token, JSON in and out, and the server's error envelope turned into
//! [`CliError`]s that name each field at fault.

use crate::config::Context;
use crate::error::CliError;
use reqwest::Method;
use serde_json::Value;

/// A client for one server.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
    apply: bool,
}

impl Client {
    /// A client for `context`.
    pub fn new(context: &Context) -> Result<Self, CliError> {
        // One provider for the process; a second install is a no-op error.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .user_agent(concat!("portico-cli/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| CliError::Local(e.to_string()))?;
        Ok(Self {
            http,
            base: context.url.trim_end_matches('/').to_owned(),
            token: context.token.clone(),
            apply: false,
        })
    }

    /// The same client, naming itself `apply` to the server so the audit log records which
    /// objects an apply created (what `--prune` may delete).
    pub fn for_apply(mut self) -> Self {
        self.apply = true;
        self
    }

    /// The server's URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// A request to `path` (`/v1/...`), authenticated.
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if self.apply {
            request = request.header("portico-client", "apply");
        }
        request
    }

    /// GET, answering the JSON body.
    pub async fn get(&self, path: &str) -> Result<Value, CliError> {
        self.send(self.request(Method::GET, path)).await
    }

    /// A method with a JSON body (or none).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, CliError> {
        let mut request = self.request(method, path);
        if let Some(body) = body {
            request = request.json(body);
        }
        self.send(request).await
    }

    /// Sends and reads the answer: the body when 2xx, else the server's error.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Result<Value, CliError> {
        let response = request.send().await.map_err(|e| self.unreachable(e))?;
        read(response).await
    }

    /// The error for a request that never got an answer.
    pub fn unreachable(&self, e: reqwest::Error) -> CliError {
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(inner) = source {
            message = format!("{message}: {inner}");
            source = inner.source();
        }
        CliError::Unreachable {
            url: self.base.clone(),
            message,
        }
    }
}

/// The JSON body of a 2xx, else the error the envelope describes.
pub async fn read(response: reqwest::Response) -> Result<Value, CliError> {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(body);
    }
    let message = body["message"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| text.chars().take(200).collect());
    if status.is_server_error() {
        return Err(CliError::Server {
            status: status.as_u16(),
            message,
        });
    }
    let details = body["details"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|d| {
                    (
                        d["path"].as_str().unwrap_or("").to_owned(),
                        d["message"].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Err(CliError::Refused {
        status: status.as_u16(),
        message,
        details,
    })
}
