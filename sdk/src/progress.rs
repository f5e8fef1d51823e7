//! Progress shown on the run page while the run goes.

use crate::bindings::portico::action::{progress as wit, types};

/// Reports how far the run is (0-100) and what it is doing.
///
/// ```no_run
/// portico_sdk::progress::report(40, "Creating repository");
/// ```
pub fn report(percent: u8, label: &str) {
    wit::report(Some(percent.min(100)), Some(label));
}

/// Changes the label without changing the percentage.
pub fn label(label: &str) {
    wit::report(None, Some(label));
}

/// Adds a link to the run page now (a pull request, a pipeline), before the run ends.
pub fn add_link(title: &str, url: &str) {
    wit::add_link(&types::Link {
        title: title.to_owned(),
        url: url.to_owned(),
    });
}

/// Where an external system reports on a run handed to it with [`hand_off`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct HandOff {
    /// The run's API address: `PATCH` it with `{status, statusLabel, summary, link}`, `POST`
    /// log lines to `<url>/logs`.
    pub url: String,
    /// A bearer token good for this run only. Send it to the external system, never log it.
    pub token: String,
}

/// Hands the run to an external system (a CI pipeline). Once the plugin returns `Ok`, the run
/// stays in progress until that system reports a final status, or the grant's deadline passes.
/// Needs the action's `capabilities.handOff` grant; without it the failure is `denied`.
///
/// ```no_run
/// # fn run() -> Result<(), portico_sdk::Failure> {
/// let report = portico_sdk::progress::hand_off()?;
/// portico_sdk::http::post("https://ci.example.com/pipelines")
///     .json(&report)
///     .send()?;
/// # Ok(()) }
/// ```
pub fn hand_off() -> Result<HandOff, crate::Failure> {
    wit::hand_off()
        .map(|r| HandOff {
            url: r.url,
            token: r.token,
        })
        .map_err(crate::Failure::denied)
}
