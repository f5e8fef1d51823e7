//! Entities as the API receives them: building the stored entity (create, replace or merge),
//! ownership, and validation against the blueprint's schema and relations.

use crate::Actor;
use crate::blueprint;
use crate::error::{CatalogError, Result, Violation};
use chrono::{DateTime, Utc};
use portico_store::{Blueprint, Entity, EntityRef, Relation, Store};
use serde::Deserialize;
use serde_json::{Map, Value};

/// `team` as Port accepts it: one team or a list.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum TeamField {
    /// One team.
    One(String),
    /// Several teams.
    Many(Vec<String>),
}

/// An entity as written through the API.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EntityInput {
    /// Required on create; must match the path otherwise.
    #[serde(default)]
    pub identifier: Option<String>,
    /// Display name.
    #[serde(default)]
    pub title: Option<String>,
    /// Icon name.
    #[serde(default)]
    pub icon: Option<String>,
    /// Owning team(s).
    #[serde(default)]
    pub team: Option<TeamField>,
    /// Property values; `null` removes a property.
    #[serde(default)]
    pub properties: Option<Map<String, Value>>,
    /// Relation values; `null` removes a relation.
    #[serde(default)]
    pub relations: Option<Map<String, Value>>,
}

/// Entity identifiers: 1-200 characters, no whitespace or control characters.
fn valid_entity_identifier(id: &str) -> bool {
    (1..=200).contains(&id.chars().count())
        && !id.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// The entity to store: the input alone (create, replace) or merged into `existing`.
pub(crate) fn build(
    bp: &Blueprint,
    identifier: &str,
    input: EntityInput,
    existing: Option<&Entity>,
    merge: bool,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Entity> {
    if !valid_entity_identifier(identifier) {
        return Err(CatalogError::field(
            "identifier",
            "must be 1-200 characters without spaces or control characters",
        ));
    }
    let base = if merge { existing } else { None };
    let mut properties = base
        .and_then(|e| e.properties.as_object().cloned())
        .unwrap_or_default();
    properties.extend(input.properties.unwrap_or_default());
    properties.retain(|_, v| !v.is_null());
    if existing.is_none() {
        for (name, default) in blueprint::defaults(&bp.schema) {
            properties.entry(name).or_insert(default);
        }
    }
    let mut relations = base
        .and_then(|e| e.relations.as_object().cloned())
        .unwrap_or_default();
    relations.extend(input.relations.unwrap_or_default());
    relations.retain(|_, v| !v.is_null());
    let team = match input.team {
        Some(TeamField::One(t)) => vec![t],
        Some(TeamField::Many(t)) => t,
        None => base.map(|e| e.team.clone()).unwrap_or_default(),
    };
    Ok(Entity {
        identifier: identifier.to_owned(),
        blueprint: bp.identifier.clone(),
        title: input.title.or_else(|| base.and_then(|e| e.title.clone())),
        icon: input.icon.or_else(|| base.and_then(|e| e.icon.clone())),
        team,
        properties: Value::Object(properties),
        relations: Value::Object(relations),
        created_at: existing.map_or(now, |e| e.created_at),
        created_by: existing.map_or(actor.identifier.clone(), |e| e.created_by.clone()),
        updated_at: now,
        updated_by: actor.identifier.clone(),
    })
}

/// Members may change only entities owned by one of their teams, before and after the change.
pub(crate) fn check_owner(actor: &Actor, before: Option<&Entity>, after: &Entity) -> Result<()> {
    if actor.admin {
        return Ok(());
    }
    let owned = |e: &Entity| e.team.iter().any(|t| actor.teams.contains(t));
    if before.is_some_and(|b| !owned(b)) || !owned(after) {
        let owners = before.unwrap_or(after).team.join(", ");
        return Err(CatalogError::Forbidden(format!(
            "members may change only entities owned by one of their teams ({}); this entity's team is [{owners}]. \
             Set `team` to one of yours, or ask an admin",
            actor.teams.join(", ")
        )));
    }
    Ok(())
}

/// Checks properties against the blueprint's schema and relations against its relation
/// definitions and the catalog; returns the relation edges to store.
pub(crate) async fn validate(
    bp: &Blueprint,
    entity: &mut Entity,
    validator: &jsonschema::Validator,
    store: &dyn Store,
) -> Result<Vec<Relation>> {
    crate::timer::normalize(bp, &mut entity.properties);
    let mut problems: Vec<Violation> = validator
        .iter_errors(&entity.properties)
        .map(|e| {
            let pointer = e.instance_path().as_str().to_owned();
            let path = if pointer.is_empty() {
                "properties".to_owned()
            } else {
                format!("properties{}", pointer.replace('/', "."))
            };
            Violation::new(path, e.to_string())
        })
        .collect();

    let defs = bp.relations.as_object().cloned().unwrap_or_default();
    let relations = entity.relations.as_object().cloned().unwrap_or_default();
    let mut edges = Vec::new();
    for (name, value) in &relations {
        let path = format!("relations.{name}");
        let Some(def) = defs.get(name) else {
            problems.push(Violation::new(
                &path,
                format!("blueprint `{}` has no relation `{name}`", bp.identifier),
            ));
            continue;
        };
        let target = def
            .get("target")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let many = def.get("many").and_then(Value::as_bool).unwrap_or(false);
        let ids: Vec<String> = match (value, many) {
            (Value::String(id), false) => vec![id.clone()],
            (Value::Array(ids), true) if ids.iter().all(Value::is_string) => ids
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            (_, false) => {
                problems.push(Violation::new(
                    &path,
                    "must be one identifier (the relation is not `many`)",
                ));
                continue;
            }
            (_, true) => {
                problems.push(Violation::new(
                    &path,
                    "must be a list of identifiers (the relation is `many`)",
                ));
                continue;
            }
        };
        for id in ids {
            match store.get_entity(&target, &id).await? {
                Some(_) => edges.push(Relation {
                    name: name.clone(),
                    target: EntityRef {
                        blueprint: target.clone(),
                        identifier: id,
                    },
                }),
                None => problems.push(Violation::new(
                    &path,
                    format!("entity `{id}` of blueprint `{target}` does not exist"),
                )),
            }
        }
    }
    for (name, def) in &defs {
        if def.get("required").and_then(Value::as_bool) == Some(true)
            && !relations.contains_key(name)
        {
            problems.push(Violation::new(format!("relations.{name}"), "required"));
        }
    }
    if problems.is_empty() {
        Ok(edges)
    } else {
        Err(CatalogError::invalid(problems))
    }
}
