//! Notifications: the host (never the plugin) POSTs run events to the webhooks an action names,
//! signed like Port's: `X-Portico-Timestamp` (seconds) and
//! `X-Portico-Signature: v1,base64(HMAC-SHA256(secret, "{timestamp}.{body}"))`.
//!
//! A delivery is an outbox event ([`NewEvent::NOTIFY`]), written in the same transaction as the
//! run change it announces, so a crash cannot lose it; whichever replica claims it POSTs it,
//! retrying with backoff (each retry is the event made due again later), so a dead receiver
//! never slows or fails a run. Delivery is at least once: every attempt carries the same
//! `Idempotency-Key` (and `X-Portico-Delivery`) header, for the receiver to drop a repeat.
//! Each delivery's outcome is recorded in the audit log, with the event's removal.
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
use portico_store::{AuditRecord, NewEvent, OutboxEvent, RunRecord, RunStatus, Store};
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

    /// The deliveries of `event` about `run`: one to each of the action's notifications that
    /// lists it, and to `approvalNotification` for WAITING_FOR_APPROVAL. The caller writes them
    /// with the change that caused them.
    pub fn events(action: &ActionDefinition, run: &RunRecord, event: &str) -> Vec<NewEvent> {
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
        hooks
            .into_iter()
            .map(|hook| NewEvent {
                topic: NewEvent::NOTIFY,
                body: json!({
                    "url": hook.url,
                    "event": event,
                    "runId": run.id,
                    "body": body(&hook, action, run, event),
                }),
            })
            .collect()
    }

    /// Makes one attempt at a claimed delivery; then removes it with the outcome's audit
    /// record, or makes it due again after the backoff while attempts remain (answering how
    /// long until then).
    pub async fn deliver(&self, event: OutboxEvent) -> Option<Duration> {
        let field = |name: &str| event.body[name].as_str().unwrap_or_default().to_owned();
        let (url, name, run_id, body) =
            (field("url"), field("event"), field("runId"), field("body"));
        let key = format!("ntf_{}_{}", event.id, event.created_at.timestamp_millis());
        let attempt = event.attempts.max(1) as u32;
        let (outcome, refused) = match self.attempt(&url, &body, &key).await {
            Attempt::Delivered(outcome) => (Ok(outcome), false),
            Attempt::Refused(outcome) => (Err(outcome), true),
            Attempt::Failed(outcome) => (Err(outcome), false),
        };
        let settled = outcome.is_ok() || refused || attempt >= self.config.attempts;
        if !settled {
            let wait = self.config.backoff * 2u32.saturating_pow(attempt - 1);
            let due = portico_store::now() + chrono::Duration::from_std(wait).unwrap_or_default();
            if let Err(e) = self.store.retry_event(event.id, due).await {
                tracing::error!(%url, "cannot schedule a notification's retry: {e}");
            }
            return Some(wait);
        }
        let mut audit = match &outcome {
            Ok(outcome) => {
                let mut audit = AuditRecord::success("portico", "host", "NOTIFY", "run", &run_id);
                audit.reason = Some(format!("{name} delivered to {url}: {outcome}"));
                audit
            }
            Err(outcome) => {
                tracing::warn!(%url, event = %name, run_id, "notification not delivered: {outcome}");
                // A refusal is final at any attempt: "after N attempts" would suggest retries
                // could have helped.
                let reason = if refused {
                    format!("{name} not delivered to {url}: {outcome}")
                } else {
                    format!("{name} not delivered to {url} after {attempt} attempts: {outcome}")
                };
                AuditRecord::failure("portico", "host", "NOTIFY", "run", &run_id, reason)
            }
        };
        audit.run_id = Some(run_id.clone());
        audit.after = Some(json!({ "url": url, "event": name, "attempts": attempt, "key": key }));
        if let Err(e) = self.store.ack_events(vec![event.id], vec![audit]).await {
            tracing::error!("cannot record a notification: {e}");
        }
        None
    }

    /// One POST of `body` to `url`, signed, with the delivery's idempotency key.
    async fn attempt(&self, url: &str, body: &str, key: &str) -> Attempt {
        if !self.config.allow_private
            && let Some(refusal) = literal_refusal(url)
        {
            return Attempt::Refused(refusal.to_string());
        }
        let timestamp = chrono::Utc::now().timestamp();
        let sent = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("idempotency-key", key)
            .header("x-portico-delivery", key)
            .header("x-portico-timestamp", timestamp.to_string())
            .header(
                "x-portico-signature",
                sign(&self.config.secret, timestamp, body),
            )
            .body(body.to_owned())
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => {
                Attempt::Delivered(format!("HTTP {}", r.status().as_u16()))
            }
            Ok(r) if r.status().is_redirection() => Attempt::Failed(format!(
                "HTTP {} (redirects are not followed; name the final URL)",
                r.status().as_u16()
            )),
            Ok(r) => Attempt::Failed(format!("HTTP {}", r.status().as_u16())),
            Err(e) => match refusal_in(&e) {
                Some(refusal) => Attempt::Refused(refusal.to_string()),
                None => Attempt::Failed(plain(&e)),
            },
        }
    }
}

/// How one delivery attempt went.
enum Attempt {
    /// Answered 2xx.
    Delivered(String),
    /// The receiver's address is not allowed: trying again would not help.
    Refused(String),
    /// Anything else: worth another attempt.
    Failed(String),
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
