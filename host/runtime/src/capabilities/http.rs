//! Outgoing HTTP (`wasi:http/outgoing-handler`), limited to the origins the action grants.
//!
//! The guest builds a request; before anything leaves the host, [`HttpHooks::send_request`]
//! checks its `scheme://host:port`, method and path against the grant and the run's request
//! budget, adds the grant's headers (secrets filled in by the host, if the operator allows this
//! action to use them, replacing any header of that name the guest set), resolves the name and
//! refuses private and loopback addresses unless the grant names the address itself, then
//! connects to the vetted address (TLS verified against the original host name) with timeouts
//! clamped to what is left of the run. When secrets were injected, the response comes back with
//! every form of them redacted ([`scrub`]), and compressed responses are refused.

mod scrub;

use crate::capabilities::secrets::{SecretsProvider, Template};
use crate::capabilities::sink::{Denials, LogSink};
use crate::events::{CallOutcome, CallTarget, CapabilityCall, LogLevel};
use crate::limits::{GrantError, Limits};
use crate::net::is_public;
use http::Method;
use http::header::{ACCEPT_ENCODING, CONTENT_ENCODING, HeaderName, HeaderValue};
use http::uri::Scheme;
use http_body_util::BodyExt;
pub(crate) use scrub::Redactor;
use scrub::ScrubBody;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpHooks};

/// One reachable origin: `scheme://host[:port]`, no path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpGrantEntry {
    /// The origin, e.g. `https://api.github.com` or `http://10.0.0.5:8080`.
    pub url: String,
    /// Headers added to every request to this origin, after the plugin built it; values may use
    /// `{{ .secrets.NAME }}`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The methods the plugin may use; absent: all but `TRACE` and `CONNECT`, which are always
    /// refused (they reflect or tunnel what the host injected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<String>>,
    /// Path prefixes the plugin may request (whole segments: `/repos/acme` allows
    /// `/repos/acme/x`, not `/repos/acme-evil`); absent: every path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    /// Allows secrets over plain `http` to a host name (a named address is always allowed).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
}

/// One granted origin, checked and ready to match.
#[derive(Debug)]
pub(crate) struct HttpRule {
    tls: bool,
    host: String,
    port: u16,
    /// Set when the grant names an address: the only case where private addresses are allowed.
    ip: Option<IpAddr>,
    /// Each header with its value's template and its name as the action spells it (for errors
    /// that point at the field).
    headers: Vec<(HeaderName, Template, String)>,
    /// `None`: every method but the refused ones.
    methods: Option<Vec<Method>>,
    /// `None`: every path.
    paths: Option<Vec<String>>,
}

/// Methods never sent: `TRACE` echoes the request (and the injected headers) back, `CONNECT`
/// opens a tunnel the host cannot see into.
const REFUSED_METHODS: [Method; 2] = [Method::TRACE, Method::CONNECT];
/// Request headers the plugin may send in all, names and values: a proxy's usual bound.
const MAX_REQUEST_HEADER_BYTES: usize = 64 << 10;
/// Response headers read from an origin (hyper's buffer and header count).
const MAX_RESPONSE_HEADER_BYTES: usize = 64 << 10;
const MAX_RESPONSE_HEADERS: usize = 128;

impl HttpRule {
    /// Checks every entry of `capabilities.http`.
    pub(crate) fn parse_all(entries: &[HttpGrantEntry]) -> Result<Arc<[Self]>, GrantError> {
        entries
            .iter()
            .enumerate()
            .map(|(i, entry)| Self::parse(entry, &format!("capabilities.http[{i}]")))
            .collect()
    }

