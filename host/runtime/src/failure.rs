//! How a run fails, in terms the API shows to the person who triggered it.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Who or what ended the run. The API shows it as `error.kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureKind {
    /// The plugin returned its own `run-failure` (`invalid-input` or `failed`).
    Plugin,
    /// The run exceeded `timeoutSeconds`.
    Timeout,
    /// The plugin tried to use more than `memoryMiB`.
    Memory,
    /// The plugin crashed: a panic, an abort, a stack overflow, an invalid memory access.
    Trap,
    /// The plugin handed back more than its action's limits allow (e.g. `limits.outputBytes`).
    Limit,
    /// The plugin needed something its action does not grant (or said so itself).
    Denied,
    /// The run was cancelled before it finished.
    Cancelled,
    /// The host failed; the plugin is not to blame. Details are in the host's log, not here.
    Internal,
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::Plugin => "plugin",
            Self::Timeout => "timeout",
            Self::Memory => "memory",
            Self::Trap => "trap",
            Self::Limit => "limit",
            Self::Denied => "denied",
            Self::Cancelled => "cancelled",
            Self::Internal => "internal",
        };
        f.write_str(name)
    }
}

/// A failed run: its kind and a plain-words message naming the limit or grant involved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct RunFailure {
    /// Who or what ended the run.
    pub kind: FailureKind,
    /// What happened, for the person who triggered the run.
    pub message: String,
}

impl RunFailure {
    pub(crate) fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

/// A failure of the host during a run (not the plugin's fault): a host call returns it as its
/// trap, and the run fails as `internal`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct HostFailure(pub(crate) String);
