//! The catalog: blueprints, a table of each blueprint's entities (searched with the API's rules,
//! paged by cursor so page 1,000 costs what page 1 does), and an entity's page with its
//! relations both ways and the runs that touched it.

use super::{page as render_page, when};
use crate::Portal;
use crate::error::PageResult;
use crate::viewer::Viewer;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use portico_catalog::CatalogError;
use portico_store::{AuditFilter, Entity, EntityRef, Order, RunFilter, SortKey};
use serde::Deserialize;
use serde_json::{Value, json};

/// Rows per page of a table.
const PAGE: usize = 50;
/// The most runs an entity's page lists (each one the audit log names is one read).
const RUNS_SHOWN: usize = 50;
/// Property columns a table shows (the rest are on the entity's page).
const COLUMNS: usize = 6;

/// `GET /catalog`.
pub async fn blueprints(
    State(portal): State<Portal>,
    Extension(viewer): Extension<Viewer>,
) -> PageResult<Response> {
    let mut rows = Vec::new();
    for bp in portal.state.catalog.list_blueprints().await? {
        let count = portal.state.store.count_entities(&bp.identifier).await?;
        rows.push(json!({
            "identifier": bp.identifier,
            "title": bp.title.clone().unwrap_or(bp.identifier.clone()),
            "description": bp.description,
            "icon": super::hub::icon(bp.icon.as_deref(), bp.title.as_deref().unwrap_or(&bp.identifier)),
            "count": count,
        }));
    }
    Ok(render_page(
        "blueprints.html",
        &viewer,
        "catalog",
        json!({ "blueprints": rows }),
    )
    .into_response())
}

#[derive(Deserialize, Default)]
pub struct TableQuery {
    /// Identifier or title contains.
    #[serde(default)]
    q: String,
    /// One property rule: property, operator, value.
    #[serde(default)]
    prop: String,
    #[serde(default)]
    op: String,
    #[serde(default)]
    value: String,
    /// `relatedTo`: an entity `blueprint:identifier`.
    #[serde(default)]
    related: String,
    /// `identifier`, `title` or `updated`; a leading `-` for largest first.
    #[serde(default)]
    sort: String,
    #[serde(default)]
    cursor: String,
}

/// Each sortable column's link: the order it asks for next, and how it is sorted now.
fn sort_links(now: Order) -> Value {
    let link = |key: SortKey, name: &str| {
        let on = now.key == key;
        let next = if on && !now.descending {
            format!("-{name}")
        } else {
            name.to_owned()
        };
        let (arrow, aria) = match (on, now.descending) {
            (false, _) => ("", ""),
            (true, false) => (" ↑", "ascending"),
            (true, true) => (" ↓", "descending"),
        };
        json!({ "next": next, "arrow": arrow, "aria": aria })
    };
    json!({
        "identifier": link(SortKey::Identifier, "identifier"),
        "title": link(SortKey::Title, "title"),
        "updated": link(SortKey::UpdatedAt, "updated"),
    })
}

/// The order a table's `sort` asks for (an unknown one sorts by identifier).
fn order(sort: &str) -> Order {
    let (descending, key) = match sort.strip_prefix('-') {
        Some(key) => (true, key),
        None => (false, sort),
    };
    let key = match key {
        "title" => SortKey::Title,
        "updated" => SortKey::UpdatedAt,
        _ => SortKey::Identifier,
    };
    Order { key, descending }
}

/// The search body a table's filters stand for, in the API's shape.
fn search_body(blueprint: &str, q: &TableQuery, numeric: bool) -> Value {
    let mut rules = vec![json!({ "property": "$blueprint", "operator": "=", "value": blueprint })];
    if !q.q.trim().is_empty() {
        rules.push(json!({ "combinator": "or", "rules": [
            { "property": "$identifier", "operator": "contains", "value": q.q.trim() },
            { "property": "$title", "operator": "contains", "value": q.q.trim() },
        ] }));
    }
    if !q.prop.is_empty() && !q.op.is_empty() {
        let text = q.value.trim();
        let value = match (numeric, text.parse::<f64>()) {
            (true, Ok(n)) => json!(n),
            _ => json!(text),
        };
        let mut rule = json!({ "property": q.prop, "operator": q.op });
        if !matches!(q.op.as_str(), "isEmpty" | "isNotEmpty") {
            rule["value"] = value;
        }
        rules.push(rule);
    }
    if let Some((bp, id)) = q.related.trim().split_once(':') {
        rules.push(json!({ "operator": "relatedTo", "blueprint": bp, "value": id }));
    }
    json!({ "combinator": "and", "rules": rules })
}

