//! The store's change feed: which runs changed, so that live consumers (event streams, the
//! worker loop, a replica's running plugins) wake up when something happened instead of
//! polling. It says *what* may have changed, never the new state: a consumer reads the store
//! again, which stays the source of truth. A consumer keeps a slow poll as a fallback (the
//! feed may be down, e.g. while Postgres reconnects its listener).
//!
//! SQLite (one process) sends changes in-process once the writer committed them. Postgres
//! sends them with `pg_notify` from triggers on `runs` and `run_logs` (migration
//! `0010_notify.sql`), so every replica hears about every other replica's writes: each replica
//! has one connection that `LISTEN`s and re-broadcasts to its own subscribers.

use std::sync::Arc;
use tokio::sync::broadcast;

/// The `NOTIFY` channel Postgres triggers send on.
pub(crate) const CHANNEL: &str = "portico";
/// Changes buffered per subscriber; one that falls further behind hears
/// [`broadcast::error::RecvError::Lagged`] and must treat it as [`Change::Missed`].
const CAPACITY: usize = 4096;

/// Something that changed in the store, committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A run's status, progress or other mutable fields were written (not its lease), and it
    /// did not end.
    RunChanged(Arc<str>),
    /// A run reached a final status (`SUCCESS`, `FAILURE`, `CANCELLED`, `DECLINED`), whoever
    /// wrote it: a worker still running its plugin stops it.
    RunEnded(Arc<str>),
    /// Log lines were appended to a run.
    RunLogged(Arc<str>),
    /// A `PENDING` run was created or queued again: idle workers claim.
    RunsQueued,
    /// Changes may have been missed (the listener reconnected, or a notification named more
    /// runs than fit in one): anything may have changed, look again.
    Missed,
}

impl Change {
    /// The run this change is about, if it names one.
    pub fn run(&self) -> Option<&str> {
        match self {
            Self::RunChanged(id) | Self::RunEnded(id) | Self::RunLogged(id) => Some(id),
            Self::RunsQueued | Self::Missed => None,
        }
    }

    /// Whether a consumer following `run_id` should look again: a change to that run, or
    /// possibly missed changes.
    pub fn concerns(&self, run_id: &str) -> bool {
        self.run()
            .map_or(matches!(self, Self::Missed), |id| id == run_id)
    }
}

/// The change feed every backend provides (part of [`crate::Store`]).
pub trait Changes: Send + Sync {
    /// A receiver of the changes committed from now on. Subscribe *before* reading what you
    /// follow, so that a change between the read and the wait is not lost.
    fn changes(&self) -> broadcast::Receiver<Change>;
}

/// The sending half a backend keeps.
#[derive(Clone)]
pub(crate) struct Feed(broadcast::Sender<Change>);

impl Feed {
    pub(crate) fn new() -> Self {
        Self(broadcast::Sender::new(CAPACITY))
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.0.subscribe()
    }

    /// Sends a change to whoever listens (nobody is fine).
    pub(crate) fn send(&self, change: Change) {
        let _ = self.0.send(change);
    }

    /// Sends the changes one Postgres notification describes (see [`parse`]).
    pub(crate) fn send_payload(&self, payload: &str) {
        for change in parse(payload) {
            self.send(change);
        }
    }
}

/// The changes a notification's payload names: a kind letter, then run ids separated by
/// spaces (run ids have none): `c <ids>` changed, `e <ids>` ended, `l <ids>` logged, `q`
/// queued, `*` anything (a payload too long to name them). Unknown kinds read as
/// [`Change::Missed`], so an older replica beside a newer schema still wakes up.
pub(crate) fn parse(payload: &str) -> Vec<Change> {
    let mut words = payload.split(' ').filter(|w| !w.is_empty());
    let kind = words.next().unwrap_or_default();
    let run: fn(Arc<str>) -> Change = match kind {
        "c" => Change::RunChanged,
        "e" => Change::RunEnded,
        "l" => Change::RunLogged,
        "q" => return vec![Change::RunsQueued],
        _ => return vec![Change::Missed],
    };
    words.map(|id| run(Arc::from(id))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_names_its_runs() {
        assert_eq!(
            parse("l r_1 r_2"),
            vec![
                Change::RunLogged("r_1".into()),
                Change::RunLogged("r_2".into())
            ]
        );
        assert_eq!(parse("e r_1"), vec![Change::RunEnded("r_1".into())]);
        assert_eq!(parse("c r_1"), vec![Change::RunChanged("r_1".into())]);
        assert_eq!(parse("q"), vec![Change::RunsQueued]);
        assert_eq!(parse("*"), vec![Change::Missed]);
        assert_eq!(parse("zz r_1"), vec![Change::Missed]);
    }

    #[test]
    fn missed_changes_concern_every_run() {
        assert!(Change::Missed.concerns("r_1"));
        assert!(Change::RunLogged("r_1".into()).concerns("r_1"));
        assert!(!Change::RunLogged("r_2".into()).concerns("r_1"));
        assert!(!Change::RunsQueued.concerns("r_1"));
    }
}
