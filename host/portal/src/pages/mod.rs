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
use axum::response::Html;
use serde_json::Value;

/// Renders a page inside the layout: `context` plus the viewer and which tab is current.
pub(crate) fn page(name: &str, viewer: &Viewer, tab: &str, mut context: Value) -> Html<String> {
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
