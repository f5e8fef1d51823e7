//! A run's live events over server-sent events: `log` events (id = the line's seq, so a client
//! that reconnects with `Last-Event-ID` resumes after it), `status` events when the run's status
//! or progress changes, and one `end` event with the final run. The API's logs route and the
//! portal's run page both stream this way.
//!
//! The store is the source of truth on every replica, so a stream polls it; a run's lines reach
//! a client within [`POLL`] of being written, whichever replica runs it.

use crate::AppState;
use axum::response::IntoResponse;
use axum::response::sse::{Event, KeepAlive, Sse};
use portico_store::RunRecord;
use serde_json::json;
use std::collections::VecDeque;
use std::time::Duration;

/// How often a stream looks for new lines.
pub const POLL: Duration = Duration::from_millis(100);

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
    let follow = Follow {
        state,
        run,
        after,
        queued,
        done: false,
        heartbeat,
        last_sent: tokio::time::Instant::now(),
        last_checked: tokio::time::Instant::now(),
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
            // Lines first; the run's status and progress at least every POLL even while lines
            // keep coming, so a chatty plugin's progress bar still moves.
            let lines = f.queue_lines(500).await;
            if lines > 0 && f.last_checked.elapsed() < POLL {
                continue;
            }
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
            tokio::time::sleep(POLL).await;
        }
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// The state of one event stream.
struct Follow {
    state: AppState,
    run: RunRecord,
    after: i64,
    queued: VecDeque<Event>,
    done: bool,
    heartbeat: Option<Duration>,
    last_sent: tokio::time::Instant,
    /// When the run's status was last read.
    last_checked: tokio::time::Instant,
}

impl Follow {
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
