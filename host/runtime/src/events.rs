//! What a run reports while it goes: log lines, progress and links.

use serde::{Deserialize, Serialize};
use std::sync::Mutex;

/// Severity of a run log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Very detailed tracing.
    Trace,
    /// Diagnostics for the plugin author.
    Debug,
    /// Normal progress messages (and the plugin's stdout).
    Info,
    /// Unexpected but not fatal (and the plugin's stderr).
    Warn,
    /// Something failed.
    Error,
}

/// A link shown on the run page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// The link's text.
    pub title: String,
    /// An absolute URL.
    pub url: String,
}

/// Receives a run's events as they happen, so the caller can persist them and stream them live.
///
/// Called from inside the run, so implementations must be quick and must not block: queue the
/// event and return.
pub trait RunEvents: Send + Sync {
    /// One log line, already within the run's `logBytes` budget.
    fn log(&self, level: LogLevel, message: &str);
    /// A progress report; `None` keeps the previous value.
    fn progress(&self, percent: Option<u8>, label: Option<&str>);
    /// A link added before the run ended.
    fn link(&self, link: &Link);
    /// The plugin hands the run to an external system (its grant allows it): answer where and
    /// with which token that system reports, and remember the run continues outside.
    fn hand_off(&self) -> Result<HandOff, String> {
        Err("this host cannot hand runs to external systems".into())
    }
    /// A catalog or HTTP call the plugin made, with what the host decided, before the host
    /// writes its own log line about it (if any). For tools that show every call as its own line
    /// (`portico plugin test`); the server has no use for it, so the default does nothing.
    fn call(&self, _call: &CapabilityCall<'_>) {}
    /// Whether [`RunEvents::call`] wants calls at all; read once per run, so a run on the
    /// server builds no call reports (no names copied, no errors formatted).
    fn observes_calls(&self) -> bool {
        false
    }
}

/// A call the plugin made to a capability that reaches outside the sandbox, as
/// [`RunEvents::call`] receives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapabilityCall<'a> {
    /// What was called.
    pub target: CallTarget<'a>,
    /// What became of it.
    pub outcome: CallOutcome<'a>,
    /// The line the host writes to the run's log about this call right after (a denial's
    /// reason, or `http GET <url> -> 200 OK`), so an observer that shows the call can leave
    /// that line out.
    pub logged: Option<&'a str>,
}

/// What a [`CapabilityCall`] called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallTarget<'a> {
    /// `catalog.get`, `search`, `upsert` or `delete`.
    Catalog {
        /// `get`, `search`, `upsert` or `delete`.
        operation: &'a str,
        /// The blueprint the call names; `None` for a search (it reads every granted one).
        blueprint: Option<&'a str>,
        /// The entity the call names; `None` for a search.
        identifier: Option<&'a str>,
    },
    /// An outgoing HTTP request.
    Http {
        /// The request's method.
        method: &'a str,
        /// The URL as the plugin built it (the grant's headers, which hold the secrets, are not
        /// part of it).
        url: &'a str,
    },
}

/// What became of a [`CapabilityCall`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallOutcome<'a> {
    /// Refused by the grant or a limit; the reason names which.
    Denied(&'a str),
    /// `get`: whether the entity exists; `delete`: whether it existed.
    Found(bool),
    /// `search`: how many entities matched.
    Matched(usize),
    /// `upsert`: the entity was stored.
    Stored,
    /// HTTP: the response's status.
    Status(u16),
    /// Allowed, but it did not succeed: the store refused it, or the connection failed.
    Failed(&'a str),
}

/// Where an external system reports on a run handed to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandOff {
    /// The run's API address.
    pub url: String,
    /// A bearer token good for this run only.
    pub token: String,
}

/// Everything a run reported, in order.
#[derive(Clone, Debug, Default)]
pub struct Recorded {
    /// Log lines with their level.
    pub logs: Vec<(LogLevel, String)>,
    /// Progress reports.
    pub progress: Vec<(Option<u8>, Option<String>)>,
    /// Links added during the run.
    pub links: Vec<Link>,
}

/// Keeps every event in memory: for tests, the CLI demo and local plugin testing.
#[derive(Debug, Default)]
pub struct RecordedEvents(Mutex<Recorded>);

impl RecordedEvents {
    /// A copy of what was recorded so far.
    pub fn snapshot(&self) -> Recorded {
        self.lock().clone()
    }

    /// All log lines joined by newlines, for asserting on text.
    pub fn log_text(&self) -> String {
        let recorded = self.lock();
        let lines: Vec<&str> = recorded.logs.iter().map(|(_, l)| l.as_str()).collect();
        lines.join("\n")
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recorded> {
        // A panic while holding the lock cannot leave `Recorded` half-written.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl RunEvents for RecordedEvents {
    fn log(&self, level: LogLevel, message: &str) {
        self.lock().logs.push((level, message.to_owned()));
    }
    fn progress(&self, percent: Option<u8>, label: Option<&str>) {
        self.lock()
            .progress
            .push((percent, label.map(str::to_owned)));
    }
    fn link(&self, link: &Link) {
        self.lock().links.push(link.clone());
    }
}
