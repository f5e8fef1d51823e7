//! The replica's listener: one connection of its own (not from the pool, whose connections
//! come and go) that `LISTEN`s on the change channel and re-broadcasts what the triggers of
//! migration 0010 send, from this replica's writes and every other replica's. When the
//! connection drops it reconnects with backoff and then sends [`Change::Missed`]: what was
//! notified meanwhile is lost, so every consumer looks again. Until then consumers make
//! progress through their fallback poll.

use super::describe;
use crate::changes::{CHANNEL, Change, Feed};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Client, Config, NoTls, Notification};

/// The first wait before reconnecting; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often the listener checks its connection still answers: a connection whose peer
/// vanished without closing it (a failover, a dropped NAT entry) would otherwise wait forever.
const PING_EVERY: Duration = Duration::from_secs(10);
/// How long a ping may take before the connection counts as dead.
const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// Starts listening on `config`'s database, re-broadcasting to `feed`, until the returned
/// handle is dropped. Answers once the first connection listens (or failed to: then it keeps
/// trying in the background), so that changes committed after the store opened are heard.
pub(super) async fn start(config: Config, feed: Feed) -> AbortOnDrop {
    let first = listen(&config).await;
    AbortOnDrop(tokio::spawn(async move {
        let mut backoff = FIRST_BACKOFF;
        let mut connection = first;
        loop {
            match connection {
                Ok(listening) => {
                    backoff = FIRST_BACKOFF;
                    relay(listening, &feed).await;
                }
                Err(e) => {
                    tracing::warn!(
                        "the change listener is down ({e}); retrying in {} ms, polling meanwhile",
                        backoff.as_millis()
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
            connection = listen(&config).await;
            if connection.is_ok() {
                tracing::info!("the change listener is listening again");
                // What was notified while it was down is lost.
                feed.send(Change::Missed);
            }
        }
    }))
}

/// A connection that listens, and what it hears.
struct Listening {
    client: Client,
    notifications: mpsc::UnboundedReceiver<Notification>,
    _driver: AbortOnDrop,
}

/// Connects and `LISTEN`s.
async fn listen(config: &Config) -> Result<Listening, String> {
    let (client, mut connection) = config.connect(NoTls).await.map_err(|e| describe(&e))?;
    // The connection delivers notifications only while it is polled; it runs on its own task
    // and hands them over.
    let (notified, notifications) = mpsc::unbounded_channel();
    let driver = AbortOnDrop(tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    if notified.send(n).is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::warn!("the change listener's connection failed: {}", describe(&e));
                    return;
                }
                None => return,
            }
        }
    }));
    client
        .batch_execute(&format!("LISTEN {CHANNEL}"))
        .await
        .map_err(|e| describe(&e))?;
    Ok(Listening {
        client,
        notifications,
        _driver: driver,
    })
}

/// Re-broadcasts what a listening connection hears until it fails or stops answering.
async fn relay(mut listening: Listening, feed: &Feed) {
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        tokio::select! {
            n = listening.notifications.recv() => match n {
                Some(n) => feed.send_payload(n.payload()),
                None => return,
            },
            _ = ping.tick() => {
                let pinged =
                    tokio::time::timeout(PING_TIMEOUT, listening.client.simple_query("SELECT 1"));
                match pinged.await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        tracing::warn!("the change listener's connection failed: {}", describe(&e));
                        return;
                    }
                    Err(_) => {
                        tracing::warn!("the change listener's connection stopped answering");
                        return;
                    }
                }
            }
        }
    }
}

/// A task stopped when this is dropped: the listener when its store is dropped, a connection's
/// driver when its listener gives it up.
pub(super) struct AbortOnDrop(pub(super) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