    pub(crate) fn parse(entry: &HttpGrantEntry, path: &str) -> Result<Self, GrantError> {
        let url_path = format!("{path}.url");
        let bad = |reason: &str| GrantError::new(&url_path, reason);
        let uri: http::Uri = entry
            .url
            .parse()
            .map_err(|e| bad(&format!("not a URL ({e}); expected scheme://host[:port]")))?;
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(bad("the scheme must be http or https")),
        };
        let authority = uri.authority().ok_or_else(|| bad("a host is required"))?;
        if authority.as_str().contains('@') {
            return Err(bad("credentials in the URL are not allowed; use headers"));
        }
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(bad(
                "an origin has no path or query: use scheme://host[:port]",
            ));
        }
        let host = normalise_host(authority.host());
        let headers = entry
            .headers
            .iter()
            .map(|(name, value)| {
                let field = format!("{path}.headers.{name}");
                let header = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| GrantError::new(&field, "not a valid header name"))?;
                Ok((header, Template::parse(value, &field)?, name.clone()))
            })
            .collect::<Result<Vec<_>, GrantError>>()?;
        let ip: Option<IpAddr> = host.parse().ok();
        let secret = headers
            .iter()
            .find_map(|(_, t, _)| t.secret_names().next().map(str::to_owned));
        if let Some(secret) = secret
            && !tls
            && ip.is_none()
            && !entry.insecure
        {
            return Err(bad(&format!(
                "secret `{secret}` would be sent over plain http: use https, name the \
                 address itself, or set \"insecure\": true"
            )));
        }
        let methods = match &entry.methods {
            None => None,
            Some(list) => Some(
                list.iter()
                    .enumerate()
                    .map(|(i, m)| {
                        let field = format!("{path}.methods[{i}]");
                        let method = Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                            .map_err(|_| GrantError::new(&field, "not an HTTP method"))?;
                        if REFUSED_METHODS.contains(&method) {
                            return Err(GrantError::new(
                                &field,
                                format!("{method} is never allowed: it reflects or tunnels the injected headers"),
                            ));
                        }
                        Ok(method)
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        let paths = match &entry.paths {
            None => None,
            Some(list) => Some(
                list.iter()
                    .enumerate()
                    .map(|(i, p)| {
                        if !p.starts_with('/') || !is_plain_path(p) {
                            return Err(GrantError::new(
                                format!("{path}.paths[{i}]"),
                                "a path prefix starts with `/` and has no `.`/`..` segments, \
                                 escaped `.` or `/`, query or fragment",
                            ));
                        }
                        Ok(p.trim_end_matches('/').to_owned())
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        Ok(Self {
            tls,
            port: uri.port_u16().unwrap_or(if tls { 443 } else { 80 }),
            ip,
            host,
            headers,
            methods,
            paths,
        })
    }

    fn allows_method(&self, method: &Method) -> bool {
        self.methods.as_ref().is_none_or(|m| m.contains(method))
    }

    /// Whole-segment prefix match on a path already known to be plain.
    fn allows_path(&self, path: &str) -> bool {
        self.paths.as_ref().is_none_or(|prefixes| {
            prefixes.iter().any(|prefix| {
                prefix.is_empty()
                    || path == prefix
                    || path
                        .strip_prefix(prefix.as_str())
                        .is_some_and(|rest| rest.starts_with('/'))
            })
        })
    }

    /// What the rule allows, for a denial message.
    fn describe(&self) -> String {
        let methods = self
            .methods
            .as_ref()
            .map_or("any but TRACE/CONNECT".to_owned(), |m| {
                m.iter().map(Method::as_str).collect::<Vec<_>>().join(", ")
            });
        let paths = self
            .paths
            .as_ref()
            .map_or("any".to_owned(), |p| p.join(", "));
        format!("methods: {methods}; paths: {paths}")
    }

    fn origin(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}:{}", self.host, self.port)
    }
}

/// Whether the operator lets `action` use every configured secret its checked grant (`rules`)
/// names, for the origin each is sent to; the error names the grant's header and the rule to
/// change.
pub(crate) fn check_secret_access(
    rules: &[HttpRule],
    secrets: &dyn SecretsProvider,
    action: &str,
) -> Result<(), GrantError> {
    for (i, rule) in rules.iter().enumerate() {
        let origin = rule.origin();
        for (_, template, written) in &rule.headers {
            let path = format!("capabilities.http[{i}].headers.{written}");
            for name in template.secret_names() {
                if secrets.secret(name).is_none() {
                    continue;
                }
                let access = secrets.access(name);
                let allowed = |list: &[String]| {
                    if list.is_empty() {
                        "none".to_owned()
                    } else {
                        list.join(", ")
                    }
                };
                if !access.allows_action(action) {
                    return Err(GrantError::new(
                        path,
                        format!(
                            "secret `{name}` may not be used by action `{action}`: the operator \
                             allows it for {} (PORTICO_SECRET_<NAME>_ACTIONS or \
                             secrets/<name>.actions)",
                            allowed(&access.actions)
                        ),
                    ));
                }
                if !access.allows_origin(&origin) {
                    return Err(GrantError::new(
                        path,
                        format!(
                            "secret `{name}` may not be sent to {origin}: the operator allows it \
                             for {} (PORTICO_SECRET_<NAME>_ORIGINS or secrets/<name>.origins)",
                            allowed(&access.origins)
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// A path a server cannot read as another one: no `.`/`..` segments, no empty segment inside,
/// no escaped `.`, `/`, `\\` or `%`, no backslash.
fn is_plain_path(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    if path.contains(['\\', '?', '#'])
        || ["%2e", "%2f", "%5c", "%25"]
            .iter()
            .any(|e| lower.contains(e))
    {
        return false;
    }
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    segments
        .iter()
        .enumerate()
        .all(|(i, s)| *s != "." && *s != ".." && (!s.is_empty() || i == last))
}

fn normalise_host(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase()
}

/// The run's `wasi:http` context: wasmtime-wasi-http's own, and the hooks that check and send
/// each request. The store's state hands both (with its resource table) to wasmtime-wasi-http
/// as a `WasiHttpCtxView`.
pub(crate) struct HttpCtx {
    pub(crate) wasi: WasiHttpCtx,
    pub(crate) hooks: HttpHooks,
}

impl HttpCtx {
    pub(crate) fn new(hooks: HttpHooks) -> Self {
        Self {
            wasi: WasiHttpCtx::new(),
            hooks,
        }
    }
}

/// The per-run `WasiHttpHooks`: everything a request needs to be checked and sent.
pub(crate) struct HttpHooks {
    action: Arc<str>,
    rules: Arc<[HttpRule]>,
    secrets: Arc<dyn SecretsProvider>,
    denials: Arc<Denials>,
    log: Arc<LogSink>,
    deadline: Instant,
    budget: Arc<RequestBudget>,
}

impl HttpHooks {
    /// The hooks of one run of `action`, under `rules` and `limits`, until `deadline`.
    pub(crate) fn new(
        action: &str,
        rules: Arc<[HttpRule]>,
        limits: &Limits,
        secrets: Arc<dyn SecretsProvider>,
        log: Arc<LogSink>,
        denials: Arc<Denials>,
        deadline: Instant,
    ) -> Self {
        Self {
            action: action.into(),
            budget: Arc::new(RequestBudget::new(limits)),
            rules,
            secrets,
            denials,
            log,
            deadline,
        }
    }
}

/// The run's outgoing requests: `limits.httpRequests` in all, `limits.httpConcurrency` at once
/// (a request holds its slot until its connection closes).
struct RequestBudget {
    sent: AtomicU32,
    total: u32,
    in_flight: Arc<Semaphore>,
}

impl RequestBudget {
    fn new(limits: &Limits) -> Self {
        Self {
            sent: AtomicU32::new(0),
            total: limits.http_requests,
            in_flight: Arc::new(Semaphore::new(limits.http_concurrency as usize)),
        }
    }
}

type IoFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;

impl WasiHttpHooks for HttpHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), Error>> + Send> {
        let outbound = Outbound {
            action: self.action.clone(),
            rules: self.rules.clone(),
            secrets: self.secrets.clone(),
            denials: self.denials.clone(),
            log: self.log.clone(),
            deadline: self.deadline,
            budget: self.budget.clone(),
        };
        Box::new(outbound.send(request, options))
    }
}

struct Outbound {
    action: Arc<str>,
    budget: Arc<RequestBudget>,
    rules: Arc<[HttpRule]>,
    secrets: Arc<dyn SecretsProvider>,
    denials: Arc<Denials>,
    log: Arc<LogSink>,
    deadline: Instant,
}

impl Outbound {
    async fn send(
        self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<(http::Response<WasiBody>, IoFuture), Error> {
        let uri = request.uri().clone();
        let tls = uri.scheme() == Some(&Scheme::HTTPS);
        let host = normalise_host(uri.host().ok_or(Error::HttpRequestUriInvalid)?);
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let origin = format!("{}://{host}:{port}", if tls { "https" } else { "http" });

        let method = request.method().clone();
        if REFUSED_METHODS.contains(&method) {
            let reason = format!(
                "HTTP {method} to {origin} denied: {method} is never sent (it reflects or tunnels \
                 what the host injects)"
            );
            return Err(self.deny(request, reason).await);
        }
        let rules = self.rules.clone();
        let same_origin: Vec<&HttpRule> = rules
            .iter()
            .filter(|r| r.tls == tls && r.host == host && r.port == port)
            .collect();
        if same_origin.is_empty() {
            let granted: Vec<String> = rules.iter().map(HttpRule::origin).collect();
            let granted = if granted.is_empty() {
                "none".to_owned()
            } else {
                granted.join(", ")
            };
            let reason = format!(
                "HTTP request to {origin} denied: the origin is not in the action's \
                 capabilities.http grant (granted: {granted})"
            );
            return Err(self.deny(request, reason).await);
        }
        let path = uri.path().to_owned();
        let plain = is_plain_path(&path);
        let Some(rule) = same_origin.iter().copied().find(|r| {
            r.allows_method(&method) && (r.paths.is_none() || (plain && r.allows_path(&path)))
        }) else {
            let allowed: Vec<String> = same_origin.iter().map(|r| r.describe()).collect();
            let reason = format!(
                "HTTP {method} {path} to {origin} denied: the grant for this origin allows {} \
                 (capabilities.http[].methods and .paths)",
                allowed.join(" | ")
            );
            return Err(self.deny(request, reason).await);
        };

        let sent = self.budget.sent.fetch_add(1, Ordering::Relaxed);
        if sent >= self.budget.total {
            let reason = format!(
                "HTTP request to {origin} denied: the run already sent {} requests, the action's \
                 limit (limits.httpRequests)",
                self.budget.total
            );
            return Err(self.deny(request, reason).await);
        }
        let header_bytes: usize = request
            .headers()
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len())
            .sum();
        if header_bytes > MAX_REQUEST_HEADER_BYTES {
            let reason = format!(
                "HTTP request to {origin} denied: its headers are {header_bytes} bytes, over the \
                 host's limit of {MAX_REQUEST_HEADER_BYTES}"
            );
            return Err(self.deny(request, reason).await);
        }

        let mut injected = Vec::new();
        for (name, template, _) in &rule.headers {
            let (value, secrets) = match template.render(&*self.secrets, &self.action, &origin) {
                Ok(rendered) => rendered,
                Err(refused) => {
                    let reason = format!(
                        "HTTP request to {origin} denied: header `{name}` of the grant uses {refused}"
                    );
                    return Err(self.deny(request, reason).await);
                }
            };
            let Ok(header) = HeaderValue::from_str(&value) else {
                let reason = format!(
                    "HTTP request to {origin} denied: header `{name}` of the grant is not a valid \
                     header value once its secrets are filled in"
                );
                return Err(self.deny(request, reason).await);
            };
            request.headers_mut().insert(name.clone(), header);
            if !secrets.is_empty() {
                injected.push(value);
                injected.extend(secrets);
            }
        }
        let redactor = Redactor::new(&injected).map(Arc::new);
        if redactor.is_some() {
            // A compressed answer could not be scanned for the secrets.
            request
                .headers_mut()
                .insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
        }

        // Waits for a slot while the run's other requests are in flight.
        let slot = tokio::time::timeout(
            self.remaining(),
            self.budget.in_flight.clone().acquire_owned(),
        )
        .await
        .map_err(|_| Error::ConnectionTimeout)?
        .map_err(|_| Error::InternalError(Some("request slots closed".into())))?;

        let addrs = match rule.ip {
            Some(ip) => vec![SocketAddr::new(ip, port)],
            None => {
                let lookup = tokio::net::lookup_host((host.as_str(), port));
                match tokio::time::timeout(self.remaining(), lookup).await {
                    Ok(Ok(addrs)) => addrs.collect(),
                    Ok(Err(e)) => {
                        return Err(Error::DnsError {
                            rcode: Some(e.to_string()),
                            info_code: None,
                        });
                    }
                    Err(_) => return Err(Error::DnsTimeout),
                }
            }
        };
        let vetted: Vec<SocketAddr> = if rule.ip.is_some() {
            addrs.clone()
        } else {
            addrs
                .iter()
                .copied()
                .filter(|a| is_public(a.ip()))
                .collect()
        };
        if vetted.is_empty() {
            let seen: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
            let reason = format!(
                "HTTP request to {origin} denied: {host} resolves to {} (private or loopback); \
                 a grant must name such an address itself to reach it",
                seen.join(", ")
            );
            self.deny_addr(&method, &uri, reason);
            return Err(Error::DestinationIpProhibited);
        }

        let result = self
            .connect_and_send(request, options, &vetted, tls, &host, slot)
            .await;
        let status = match &result {
            Ok((response, _)) => response.status().to_string(),
            Err(e) => format!("failed: {e}"),
        };
        let url = uri.to_string();
        let line = format!("http {method} {url} -> {status}");
        let outcome = match &result {
            Ok((response, _)) => CallOutcome::Status(response.status().as_u16()),
            Err(_) => CallOutcome::Failed(&status),
        };
        self.report(&method, &url, outcome, &line);
        self.log.emit(LogLevel::Debug, &line);
        let (mut response, io) = result?;
        if let Some(redactor) = redactor {
            let encoding = response.headers().get(CONTENT_ENCODING).map(|v| {
                String::from_utf8_lossy(v.as_bytes())
                    .trim()
                    .to_ascii_lowercase()
            });
            if let Some(encoding) = encoding.filter(|e| !e.is_empty() && e != "identity") {
                self.deny_addr(
                    &method,
                    &uri,
                    format!(
                    "HTTP response from {origin} refused: it is compressed ({encoding}) and the \
                     grant injects secrets, so the host cannot check it does not echo them"
                    ),
                );
                return Err(Error::HttpResponseContentCoding(Some(encoding)));
            }
            redactor.headers(response.headers_mut());
            let response = response.map(|body| ScrubBody::new(body, redactor).boxed_unsync());
            return Ok((response, io));
        }
        Ok((response, io))
    }

    fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// Reports the request to observers; `logged` is the line about it the run's log gets next.
    fn report(&self, method: &Method, url: &str, outcome: CallOutcome<'_>, logged: &str) {
        self.log.call(&CapabilityCall {
            target: CallTarget::Http {
                method: method.as_str(),
                url,
            },
            outcome,
            logged: Some(logged),
        });
    }

    /// Reports, logs and records a denial of the request `method uri`.
    fn deny_addr(&self, method: &Method, uri: &http::Uri, reason: String) {
        if self.log.observes_calls() {
            let url = uri.to_string();
            self.report(method, &url, CallOutcome::Denied(&reason), &reason);
        }
        self.log.emit(LogLevel::Warn, &reason);
        self.denials.record(reason);
    }

    /// Records the denial and reads the guest's request body first: a guest that streams its
    /// body (wstd does) would otherwise see "connection reset" instead of the denial.
    async fn deny(&self, request: http::Request<WasiBody>, reason: String) -> Error {
        self.deny_addr(request.method(), request.uri(), reason);
        let drain = request.into_body().collect();
        let _ = tokio::time::timeout(self.remaining().min(Duration::from_secs(5)), drain).await;
        Error::HttpRequestDenied
    }

    async fn connect_and_send(
        &self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        addrs: &[SocketAddr],
        tls: bool,
        host: &str,
        slot: OwnedSemaphorePermit,
    ) -> Result<(http::Response<WasiBody>, IoFuture), Error> {
        let clamp = |guest: Option<Duration>| {
            let left = self.remaining();
            guest.map_or(left, |d| d.min(left))
        };
        let connect_timeout = clamp(options.and_then(|o| o.connect_timeout));
        let first_byte_timeout = clamp(options.and_then(|o| o.first_byte_timeout));

        let mut last_err = Error::ConnectionRefused;
        let mut stream = None;
        for addr in addrs {
            match tokio::time::timeout(connect_timeout, TcpStream::connect(addr)).await {
                Ok(Ok(s)) => {
                    stream = Some(s);
                    break;
                }
                Ok(Err(e)) => last_err = Error::Connect(e),
                Err(_) => last_err = Error::ConnectionTimeout,
            }
        }
        let stream = stream.ok_or(last_err)?;

        // Only the path goes on the wire; the Host header carries the name.
        let path = request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        *request.uri_mut() = http::Uri::try_from(path).map_err(|_| Error::HttpRequestUriInvalid)?;

        let handshake = async {
            if tls {
                let name = rustls::pki_types::ServerName::try_from(host.to_owned())
                    .map_err(|_| Error::HttpRequestUriInvalid)?;
                let tls = tokio_rustls::TlsConnector::from(tls_config())
                    .connect(name, stream)
                    .await
                    .map_err(Error::Tls)?;
                let (sender, conn) = client().handshake(TokioIo::new(tls)).await?;
                Ok::<_, Error>((sender, spawn_conn(conn, slot)))
            } else {
                let (sender, conn) = client().handshake(TokioIo::new(stream)).await?;
                Ok((sender, spawn_conn(conn, slot)))
            }
        };
        let (mut sender, io) = tokio::time::timeout(connect_timeout, handshake)
            .await
            .map_err(|_| Error::ConnectionTimeout)??;

        let response = tokio::time::timeout(first_byte_timeout, sender.send_request(request))
            .await
            .map_err(|_| Error::ConnectionReadTimeout)??;
        let response = response.map(|body| body.map_err(Error::from).boxed_unsync());
        Ok((response, io))
    }
}

/// An HTTP/1 client that bounds what it reads of response headers.
fn client() -> hyper::client::conn::http1::Builder {
    let mut builder = hyper::client::conn::http1::Builder::new();
    builder
        .max_buf_size(MAX_RESPONSE_HEADER_BYTES.max(8192))
        .max_headers(MAX_RESPONSE_HEADERS);
    builder
}

/// Drives the connection in its own task, holding the run's request slot until it closes; the
/// returned future reports how it ended.
fn spawn_conn<F>(conn: F, slot: OwnedSemaphorePermit) -> IoFuture
where
    F: Future<Output = Result<(), hyper::Error>> + Send + 'static,
{
    let task = tokio::spawn(async move {
        let ended = conn.await;
        drop(slot);
        ended
    });
    Box::new(async move {
        match task.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::from(e)),
            Err(e) => Err(Error::InternalError(Some(e.to_string()))),
        }
    })
}

fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.into(),
            };
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map(|b| b.with_root_certificates(roots).with_no_client_auth())
                .unwrap_or_else(|e| panic!("ring supports the default TLS versions: {e}"));
            Arc::new(config)
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(url: &str) -> HttpGrantEntry {
        HttpGrantEntry {
            url: url.into(),
            headers: BTreeMap::new(),
            methods: None,
            paths: None,
            insecure: false,
        }
    }

    #[test]
    fn secrets_go_over_https_unless_the_grant_names_the_address_or_says_insecure() {
        let mut e = entry("http://api.internal");
        e.headers
            .insert("Authorization".into(), "Bearer {{ .secrets.t }}".into());
        let err = HttpRule::parse(&e, "capabilities.http[0]").unwrap_err();
        assert_eq!(err.path, "capabilities.http[0].url");
        assert!(
            err.reason
                .contains("secret `t` would be sent over plain http"),
            "{err}"
        );
        e.insecure = true;
        assert!(HttpRule::parse(&e, "h").is_ok());
        e.insecure = false;
        e.url = "http://127.0.0.1:8080".into();
        assert!(HttpRule::parse(&e, "h").is_ok(), "a named address");
        e.url = "https://api.internal".into();
        assert!(HttpRule::parse(&e, "h").is_ok());
    }

    #[test]
    fn methods_and_paths_narrow_a_grant() {
        let mut e = entry("https://api.github.com");
        e.methods = Some(vec!["get".into(), "POST".into()]);
        e.paths = Some(vec!["/repos/acme/".into()]);
        let rule = HttpRule::parse(&e, "h").unwrap();
        assert!(rule.allows_method(&Method::GET) && rule.allows_method(&Method::POST));
        assert!(!rule.allows_method(&Method::DELETE));
        assert!(rule.allows_path("/repos/acme") && rule.allows_path("/repos/acme/pulls"));
        assert!(!rule.allows_path("/repos/acme-evil") && !rule.allows_path("/user"));
        for path in [
            "/repos/acme/../x",
            "/repos/acme/%2E%2e/x",
            "/repos//acme",
            "/a/./b",
            "/a%2fb",
        ] {
            assert!(!is_plain_path(path), "{path}");
        }
        assert!(is_plain_path("/repos/acme/pulls/") && is_plain_path("/"));
        assert!(is_plain_path("/search/a%20b"));

        e.methods = Some(vec!["TRACE".into()]);
        let err = HttpRule::parse(&e, "capabilities.http[1]").unwrap_err();
        assert_eq!(err.path, "capabilities.http[1].methods[0]");
        e.methods = None;
        e.paths = Some(vec!["repos".into()]);
        assert_eq!(HttpRule::parse(&e, "h").unwrap_err().path, "h.paths[0]");
    }

    #[test]
    fn grants_name_an_origin_and_nothing_more() {
        let rule = HttpRule::parse(&entry("https://API.github.com"), "h").unwrap();
        assert_eq!(rule.origin(), "https://api.github.com:443");
        assert_eq!(rule.ip, None);
        let rule = HttpRule::parse(&entry("http://127.0.0.1:8080"), "h").unwrap();
        assert_eq!(rule.ip, Some(IpAddr::from([127, 0, 0, 1])));
        let rule = HttpRule::parse(&entry("http://[::1]:9"), "h").unwrap();
        assert_eq!(rule.origin(), "http://::1:9");
        for bad in [
            "ftp://x",
            "https://x/path",
            "https://u:p@x",
            "x",
            "https://x?q=1",
        ] {
            let err = HttpRule::parse(&entry(bad), "capabilities.http[3]").unwrap_err();
            assert_eq!(err.path, "capabilities.http[3].url", "{bad}");
        }
    }
}

/// The hooks called directly, as wasmtime-wasi-http calls them: no guest involved.
#[cfg(test)]
mod hook_tests {
    use super::*;
    use crate::capabilities::secrets::{NoSecrets, SecretAccess};
    use crate::events::RecordedEvents;
    use bytes::Bytes;
    use http_body_util::Empty;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const TOKEN: &str = "s3cr3t-token-value";

    struct OneSecret;

    impl SecretsProvider for OneSecret {
        fn secret(&self, name: &str) -> Option<String> {
            (name == "tok").then(|| TOKEN.to_owned())
        }
        fn access(&self, _: &str) -> SecretAccess {
            SecretAccess::parse(Some("deploy"), None)
        }
    }

    fn hooks(
        entries: &[HttpGrantEntry],
        limits: Limits,
        secrets: Arc<dyn SecretsProvider>,
    ) -> (HttpHooks, Arc<Denials>, Arc<RecordedEvents>) {
        let events = Arc::new(RecordedEvents::default());
        let log = Arc::new(LogSink::new(events.clone(), &limits));
        let denials = Arc::new(Denials::default());
        let rules = HttpRule::parse_all(entries).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let hooks = HttpHooks::new(
            "deploy",
            rules,
            &limits,
            secrets,
            log,
            denials.clone(),
            deadline,
        );
        (hooks, denials, events)
    }

    fn entry(url: &str, headers: &[(&str, &str)]) -> HttpGrantEntry {
        HttpGrantEntry {
            url: url.into(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            methods: None,
            paths: None,
            insecure: false,
        }
    }

    async fn send(
        hooks: &mut HttpHooks,
        method: Method,
        uri: &str,
    ) -> Result<(http::Response<WasiBody>, IoFuture), Error> {
        let body: WasiBody = Empty::<Bytes>::new()
            .map_err(|never| match never {})
            .boxed_unsync();
        let request = http::Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", "forged")
            .body(body)
            .unwrap();
        let unused: IoFuture = Box::new(async { Ok(()) });
        Box::into_pin(hooks.send_request(request, None, unused)).await
    }

    /// Answers one request per connection with the request's head as the body.
    async fn echo_server() -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        head.len()
                    );
                    let _ = conn.write_all(answer.as_bytes()).await;
                    let _ = conn.write_all(&head).await;
                });
            }
        });
        port
    }

    #[tokio::test]
    async fn an_origin_or_method_outside_the_grant_is_denied_and_recorded() {
        let (mut hooks, denials, events) = hooks(
            &[entry("https://api.github.com", &[])],
            Limits::default(),
            Arc::new(NoSecrets),
        );
        let err = send(&mut hooks, Method::GET, "http://evil.example/x")
            .await
            .err()
            .unwrap();
        assert!(matches!(err, Error::HttpRequestDenied), "{err:?}");
        let first = denials.first().unwrap();
        assert!(
            first.contains("granted: https://api.github.com:443"),
            "{first}"
        );
        assert!(events.log_text().contains(&first));

        let err = send(&mut hooks, Method::TRACE, "https://api.github.com/")
            .await
            .err()
            .unwrap();
        assert!(matches!(err, Error::HttpRequestDenied), "{err:?}");
    }

    #[tokio::test]
    async fn the_grant_headers_are_injected_echoes_redacted_and_the_budget_counted() {
        let port = echo_server().await;
        let origin = format!("http://127.0.0.1:{port}");
        let limits = Limits {
            http_requests: 1,
            ..Limits::default()
        };
        let (mut hooks, denials, _) = hooks(
            &[entry(
                &origin,
                &[("Authorization", "Bearer {{ .secrets.tok }}")],
            )],
            limits,
            Arc::new(OneSecret),
        );
        let (response, _io) = send(&mut hooks, Method::GET, &format!("{origin}/echo"))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let body = String::from_utf8_lossy(&body).to_ascii_lowercase();
        assert!(body.contains("authorization: [redacted]"), "{body}");
        assert!(!body.contains("forged") && !body.contains(TOKEN), "{body}");
        assert_eq!(denials.first(), None);

        let err = send(&mut hooks, Method::GET, &format!("{origin}/again"))
            .await
            .err()
            .unwrap();
        assert!(matches!(err, Error::HttpRequestDenied), "{err:?}");
        assert!(denials.first().unwrap().contains("limits.httpRequests"));
    }

    #[test]
    fn secret_access_is_checked_against_the_checked_grant() {
        let rules = HttpRule::parse_all(&[entry(
            "https://api.github.com",
            &[("X-Token", "{{ .secrets.tok }}")],
        )])
        .unwrap();
        assert!(check_secret_access(&rules, &OneSecret, "deploy").is_ok());
        let err = check_secret_access(&rules, &OneSecret, "other").unwrap_err();
        assert_eq!(err.path, "capabilities.http[0].headers.X-Token");
        assert!(
            check_secret_access(&rules, &NoSecrets, "other").is_ok(),
            "a secret not configured yet is let through"
        );
    }
}
