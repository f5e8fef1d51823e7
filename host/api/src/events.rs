//! A run's live events over server-sent events: `log` events (id = the line's seq, so a client
//! that reconnects with `Last-Event-ID` resumes after it), `status` events when the run's status
//! or progress changes, and one `end` event with the final run. The API's logs route and the
//! portal's run page both stream this way.
//!
//! The store is the source of truth on every replica: a stream reads the run's lines and status
//! from it when the store's change feed ([`portico_store::Changes`]) says the run changed,
//! whichever replica wrote it (on Postgres, through `LISTEN`/`NOTIFY`), and at least every
//! [`FALLBACK`] in case the feed missed something (e.g. while its connection reconnects).

use crate::AppState;
use axum::response::IntoResponse;
use axum::response::sse::{Event, KeepAlive, Sse};
use portico_store::{Change, RunRecord};
use serde_json::json;
use std::collections::VecDeque;
use std::time::Duration;

/// How often a stream reads the store without being told of a change: the fallback while the
/// change feed is down.
pub const FALLBACK: Duration = Duration::from_secs(1);
/// How often, at least, a stream reads the run's status while lines keep coming.
pub const STATUS_EVERY: Duration = Duration::from_millis(100);

/// Where a stream starts: after the line its client last saw (`Last-Event-ID`, sent again by a
/// reconnecting `EventSource`), else after `after` (the request's `?after=`).
pub fn resume_after(headers: &axum::http::HeaderMap, after: i64) -> i64 {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(after)
}

/// Streams a run's events after line `after`. With `heartbeat`, a `ping` event is sent first and
/// then at that interval: a browser script sees them (it cannot see comments), and a stream that
/// delivers none is being buffered by a proxy, so the script falls back to polling. Without it,
/// a comment keeps the connection alive every 15 s.
pub fn run_events(
    state: AppState,
    run: RunRecord,
    after: i64,
    heartbeat: Option<Duration>,
) -> impl IntoResponse {
    let mut queued = VecDeque::new();
    if heartbeat.is_some() {
        queued.push_back(Event::default().event("ping").data("{}"));
    }
    // Subscribed before the first read: a change made after it wakes the stream.
    let changes = state.store.changes();
    let follow = Follow {
        changes,
        state,
        run,
        after,
        queued,
        done: false,
        heartbeat,
        last_sent: tokio::time::Instant::now(),
        last_checked: tokio::time::Instant::now(),
        stale: true,
    };
    let events = futures_util::stream::unfold(follow, |mut f| async move {
        loop {
            if let Some(event) = f.queued.pop_front() {
                f.last_sent = tokio::time::Instant::now();
                return Some((Ok::<_, std::convert::Infallible>(event), f));
            }
            if f.done {
                return None;
            }
            // Lines first; the run's status and progress when they changed, at most every
            // STATUS_EVERY while lines keep coming, so a chatty plugin's progress bar still
            // moves. Changes announced before the read are seen by it: only later ones wake
            // the wait.
            f.take_changes();
            let lines = f.queue_lines(500).await;
            if lines > 0 && (!f.stale || f.last_checked.elapsed() < STATUS_EVERY) {
                continue;
            }
            if !f.stale && lines == 0 {
                f.changed().await;
                continue;
            }
            f.stale = false;
            f.last_checked = tokio::time::Instant::now();
            let Ok(Some(now)) = f.state.store.get_run(&f.run.id).await else {
                f.done = true;
                continue;
            };
            if now.status != f.run.status || now.progress != f.run.progress {
                let data = json!({ "status": now.status, "progress": now.progress }).to_string();
                f.queued
                    .push_back(Event::default().event("status").data(data));
            }
            let ended = now.is_final();
            f.run = now;
            if ended {
                // Lines written just before the end are read once more before closing.
                f.queue_lines(10_000).await;
                let data = crate::show_run(&f.run).to_string();
                f.queued.push_back(Event::default().event("end").data(data));
                f.done = true;
                continue;
            }
            if let Some(every) = f.heartbeat
                && f.last_sent.elapsed() >= every
            {
                f.queued
                    .push_back(Event::default().event("ping").data("{}"));
                continue;
            }
            if lines > 0 {
                continue;
            }
            f.changed().await;
        }
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// The state of one event stream.
struct Follow {
    /// The store's change feed: says when to read again.
    changes: tokio::sync::broadcast::Receiver<Change>,
    state: AppState,
    run: RunRecord,
    after: i64,
    queued: VecDeque<Event>,
    done: bool,
    heartbeat: Option<Duration>,
    last_sent: tokio::time::Instant,
    /// When the run's status was last read.
    last_checked: tokio::time::Instant,
    /// Whether the run's status may have changed since (its change was announced, changes
    /// were missed, or the fallback read is due).
    stale: bool,
}

impl Follow {
    /// Takes note, without waiting, of the changes announced so far: a change to the run's
    /// status (or missed changes, or no status read for [`FALLBACK`]) makes it stale.
    fn take_changes(&mut self) {
        use tokio::sync::broadcast::error::TryRecvError;
        if self.last_checked.elapsed() >= FALLBACK {
            self.stale = true;
        }
        loop {
            match self.changes.try_recv() {
                Ok(change) if change.concerns(&self.run.id) => {
                    self.stale |= !matches!(change, Change::RunLogged(_));
                }
                Ok(_) => {}
                Err(TryRecvError::Lagged(_)) => self.stale = true,
                Err(TryRecvError::Empty | TryRecvError::Closed) => return,
            }
        }
    }

    /// Waits until the run may have changed (a change to it, or changes the feed missed), the
    /// fallback read is due, or a heartbeat is. Marks the status [`Follow::stale`] unless only
    /// lines were appended.
    async fn changed(&mut self) {
        let mut wait = FALLBACK;
        if let Some(every) = self.heartbeat {
            wait = wait.min(every.saturating_sub(self.last_sent.elapsed()));
        }
        let run = self.run.id.clone();
        let changes = &mut self.changes;
        let woken = tokio::time::timeout(wait, async move {
            use tokio::sync::broadcast::error::RecvError;
            loop {
                match changes.recv().await {
                    Ok(change) if change.concerns(&run) => return change,
                    Ok(_) => {}
                    // Fell behind: whatever it missed may concern this run.
                    Err(RecvError::Lagged(_)) => return Change::Missed,
                    // No feed: the fallback reads.
                    Err(RecvError::Closed) => std::future::pending().await,
                }
            }
        })
        .await;
        self.stale |= !matches!(woken, Ok(Change::RunLogged(_)));
    }

    /// Queues the log lines after the last one sent.
    async fn queue_lines(&mut self, limit: usize) -> usize {
        let lines = self
            .state
            .store
            .run_logs(&self.run.id, self.after, limit)
            .await
            .unwrap_or_default();
        for line in &lines {
            self.after = line.seq;
            let data = serde_json::to_string(line).unwrap_or_default();
            self.queued.push_back(
                Event::default()
                    .event("log")
                    .id(line.seq.to_string())
                    .data(data),
            );
        }
        lines.len()
    }
}
