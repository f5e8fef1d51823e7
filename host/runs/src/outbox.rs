//! The outbox's consumer, one per replica. Changes write their events in their own transaction
//! ([`portico_store::Coordination`]); every replica claims due events in batches with a lease,
//! so each is handled by one replica at a time, and by another if that one dies before removing
//! it. Entity and run events start automations (exactly once: their run ids are derived from the
//! event); notification events are delivered (at least once, with an idempotency key).

use crate::automations::Automations;
use crate::notify::Notifier;
use portico_store::{NewEvent, OutboxEvent, Store, StoreError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Events claimed at once.
const BATCH: usize = 64;
/// How often the outbox's backlog is counted, for `/metrics`.
const BACKLOG_EVERY: Duration = Duration::from_secs(5);
/// When an automation's event failed (the store failed), how long until it is tried again.
const RETRY: Duration = Duration::from_secs(1);

/// The consumer of this replica.
pub(crate) struct Consumer {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) automations: Arc<Automations>,
    pub(crate) notifier: Notifier,
    /// Woken when this replica wrote events, or a delivery's retry is due.
    pub(crate) wake: Arc<Notify>,
    /// How often to look for events other replicas wrote.
    pub(crate) poll: Duration,
    /// How long a claim holds: the runner's lease, as for runs. A delivery slower than that
    /// may be made twice (deliveries are at least once).
    pub(crate) lease: Duration,
}

impl Consumer {
    /// Handles due events until `stop`; `started` is called when automations queued runs.
    pub(crate) async fn run(self, stop: CancellationToken, started: impl Fn() + Send + Sync) {
        let lease = chrono::Duration::from_std(self.lease).unwrap_or_default();
        let mut counted: Option<std::time::Instant> = None;
        loop {
            if counted.is_none_or(|at| at.elapsed() >= BACKLOG_EVERY) {
                counted = Some(std::time::Instant::now());
                match self.store.outbox_backlog().await {
                    Ok(n) => crate::metrics::outbox_backlog(n),
                    Err(e) => tracing::warn!("cannot count the outbox: {e}"),
                }
            }
            let now = portico_store::now();
            let full = match self.store.claim_events(BATCH, now, now + lease).await {
                Ok(events) => {
                    let full = events.len() == BATCH;
                    if self.handle(events).await > 0 {
                        started();
                    }
                    full
                }
                Err(e) => {
                    tracing::error!("cannot claim outbox events: {e}");
                    false
                }
            };
            if full {
                continue;
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(self.poll) => {}
            }
        }
    }

    /// Handles claimed events; answers how many runs automations queued.
    async fn handle(&self, events: Vec<OutboxEvent>) -> usize {
        let mut done = Vec::new();
        let mut started = 0;
        for event in events {
            let handled: Result<usize, StoreError> = match event.topic.as_str() {
                NewEvent::ENTITY => self.automations.entity_changed(&event).await,
                NewEvent::RUN => self.automations.run_changed(&event).await,
                NewEvent::NOTIFY => {
                    let (notifier, wake) = (self.notifier.clone(), self.wake.clone());
                    tokio::spawn(async move {
                        if let Some(retry) = notifier.deliver(event).await {
                            tokio::time::sleep(retry).await;
                            wake.notify_one();
                        }
                    });
                    continue;
                }
                other => {
                    tracing::warn!(topic = other, "an outbox event nobody consumes: dropped");
                    Ok(0)
                }
            };
            match handled {
                Ok(n) => {
                    started += n;
                    done.push(event.id);
                }
                Err(e) => {
                    tracing::error!(event = event.id, "cannot handle an outbox event: {e}");
                    let due = portico_store::now()
                        + chrono::Duration::from_std(RETRY).unwrap_or_default();
                    if let Err(e) = self.store.retry_event(event.id, due).await {
                        tracing::error!("cannot schedule an outbox event again: {e}");
                    }
                }
            }
        }
        if !done.is_empty()
            && let Err(e) = self.store.ack_events(done, Vec::new()).await
        {
            // They are claimed again when the lease ends; their runs are not started twice.
            tracing::error!("cannot remove handled outbox events: {e}");
        }
        started
    }
}
