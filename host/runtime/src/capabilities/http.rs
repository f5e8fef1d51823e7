//! Outgoing HTTP (`wasi:http/outgoing-handler`), limited to the origins the action grants.
//!
//! The guest builds a request; before anything leaves the host, [`HttpHooks::send_request`]
//! checks its `scheme://host:port` against the grant, adds the grant's headers (secrets filled in
//! by the host, replacing any header of that name the guest set), resolves the name and refuses
//! private and loopback addresses unless the grant names the address itself, then connects to the
//! vetted address (TLS verified against the original host name) with timeouts clamped to what is
//! left of the run.

use crate::capabilities::Denials;
use crate::capabilities::log::LogSink;
use crate::capabilities::secrets::{SecretsProvider, Template};
use crate::events::LogLevel;
use crate::grant::{GrantError, Grants, HttpGrantEntry};
use crate::net::is_public;
use http::header::{HeaderName, HeaderValue};
use http::uri::Scheme;
use http_body_util::BodyExt;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// One granted origin, checked and ready to match.
#[derive(Debug)]
pub(crate) struct HttpRule {
    tls: bool,
    host: String,
    port: u16,
    /// Set when the grant names an address: the only case where private addresses are allowed.
    ip: Option<IpAddr>,
    headers: Vec<(HeaderName, Template)>,
}

impl HttpRule {
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
                Ok((header, Template::parse(value, &field)?))
            })
            .collect::<Result<Vec<_>, GrantError>>()?;
        Ok(Self {
            tls,
            port: uri.port_u16().unwrap_or(if tls { 443 } else { 80 }),
            ip: host.parse().ok(),
            host,
            headers,
        })
    }

    fn origin(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}:{}", self.host, self.port)
    }
}

fn normalise_host(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase()
}

/// The per-run `WasiHttpHooks`: everything a request needs to be checked and sent.
pub(crate) struct HttpHooks {
    pub(crate) grants: Arc<Grants>,
    pub(crate) secrets: Arc<dyn SecretsProvider>,
    pub(crate) denials: Arc<Denials>,
    pub(crate) log: Arc<LogSink>,
    pub(crate) deadline: Instant,
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
            grants: self.grants.clone(),
            secrets: self.secrets.clone(),
            denials: self.denials.clone(),
            log: self.log.clone(),
            deadline: self.deadline,
        };
        Box::new(outbound.send(request, options))
    }
}

struct Outbound {
    grants: Arc<Grants>,
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

        let grants = self.grants.clone();
        let Some(rule) = grants
            .http
            .iter()
            .find(|r| r.tls == tls && r.host == host && r.port == port)
        else {
            let granted: Vec<String> = grants.http.iter().map(HttpRule::origin).collect();
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
        };

        for (name, template) in &rule.headers {
            let value = match template.render(&*self.secrets) {
                Ok(value) => value,
                Err(missing) => {
                    let reason = format!(
                        "HTTP request to {origin} denied: header `{name}` of the grant uses \
                         secret `{missing}`, which is not configured on the host"
                    );
                    return Err(self.deny(request, reason).await);
                }
            };
            let Ok(value) = HeaderValue::from_str(&value) else {
                let reason = format!(
                    "HTTP request to {origin} denied: header `{name}` of the grant is not a valid \
                     header value once its secrets are filled in"
                );
                return Err(self.deny(request, reason).await);
            };
            request.headers_mut().insert(name.clone(), value);
        }

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
            self.deny_addr(reason);
            return Err(Error::DestinationIpProhibited);
        }

        let method = request.method().clone();
        let result = self
            .connect_and_send(request, options, &vetted, tls, &host)
            .await;
        let status = match &result {
            Ok((response, _)) => response.status().to_string(),
            Err(e) => format!("failed: {e}"),
        };
        self.log
            .emit(LogLevel::Debug, &format!("http {method} {uri} -> {status}"));
        result
    }

    fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    fn deny_addr(&self, reason: String) {
        self.log.emit(LogLevel::Warn, &reason);
        self.denials.record(reason);
    }

    /// Records the denial and reads the guest's request body first: a guest that streams its
    /// body (wstd does) would otherwise see "connection reset" instead of the denial.
    async fn deny(&self, request: http::Request<WasiBody>, reason: String) -> Error {
        self.deny_addr(reason);
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
                let (sender, conn) =
                    hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
                Ok::<_, Error>((sender, spawn_conn(conn)))
            } else {
                let (sender, conn) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
                Ok((sender, spawn_conn(conn)))
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

/// Drives the connection in its own task; the returned future reports how it ended.
fn spawn_conn<F>(conn: F) -> IoFuture
where
    F: Future<Output = Result<(), hyper::Error>> + Send + 'static,
{
    let task = tokio::spawn(conn);
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
    use std::collections::BTreeMap;

    fn entry(url: &str) -> HttpGrantEntry {
        HttpGrantEntry {
            url: url.into(),
            headers: BTreeMap::new(),
        }
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
