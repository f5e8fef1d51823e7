//! The self-service hub: the actions the viewer may run, grouped by blueprint.

use super::page as render_page;
use crate::Portal;
use crate::error::PageResult;
use crate::viewer::Viewer;
use axum::Extension;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use portico_runs::compiled::{Action, TriggerKind};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Deserialize)]
pub struct Search {
    #[serde(default)]
    q: String,
}

/// The self-service actions the viewer may be allowed to run: `permissions.execute` admits
/// them, or decides per entity or by policy (the run request has the final word).
pub(crate) async fn offered(portal: &Portal, viewer: &Viewer) -> PageResult<Vec<Arc<Action>>> {
    let mut offered = Vec::new();
    for record in portal.state.store.list_actions().await? {
        let Ok(Some(action)) = portal.state.intake.action(&record.identifier).await else {
            continue;
        };
        let execute = &action.permissions.execute;
        let maybe =
            execute.policy.is_some() || execute.owned_by_team || execute.admits(&viewer.user, &[]);
        if action.trigger_kind == TriggerKind::SelfService && action.publish && maybe {
            offered.push(action);
        }
    }
    Ok(offered)
}

/// An action as a card shows it.
pub(crate) fn card(action: &Action) -> Value {
    json!({
        "identifier": action.identifier,
        "title": action.title.clone().unwrap_or_else(|| action.identifier.clone()),
        "description": action.description,
        "icon": icon(action.icon.as_deref(), action.title.as_deref().unwrap_or(&action.identifier)),
        "operation": action.trigger.operation,
        "blueprint": action.trigger.blueprint_identifier,
    })
}

/// A badge for what Port names an icon: the title's first letter on the icon name's own color.
/// (Port's icon set is not ours to ship, and emoji depend on the fonts a machine has.)
pub(crate) fn icon(name: Option<&str>, title: &str) -> Value {
    let name = name.unwrap_or("Action");
    let hue = name
        .bytes()
        .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
        % 360;
    let letter = title.chars().next().map(|c| c.to_uppercase().to_string());
    json!({ "letter": letter.unwrap_or_default(), "hue": hue, "name": name })
}

/// `GET /`.
pub async fn page_handler(portal: &Portal, viewer: &Viewer, q: &str) -> PageResult<Response> {
    let needle = q.trim().to_lowercase();
    let mut groups: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for action in offered(portal, viewer).await? {
        let card = card(&action);
        let text = format!(
            "{} {} {}",
            action.identifier,
            card["title"].as_str().unwrap_or_default(),
            action.description.as_deref().unwrap_or_default()
        )
        .to_lowercase();
        if !needle.is_empty() && !text.contains(&needle) {
            continue;
        }
        let group = action
            .trigger
            .blueprint_identifier
            .clone()
            .unwrap_or_default();
        groups.entry(group).or_default().push(card);
    }
    let titles: BTreeMap<String, String> = portal
        .state
        .catalog
        .list_blueprints()
        .await?
        .into_iter()
        .map(|b| (b.identifier.clone(), b.title.unwrap_or(b.identifier)))
        .collect();
    // Actions of no blueprint come last.
    let (mut groups, other): (Vec<_>, Vec<_>) =
        groups.into_iter().partition(|(bp, _)| !bp.is_empty());
    groups.extend(other);
    let groups: Vec<Value> = groups
        .into_iter()
        .map(|(bp, mut cards)| {
            cards.sort_by(|a, b| a["title"].as_str().cmp(&b["title"].as_str()));
            let title = if bp.is_empty() {
                "Other actions".to_owned()
            } else {
                titles.get(&bp).cloned().unwrap_or(bp.clone())
            };
            json!({ "blueprint": bp, "title": title, "actions": cards })
        })
        .collect();
    Ok(render_page(
        "hub.html",
        viewer,
        "hub",
        json!({ "groups": groups, "q": q }),
    )
    .into_response())
}

/// `GET /?q=`.
pub async fn page(
    State(portal): State<Portal>,
    Extension(viewer): Extension<Viewer>,
    Query(search): Query<Search>,
) -> PageResult<Response> {
    page_handler(&portal, &viewer, &search.q).await
}
