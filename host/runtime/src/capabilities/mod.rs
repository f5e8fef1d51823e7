//! One module per capability a plugin can be granted. Each holds the capability's per-run state,
//! the host side of its WIT interface, and the checks that make it deny-by-default.

pub mod catalog;
pub(crate) mod fs;
pub(crate) mod http;
pub(crate) mod log;
pub(crate) mod progress;
pub mod secrets;

/// Capability denials seen during a run, in order. A run that fails after a denial fails as
/// `denied`, with the first denial as the reason.
#[derive(Debug, Default)]
pub(crate) struct Denials(std::sync::Mutex<Vec<String>>);

impl Denials {
    pub(crate) fn record(&self, reason: String) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(reason);
    }

    pub(crate) fn first(&self) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .first()
            .cloned()
    }
}
