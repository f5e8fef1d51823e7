//! What the store's change feed ([`portico_store::Changes`]) tells this replica's runner, from
//! its own writes and (on Postgres) every other replica's: a run was queued, so idle workers
//! claim now rather than at their next poll; a run executing here was ended elsewhere (a cancel
//! or an external report received by another replica), so its plugin stops now rather than at
//! the next lease renewal. The poll and the renewal stay, as the fallback while the feed is
//! down.

use super::Inner;
use portico_store::Change;
use std::sync::Arc;
use tokio::sync::broadcast::{Receiver, error::RecvError};
use tokio_util::sync::CancellationToken;

impl Inner {
    /// Acts on the changes `changes` receives until `stop` is cancelled.
    pub(super) async fn follow_changes(
        self: Arc<Self>,
        mut changes: Receiver<Change>,
        stop: CancellationToken,
    ) {
        loop {
            let change = tokio::select! {
                () = stop.cancelled() => return,
                change = changes.recv() => change,
            };
            match change {
                Ok(Change::RunsQueued) => self.queue.nudge(),
                // Final whoever wrote it: if this replica wrote it, the plugin has returned
                // already and the cancel does nothing.
                Ok(Change::RunEnded(id)) => {
                    if let Some(token) = self.lock_running().get(&*id) {
                        token.cancel();
                    }
                }
                Ok(Change::RunChanged(_) | Change::RunLogged(_)) => {}
                Ok(Change::Missed) | Err(RecvError::Lagged(_)) => {
                    self.queue.nudge();
                    let ids: Vec<String> = self.lock_running().keys().cloned().collect();
                    self.stop_ended_elsewhere(&ids).await;
                }
                Err(RecvError::Closed) => return,
            }
        }
    }
}
