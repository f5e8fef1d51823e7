//! One module per page (or group of pages).

pub mod action;
pub mod admin;
pub mod approvals;
pub mod audit;
pub mod catalog;
pub mod hub;
pub mod login;
pub mod run;
pub mod runs;

use crate::templates;
use crate::viewer::Viewer;
use axum::response::Response;
use serde_json::Value;

/// Renders a page inside the layout: `context` plus the viewer and which tab is current.
pub(crate) fn page(name: &str, viewer: &Viewer, tab: &str, mut context: Value) -> Response {
    if let Some(map) = context.as_object_mut() {
        map.insert("viewer".into(), viewer.context());
        map.insert("tab".into(), tab.into());
    }
    templates::render(name, &context)
}

/// A time as pages show it: UTC, to the second.
pub(crate) fn when(at: &chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// Each action's title by identifier, for pages that list runs (one read).
pub(crate) async fn action_titles(
    portal: &crate::Portal,
) -> Result<std::collections::HashMap<String, String>, portico_store::StoreError> {
    Ok(portal
        .state
        .store
        .list_actions()
        .await?
        .into_iter()
        .map(|a| {
            let title = a
                .data
                .get("title")
                .and_then(Value::as_str)
                .map(str::to_owned);
            (a.identifier.clone(), title.unwrap_or(a.identifier))
        })
        .collect())
}

/// Runs as a list shows them, with their actions' titles (from [`action_titles`]).
pub(crate) fn run_rows(
    titles: &std::collections::HashMap<String, String>,
    runs: &[portico_store::RunRecord],
) -> Vec<Value> {
    runs.iter()
        .map(|r| {
            let mut v = run::view(r);
            v["actionTitle"] = titles.get(&r.action).unwrap_or(&r.action).clone().into();
            v
        })
        .collect()
}
