//! Notifications: the host (never the plugin) POSTs run events to the webhooks an action names,
//! signed like Port's: `X-Portico-Timestamp` (seconds) and
//! `X-Portico-Signature: v1,base64(HMAC-SHA256(secret, "{timestamp}.{body}"))`. Deliveries run
//! in the background with retries and backoff, so a dead receiver never slows or fails a run;
//! each delivery's outcome is recorded in the audit log.
//!
//! The receiver is named by whoever writes the action, so the host's own requests get the same
//! egress rules as a plugin's: no redirects followed, proxy variables ignored, and private,
//! loopback and other non-public addresses ([`is_public`]) refused unless the operator allows them
//! (`NotifyConfig::allow_private`). Names are resolved by `VettedResolver`, and the connection
//! goes only to the addresses it vetted, so a DNS answer that changes after the check is never used.

use crate::actions::{ActionDefinition, Notification};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use portico_runtime::net::is_public;
use portico_store::{AuditRecord, RunRecord, RunStatus, Store};
use serde_json::json;
use sha2::Sha256;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// How deliveries are made.
#[derive(Clone, Debug)]
pub struct NotifyConfig {
    /// The HMAC key receivers verify signatures with.
    pub secret: String,
    /// Attempts per delivery, the first included.
    pub attempts: u32,
    /// Wait before the second attempt; it doubles after each failure.
    pub backoff: Duration,
    /// Time allowed for one attempt.
    pub timeout: Duration,
    /// Whether receivers may be at private, loopback or other non-public addresses (an
    /// in-cluster receiver). Off by default: an action's author could otherwise make the host
    /// POST into the operator's network (`notifications.allow_private`).
    pub allow_private: bool,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            secret: String::new(),
            attempts: 5,
            backoff: Duration::from_secs(1),
            timeout: Duration::from_secs(10),
            allow_private: false,
        }
    }
}

/// Sends notifications. Cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    store: Arc<dyn Store>,
    http: reqwest::Client,
    config: Arc<NotifyConfig>,
}

