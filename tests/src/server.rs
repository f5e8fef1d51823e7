//! A real HTTP server on 127.0.0.1 that records every request it gets.
//!
//! Routes: `/status/<code>` answers that status with a long text body; `/slow` answers after a
//! minute; `/echo` reflects the request as a hostile origin would (its headers as response
//! headers, and a body holding the headers as they came, base64- and percent-encoded too,
//! streamed in 3-byte chunks); `/gzip` answers with `content-encoding: gzip`;
//! `/redirect/<path>` answers 307 to `/<path>`; `/github/repos/...` answers as GitHub's API does the
//! calls the `open-pull-request` example makes (a branch's commit, a new pull request);
//! anything else answers 200 with `{"received": true}`.

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// A request as the server saw it.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// The method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Headers, names lower-case.
    pub headers: Vec<(String, String)>,
    /// The body as text.
    pub body: String,
}

impl Recorded {
    /// The first header with this name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The server; it stops when the test's tokio runtime ends.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

/// The body of every non-2xx answer: long, so truncation shows.
pub const ERROR_BODY: &str = "upstream refused the deployment because the image tag does not \
    exist in the registry; check the tag and try again. This sentence is padding so that the \
    body is longer than any preview: lorem ipsum dolor sit amet, consectetur adipiscing elit, \
    sed do eiusmod tempor incididunt ut labore et dolore magna aliqua.";

impl TestServer {
    /// Starts listening on 127.0.0.1 on a free port.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = requests.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let recorded = recorded.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(req, recorded.clone()));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, requests }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The origin, for a grant: `http://127.0.0.1:<port>`.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().expect("not poisoned").clone()
    }
}

/// A body sent in the chunks it was cut into, so that a value can straddle two of them.
pub struct Chunks(std::collections::VecDeque<Bytes>);

impl hyper::body::Body for Chunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Ready(self.0.pop_front().map(|b| Ok(hyper::body::Frame::data(b))))
    }
}

fn chunks(text: &str, size: usize) -> Chunks {
    Chunks(
        text.as_bytes()
            .chunks(size)
            .map(Bytes::copy_from_slice)
            .collect(),
    )
}

async fn handle(
    req: Request<hyper::body::Incoming>,
    recorded: Arc<Mutex<Vec<Recorded>>>,
) -> Result<Response<Chunks>, hyper::Error> {
    let method = req.method().to_string();
    let path = req
        .uri()
        .path_and_query()
        .map_or("/".into(), |p| p.to_string());
    let mut echo = Response::builder();
    for (name, value) in req.headers() {
        echo = echo.header(format!("x-echo-{name}"), value.clone());
    }
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = req.into_body().collect().await?.to_bytes();
    let dump: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    recorded.lock().expect("not poisoned").push(Recorded {
        method,
        path: path.clone(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    });

    match path.as_str() {
        "/echo" => {
            use base64::Engine as _;
            let encoded = base64::engine::general_purpose::STANDARD.encode(&dump);
            let escaped: String = dump
                .bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect();
            let text = format!("{dump}\nbase64: {encoded}\nescaped: {escaped}\n");
            return Ok(echo.body(chunks(&text, 3)).expect("a valid response"));
        }
        "/gzip" => {
            let response = Response::builder()
                .header("content-encoding", "gzip")
                .body(chunks("\x1f\u{8b} not really gzip", 64))
                .expect("a valid response");
            return Ok(response);
        }
        _ => {}
    }

    if path == "/slow" {
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
    }
    let github = path.starts_with("/github/repos/");
    let (status, body) = match path
        .strip_prefix("/status/")
        .and_then(|c| c.parse::<u16>().ok())
    {
        Some(code) => (code, ERROR_BODY.to_owned()),
        None if github && path.contains("/git/ref/heads/") => {
            (200, r#"{"object": {"sha": "5f3c1a0"}}"#.to_owned())
        }
        None if github && path.ends_with("/pulls") => (
            201,
            r#"{"number": 42, "html_url": "https://github.example/acme/docs/pull/42", "state": "open"}"#
                .to_owned(),
        ),
        None => (200, r#"{"received": true}"#.to_owned()),
    };
    let mut response = Response::new(chunks(&body, 64 * 1024));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    if let Some(target) = path.strip_prefix("/redirect/") {
        *response.status_mut() = hyper::StatusCode::TEMPORARY_REDIRECT;
        if let Ok(location) = hyper::header::HeaderValue::from_str(&format!("/{target}")) {
            response
                .headers_mut()
                .insert(hyper::header::LOCATION, location);
        }
    }
    Ok(response)
}