/// `GET /catalog/{blueprint}`.
pub async fn table(
    State(portal): State<Portal>,
    Extension(viewer): Extension<Viewer>,
    Path(blueprint): Path<String>,
    Query(q): Query<TableQuery>,
) -> PageResult<Response> {
    let bp = portal.state.catalog.get_blueprint(&blueprint).await?;
    let properties: Vec<(String, Value)> = bp
        .schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let numeric = properties
        .iter()
        .find(|(k, _)| *k == q.prop)
        .and_then(|(_, d)| d.get("type").and_then(Value::as_str))
        .is_some_and(|t| t == "number" || t == "integer");
    let body = search_body(&blueprint, &q, numeric);
    let cursor = Some(q.cursor.as_str()).filter(|c| !c.is_empty());
    let found = portal
        .state
        .catalog
        .search_ordered(&body, order(&q.sort), PAGE, cursor)
        .await;
    let (entities, next, error) = match found {
        Ok((found, next)) => (found, next, None),
        Err(CatalogError::Invalid { message, details }) => {
            let details: Vec<String> = details
                .iter()
                .map(|d| format!("{}: {}", d.path, d.message))
                .collect();
            (
                Vec::new(),
                None,
                Some(format!("{message} {}", details.join("; "))),
            )
        }
        Err(e) => return Err(e.into()),
    };
    let columns: Vec<&String> = properties.iter().take(COLUMNS).map(|(k, _)| k).collect();
    let headers: Vec<String> = properties
        .iter()
        .take(COLUMNS)
        .map(|(k, def)| {
            def.get("title")
                .and_then(Value::as_str)
                .map_or_else(|| k.clone(), str::to_owned)
        })
        .collect();
    let rows: Vec<Value> = entities
        .iter()
        .map(|e| {
            let cells: Vec<String> = columns
                .iter()
                .map(|c| cell(e.properties.get(c.as_str())))
                .collect();
            json!({
                "identifier": e.identifier,
                "title": e.title,
                "cells": cells,
                "team": e.team.join(", "),
                "updated": when(&e.updated_at),
            })
        })
        .collect();
    let context = json!({
        "blueprint": { "identifier": bp.identifier, "title": bp.title.clone().unwrap_or(bp.identifier.clone()) },
        "columns": headers,
        "properties": properties.iter().map(|(k, _)| k).collect::<Vec<_>>(),
        "rows": rows,
        "next": next,
        "first": !q.cursor.is_empty(),
        "error": error,
        "sorts": sort_links(order(&q.sort)),
        "query": { "q": q.q, "prop": q.prop, "op": q.op, "value": q.value, "related": q.related, "sort": q.sort },
        "operators": ["=", "!=", ">", ">=", "<", "<=", "contains", "beginsWith", "endsWith", "isEmpty", "isNotEmpty"],
    });
    Ok(render_page("table.html", &viewer, "catalog", context).into_response())
}

/// A property value in a table cell.
fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    }
}

/// The DAY-2 and DELETE actions of a blueprint the viewer may start.
async fn day_two(portal: &Portal, viewer: &Viewer, blueprint: &str) -> PageResult<Vec<Value>> {
    Ok(super::hub::offered(portal, viewer)
        .await?
        .iter()
        .filter(|a| {
            a.trigger.operation != "CREATE"
                && a.trigger.blueprint_identifier.as_deref() == Some(blueprint)
        })
        .map(|a| super::hub::card(a))
        .collect())
}

/// `GET /catalog/{blueprint}/{entity}`.
pub async fn entity(
    State(portal): State<Portal>,
    Extension(viewer): Extension<Viewer>,
    Path((blueprint, identifier)): Path<(String, String)>,
) -> PageResult<Response> {
    let e: Entity = portal
        .state
        .catalog
        .get_entity(&blueprint, &identifier)
        .await?;
    let properties: Vec<Value> = e
        .properties
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| json!({ "name": k, "value": cell(Some(v)) }))
        .collect();
    let bp = portal.state.catalog.get_blueprint(&blueprint).await?;
    let mut outgoing = Vec::new();
    for (name, target) in e.relations.as_object().into_iter().flatten() {
        let to = bp
            .relations
            .get(name)
            .and_then(|r| r.get("target"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let ids: Vec<&str> = match target {
            Value::String(s) => vec![s.as_str()],
            Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        for id in ids {
            outgoing.push(json!({ "relation": name, "blueprint": to, "identifier": id }));
        }
    }
    let target = EntityRef {
        blueprint: blueprint.clone(),
        identifier: identifier.clone(),
    };
    let incoming: Vec<Value> = portal
        .state
        .store
        .dependents(&target)
        .await?
        .into_iter()
        .map(|r| json!({ "blueprint": r.blueprint, "identifier": r.identifier }))
        .collect();
    // Runs that ran on it (DAY-2, DELETE), and runs that wrote it: the audit log keeps the run
    // of every write a plugin made.
    let store = &portal.state.store;
    let mut runs = store
        .list_runs(&RunFilter {
            entity: Some(identifier.clone()),
            limit: RUNS_SHOWN,
            ..RunFilter::default()
        })
        .await?;
    // The filter matches the identifier; an entity of another blueprint may share it.
    runs.retain(|r| r.blueprint.as_deref() == Some(blueprint.as_str()));
    let writes = store
        .audit_log(&AuditFilter {
            resource_type: Some("entity".into()),
            resource_id: Some(format!("{blueprint}/{identifier}")),
            limit: 200,
            ..AuditFilter::default()
        })
        .await?;
    for record in writes {
        let Some(run_id) = record.run_id else {
            continue;
        };
        if runs.len() >= RUNS_SHOWN {
            break;
        }
        if runs.iter().any(|r| r.id == run_id) {
            continue;
        }
        if let Some(run) = store.get_run(&run_id).await? {
            runs.push(run);
        }
    }
    runs.sort_by_key(|r| std::cmp::Reverse(r.created_at));
    runs.retain(|r| viewer.is_admin() || r.created_by == viewer.user.identifier);
    let runs = super::run_rows(&super::action_titles(&portal).await?, &runs);
    let context = json!({
        "entity": {
            "identifier": e.identifier, "title": e.title, "blueprint": e.blueprint,
            "team": e.team, "created": when(&e.created_at), "updated": when(&e.updated_at),
            "createdBy": e.created_by, "updatedBy": e.updated_by,
        },
        "blueprint_title": bp.title.clone().unwrap_or(bp.identifier.clone()),
        "properties": properties,
        "outgoing": outgoing,
        "incoming": incoming,
        "runs": runs,
        "actions": day_two(&portal, &viewer, &blueprint).await?,
    });
    Ok(render_page("entity.html", &viewer, "catalog", context).into_response())
}