/// The signature headers' values for `body` sent at `timestamp` (seconds).
pub fn sign(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|e| panic!("HMAC takes any key length: {e}"));
    mac.update(format!("{timestamp}.{body}").as_bytes());
    let digest = mac.finalize().into_bytes();
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// Makes ring the process's TLS crypto provider (once; later calls do nothing). Every
/// `reqwest::Client` in the process needs one, as the build does not pick one by itself.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Notifier {
    /// A notifier recording deliveries in `store`.
    pub fn new(store: Arc<dyn Store>, config: NotifyConfig) -> Self {
        install_crypto_provider();
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map(|b| {
            b.with_root_certificates(rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            })
            .with_no_client_auth()
        });
        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(VettedResolver {
                allow_private: config.allow_private,
            }));
        if let Ok(tls) = tls {
            builder = builder.use_preconfigured_tls(tls);
        }
        let http = builder.build().unwrap_or_default();
        Self {
            store,
            http,
            config: Arc::new(config),
        }
    }

    /// Sends `event` about `run` to each of the action's notifications that lists it, and to
    /// `approvalNotification` for WAITING_FOR_APPROVAL. Returns at once.
    pub fn run_event(&self, action: &ActionDefinition, run: &RunRecord, event: &str) {
        let mut hooks: Vec<Notification> = action
            .notifications
            .iter()
            .filter(|n| n.events.iter().any(|e| e == event))
            .cloned()
            .collect();
        if event == "WAITING_FOR_APPROVAL"
            && let Some(approval) = &action.approval_notification
            && let Ok(hook) = serde_json::from_value::<Notification>(approval.clone())
        {
            hooks.push(hook);
        }
        for hook in hooks {
            let body = body(&hook, action, run, event);
            let me = self.clone();
            let run_id = run.id.clone();
            let event = event.to_owned();
            tokio::spawn(async move { me.deliver(&hook.url, &event, &run_id, body).await });
        }
    }

    /// Tries a delivery until it is answered 2xx, the attempts run out or the receiver's address
    /// is refused; audits the outcome.
    async fn deliver(&self, url: &str, event: &str, run_id: &str, body: String) {
        let mut wait = self.config.backoff;
        let mut outcome = String::new();
        let mut delivered = false;
        let mut refused = false;
        let mut attempt = 0;
        while attempt < self.config.attempts {
            attempt += 1;
            if let Some(refusal) = (!self.config.allow_private)
                .then(|| literal_refusal(url))
                .flatten()
            {
                outcome = refusal.to_string();
                refused = true;
                break;
            }
            let timestamp = chrono::Utc::now().timestamp();
            let sent = self
                .http
                .post(url)
                .header("content-type", "application/json")
                .header("x-portico-timestamp", timestamp.to_string())
                .header(
                    "x-portico-signature",
                    sign(&self.config.secret, timestamp, &body),
                )
                .body(body.clone())
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => {
                    outcome = format!("HTTP {}", r.status().as_u16());
                    delivered = true;
                    break;
                }
                Ok(r) if r.status().is_redirection() => {
                    outcome = format!(
                        "HTTP {} (redirects are not followed; name the final URL)",
                        r.status().as_u16()
                    );
                }
                Ok(r) => outcome = format!("HTTP {}", r.status().as_u16()),
                Err(e) => match refusal_in(&e) {
                    Some(refusal) => {
                        outcome = refusal.to_string();
                        refused = true;
                        break;
                    }
                    None => outcome = plain(&e),
                },
            }
            if attempt < self.config.attempts {
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
        }
        let mut audit = if delivered {
            let mut audit = AuditRecord::success("portico", "host", "NOTIFY", "run", run_id);
            audit.reason = Some(format!("{event} delivered to {url}: {outcome}"));
            audit
        } else {
            tracing::warn!(%url, %event, run_id, "notification not delivered: {outcome}");
            let reason = if refused {
                format!("{event} not delivered to {url}: {outcome}")
            } else {
                format!("{event} not delivered to {url} after {attempt} attempts: {outcome}")
            };
            AuditRecord::failure("portico", "host", "NOTIFY", "run", run_id, reason)
        };
        audit.run_id = Some(run_id.to_owned());
        audit.after = Some(json!({ "url": url, "event": event, "attempts": attempt }));
        if let Err(e) = self.store.record(audit).await {
            tracing::error!("cannot record a notification: {e}");
        }
    }
}

/// The refusal of a URL whose host is a non-public IP address: the connector dials an address
/// without asking the resolver, so those are vetted here.
fn literal_refusal(url: &str) -> Option<NotPublic> {
    let url = reqwest::Url::parse(url).ok()?;
    let host = url.host_str()?;
    let ip: IpAddr = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()?;
    (!is_public(ip)).then(|| NotPublic {
        host: host.to_owned(),
        ip,
    })
}

/// A receiver refused because its address is not public.
#[derive(Debug, thiserror::Error)]
#[error(
    "refused: {host} is {ip}, not a public address; the operator allows private receivers \
     with the setting notifications.allow_private (PORTICO_NOTIFY_ALLOW_PRIVATE=true)"
)]
pub struct NotPublic {
    /// The host as the URL names it.
    host: String,
    /// The address it is (or resolved to).
    ip: IpAddr,
}

/// The refusal behind a failed request, if that is why it failed.
fn refusal_in(e: &reqwest::Error) -> Option<&NotPublic> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(cause) = source {
        if let Some(refusal) = cause.downcast_ref::<NotPublic>() {
            return Some(refusal);
        }
        source = cause.source();
    }
    None
}

/// Resolves receivers' names and answers only the public addresses among them (all of them
/// when private receivers are allowed). The client connects to exactly what this answers, so
/// the check and the connection use the same DNS answer.
struct VettedResolver {
    allow_private: bool,
}

