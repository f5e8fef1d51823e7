//! Notifications: the host (never the plugin) POSTs run events to the webhooks an action names,
//! signed like Port's: `X-Portico-Timestamp` (seconds) and
//! `X-Portico-Signature: v1,base64(HMAC-SHA256(secret, "{timestamp}.{body}"))`. Deliveries run
//! in the background with retries and backoff, so a dead receiver never slows or fails a run;
//! each delivery's outcome is recorded in the audit log.

use crate::actions::{ActionDefinition, Notification};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use portico_store::{AuditRecord, RunRecord, Store};
use serde_json::json;
use sha2::Sha256;
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
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            secret: String::new(),
            attempts: 5,
            backoff: Duration::from_secs(1),
            timeout: Duration::from_secs(10),
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
        let mut builder = reqwest::Client::builder().timeout(config.timeout);
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

    /// Tries a delivery until it is answered 2xx or the attempts run out; audits the outcome.
    async fn deliver(&self, url: &str, event: &str, run_id: &str, body: String) {
        let mut wait = self.config.backoff;
        let mut outcome = String::new();
        let mut delivered = false;
        let mut attempt = 0;
        while attempt < self.config.attempts {
            attempt += 1;
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
                Ok(r) => outcome = format!("HTTP {}", r.status().as_u16()),
                Err(e) => outcome = plain(&e),
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
            let reason =
                format!("{event} not delivered to {url} after {attempt} attempts: {outcome}");
            AuditRecord::failure("portico", "host", "NOTIFY", "run", run_id, reason)
        };
        audit.run_id = Some(run_id.to_owned());
        audit.after = Some(json!({ "url": url, "event": event, "attempts": attempt }));
        if let Err(e) = self.store.record(audit).await {
            tracing::error!("cannot record a notification: {e}");
        }
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
pub fn event_of(status: &str) -> Option<&'static str> {
    crate::actions::NOTIFICATION_EVENTS
        .iter()
        .copied()
        .find(|e| *e == status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Computed independently: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac s3cret -binary | base64
        assert_eq!(
            sign("s3cret", 1_700_000_000, r#"{"a":1}"#),
            "v1,FpilC8dNH/HbhcTgpSl8Ktn9uiRdVzfNt4nkzG4JiUA="
        );
    }
}
