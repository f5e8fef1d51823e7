//! Whether the worker loop is turning. The loop marks each turn; readiness (`/readyz`) reads
//! how long ago the last one was. A loop blocked on a store call that never returns, or whose
//! task died, stops marking: its replica claims nothing, renews no lease and fires no timer,
//! though HTTP still answers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Where the worker loop stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkerLoop {
    /// [`crate::runner::Runner::start`] was never called.
    NotStarted,
    /// It stopped (its stop token was cancelled).
    Stopped,
    /// It turned `since` ago, within the limit.
    Turning {
        /// Since the last turn.
        since: Duration,
    },
    /// It has not turned for `since`, longer than `limit`.
    Stuck {
        /// Since the last turn.
        since: Duration,
        /// How long it may go without a turn.
        limit: Duration,
    },
}

impl WorkerLoop {
    /// Whether the replica can work runs.
    pub fn is_healthy(&self) -> bool {
        matches!(self, Self::Turning { .. })
    }
}

/// The last turn: milliseconds since `base`, plus one (`0` never started, `u64::MAX`
/// stopped). One atomic store per turn.
pub(crate) struct Pulse {
    base: Instant,
    last: AtomicU64,
}

const NOT_STARTED: u64 = 0;
const STOPPED: u64 = u64::MAX;

impl Pulse {
    pub(crate) fn new() -> Self {
        Self {
            base: Instant::now(),
            last: AtomicU64::new(NOT_STARTED),
        }
    }

    /// The loop turned now.
    pub(crate) fn beat(&self) {
        let millis = self.base.elapsed().as_millis() as u64 + 1;
        self.last.store(millis.min(STOPPED - 1), Ordering::Relaxed);
    }

    /// The loop ended.
    pub(crate) fn stop(&self) {
        self.last.store(STOPPED, Ordering::Relaxed);
    }

    /// The loop's state, stuck when it did not turn within `limit`.
    pub(crate) fn state(&self, limit: Duration) -> WorkerLoop {
        match self.last.load(Ordering::Relaxed) {
            NOT_STARTED => WorkerLoop::NotStarted,
            STOPPED => WorkerLoop::Stopped,
            last => {
                let since = self
                    .base
                    .elapsed()
                    .saturating_sub(Duration::from_millis(last - 1));
                if since > limit {
                    WorkerLoop::Stuck { since, limit }
                } else {
                    WorkerLoop::Turning { since }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loop_is_healthy_only_between_its_start_and_its_stop_while_it_turns() {
        let pulse = Pulse::new();
        let limit = Duration::from_secs(10);
        assert_eq!(pulse.state(limit), WorkerLoop::NotStarted);
        pulse.beat();
        assert!(pulse.state(limit).is_healthy());
        pulse.stop();
        assert_eq!(pulse.state(limit), WorkerLoop::Stopped);
    }

    #[test]
    fn a_loop_whose_last_turn_is_older_than_the_limit_is_stuck() {
        // Its one turn was at `base`, a minute ago.
        let pulse = Pulse {
            base: Instant::now() - Duration::from_secs(60),
            last: AtomicU64::new(1),
        };
        let state = pulse.state(Duration::from_secs(10));
        assert!(
            matches!(state, WorkerLoop::Stuck { since, limit }
                if since >= Duration::from_secs(60) && limit == Duration::from_secs(10)),
            "{state:?}"
        );
        assert!(!state.is_healthy());
    }
}