impl reqwest::dns::Resolve for VettedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let vetted: Vec<SocketAddr> = all
                .iter()
                .copied()
                .filter(|a| allow_private || is_public(a.ip()))
                .collect();
            match (vetted.is_empty(), all.first()) {
                (true, Some(first)) => Err(Box::new(NotPublic {
                    host,
                    ip: first.ip(),
                })
                    as Box<dyn std::error::Error + Send + Sync>),
                _ => Ok(Box::new(vetted.into_iter()) as reqwest::dns::Addrs),
            }
        })
    }
}

/// The error without reqwest's internals: what failed, in a few words.
fn plain(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "could not connect".into()
    } else {
        "the request failed".into()
    }
}

/// The JSON body (Port's event shape) or a Slack message.
fn body(hook: &Notification, action: &ActionDefinition, run: &RunRecord, event: &str) -> String {
    if hook.format == "slack" {
        let title = action.title.as_deref().unwrap_or(&action.identifier);
        let text = match event {
            "WAITING_FOR_APPROVAL" => format!(
                "{} asks to run *{title}* (run `{}`): it needs approval",
                run.created_by, run.id
            ),
            _ => format!("*{title}* run `{}` by {}: {event}", run.id, run.created_by),
        };
        return json!({ "text": text }).to_string();
    }
    json!({
        "event": event,
        "resourceType": "run",
        "action": { "identifier": action.identifier, "title": action.title },
        "run": {
            "id": run.id,
            "status": run.status,
            "properties": run.properties,
            "entity": run.entity,
            "blueprint": run.blueprint,
            "createdBy": run.created_by,
            "createdAt": run.created_at,
            "summary": run.summary,
            "error": run.error,
        },
        "trigger": { "by": { "userId": run.created_by }, "origin": run.source },
    })
    .to_string()
}

/// The event a run's status announces, if any.
pub fn event_of(status: RunStatus) -> Option<&'static str> {
    crate::actions::NOTIFICATION_EVENTS
        .iter()
        .copied()
        .find(|e| *e == status.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::dns::Resolve as _;

    #[test]
    fn a_url_naming_a_private_address_is_refused_before_any_connection() {
        for url in [
            "http://127.0.0.1:9/hook",
            "http://[::1]/hook",
            "https://10.0.0.7/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://[::ffff:192.168.1.1]/",
            // WHATWG parsing turns these into 127.0.0.1 before the connector sees them.
            "http://2130706433/",
            "http://0x7f.1/",
        ] {
            let refusal = literal_refusal(url).unwrap_or_else(|| panic!("{url} not refused"));
            assert!(
                refusal.to_string().contains("notifications.allow_private"),
                "{refusal}"
            );
        }
        for url in ["https://93.184.215.14/hook", "https://hooks.example.com/x"] {
            assert!(literal_refusal(url).is_none(), "{url}");
        }
    }

    #[tokio::test]
    async fn the_resolver_answers_only_public_addresses_unless_private_ones_are_allowed() {
        let strict = VettedResolver {
            allow_private: false,
        };
        let name = || "localhost".parse::<reqwest::dns::Name>().unwrap();
        let refused = match strict.resolve(name()).await {
            Ok(addrs) => panic!("localhost vetted: {:?}", addrs.collect::<Vec<_>>()),
            Err(e) => e,
        };
        let refusal = refused.downcast_ref::<NotPublic>().expect("a refusal");
        assert!(refusal.ip.is_loopback(), "{refusal}");

        let lenient = VettedResolver {
            allow_private: true,
        };
        let addrs: Vec<SocketAddr> = lenient.resolve(name()).await.unwrap().collect();
        assert!(!addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback()));
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Computed independently: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac s3cret -binary | base64
        assert_eq!(
            sign("s3cret", 1_700_000_000, r#"{"a":1}"#),
            "v1,FpilC8dNH/HbhcTgpSl8Ktn9uiRdVzfNt4nkzG4JiUA="
        );
    }
}
