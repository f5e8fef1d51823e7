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
