//! The catalog capability: reads and writes limited to the blueprints the action grants, every
//! write attributed to the run. The catalog itself sits behind [`CatalogStore`], which the
//! catalog service implements; [`MemoryCatalog`] serves tests and the local demo.

use crate::bindings::{catalog, types};
use crate::request::Entity;
use crate::run::RunState;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Why the catalog refused a call. All but `Unavailable` are the plugin's to handle.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// No such entity.
    #[error("not found")]
    NotFound,
    /// Not allowed; the text says by what.
    #[error("denied: {0}")]
    Denied(String),
    /// Malformed entity or query; the text names the field.
    #[error("invalid: {0}")]
    Invalid(String),
    /// Conflicts with the catalog's state.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The store failed (database down): the host's fault, so the run fails as `internal`.
    #[error("catalog unavailable: {0}")]
    Unavailable(String),
}

/// Who makes a change: every write a run makes is attributed to it (and audited by the store).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attribution {
    /// The run's id.
    pub run_id: String,
    /// The action that ran.
    pub action: String,
    /// The user who triggered it.
    pub user: String,
}

/// The catalog as the runtime needs it.
#[async_trait::async_trait]
pub trait CatalogStore: Send + Sync {
    /// One entity, or `None`.
    async fn get(&self, blueprint: &str, identifier: &str) -> Result<Option<Entity>, CatalogError>;
    /// Creates or replaces an entity; returns it as stored.
    async fn upsert(&self, entity: Entity, by: &Attribution) -> Result<Entity, CatalogError>;
    /// Deletes an entity; `false` when it did not exist.
    async fn delete(
        &self,
        blueprint: &str,
        identifier: &str,
        by: &Attribution,
    ) -> Result<bool, CatalogError>;
    /// Entities matching a Port-style query, limited to `blueprints`.
    async fn search(
        &self,
        query: &Value,
        blueprints: &[String],
    ) -> Result<Vec<Entity>, CatalogError>;
}

/// What a run did to an entity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntityChange {
    /// Created or replaced.
    Upserted,
    /// Deleted.
    Deleted,
}

/// An entity a run changed, for the run's `affectedEntities`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AffectedEntity {
    /// The entity's blueprint.
    pub blueprint: String,
    /// The entity's identifier.
    pub identifier: String,
    /// What the run did.
    pub change: EntityChange,
}

/// The most entities a plugin's search returns.
const SEARCH_LIMIT: usize = 1000;

/// An in-memory catalog: no schema validation, search supports the common operators.
#[derive(Debug, Default)]
pub struct MemoryCatalog(Mutex<BTreeMap<(String, String), Entity>>);

impl MemoryCatalog {
    /// An empty catalog.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every entity, ordered by blueprint then identifier.
    pub fn entities(&self) -> Vec<Entity> {
        self.lock().values().cloned().collect()
    }

    /// Adds or replaces an entity directly (seeding tests).
    pub fn insert(&self, entity: Entity) {
        let key = (entity.blueprint.clone(), entity.identifier.clone());
        self.lock().insert(key, entity);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), Entity>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait::async_trait]
impl CatalogStore for MemoryCatalog {
    async fn get(&self, blueprint: &str, identifier: &str) -> Result<Option<Entity>, CatalogError> {
        Ok(self
            .lock()
            .get(&(blueprint.to_owned(), identifier.to_owned()))
            .cloned())
    }

    async fn upsert(&self, entity: Entity, _by: &Attribution) -> Result<Entity, CatalogError> {
        self.insert(entity.clone());
        Ok(entity)
    }

    async fn delete(
        &self,
        blueprint: &str,
        identifier: &str,
        _by: &Attribution,
    ) -> Result<bool, CatalogError> {
        let key = (blueprint.to_owned(), identifier.to_owned());
        Ok(self.lock().remove(&key).is_some())
    }

    async fn search(
        &self,
        query: &Value,
        blueprints: &[String],
    ) -> Result<Vec<Entity>, CatalogError> {
        let entities = self.lock();
        let mut found = Vec::new();
        for entity in entities.values() {
            if blueprints.contains(&entity.blueprint) && matches(entity, query)? {
                found.push(entity.clone());
                if found.len() == SEARCH_LIMIT {
                    break;
                }
            }
        }
        Ok(found)
    }
}

/// Evaluates `{combinator, rules}` (nested) with `=`, `!=`, `in`, `contains`, `beginsWith` on
/// properties and on `$identifier`, `$title`, `$team`, `$blueprint`.
fn matches(entity: &Entity, query: &Value) -> Result<bool, CatalogError> {
    let invalid = |what: &str| CatalogError::Invalid(format!("query: {what}"));
    let rules = query
        .get("rules")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("`rules` must be a list"))?;
    let any = match query.get("combinator").and_then(Value::as_str) {
        None | Some("and") => false,
        Some("or") => true,
        Some(other) => return Err(invalid(&format!("unknown combinator `{other}`"))),
    };
    for rule in rules {
        let hit = if rule.get("rules").is_some() {
            matches(entity, rule)?
        } else {
            let property = rule
                .get("property")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("each rule needs a `property`"))?;
            let operator = rule.get("operator").and_then(Value::as_str).unwrap_or("=");
            let expected = rule.get("value").unwrap_or(&Value::Null);
            let actual = match property {
                "$identifier" => Value::from(entity.identifier.clone()),
                "$blueprint" => Value::from(entity.blueprint.clone()),
                "$title" => entity.title.clone().map(Value::from).unwrap_or_default(),
                "$team" => Value::from(entity.team.clone()),
                name => entity.properties.get(name).cloned().unwrap_or_default(),
            };
            match operator {
                "=" => actual == *expected,
                "!=" => actual != *expected,
                "in" => expected.as_array().is_some_and(|v| v.contains(&actual)),
                "contains" => match (&actual, expected) {
                    (Value::String(a), Value::String(e)) => a.contains(e.as_str()),
                    (Value::Array(a), e) => a.contains(e),
                    _ => false,
                },
                "beginsWith" => match (&actual, expected) {
                    (Value::String(a), Value::String(e)) => a.starts_with(e.as_str()),
                    _ => false,
                },
                other => return Err(invalid(&format!("unsupported operator `{other}`"))),
            }
        };
        if hit == any {
            return Ok(any);
        }
    }
    Ok(!any)
}

/// The run's view of the catalog: the store, the grant, and what the run changed.
pub(crate) struct CatalogAccess {
    pub(crate) store: std::sync::Arc<dyn CatalogStore>,
    pub(crate) by: Attribution,
    pub(crate) affected: Vec<AffectedEntity>,
}

impl RunState {
    fn check(&self, blueprint: &str, write: bool) -> Result<(), catalog::Error> {
        let (granted, verb, list) = if write {
            (&self.grants.write, "write", "write")
        } else {
            (&self.grants.read, "read", "read (or write)")
        };
        if granted.contains(blueprint) {
            return Ok(());
        }
        let have: Vec<&str> = granted.iter().map(String::as_str).collect();
        let reason = format!(
            "catalog {verb} of blueprint `{blueprint}` denied: it is not in the action's \
             capabilities.catalog.{list} grant (granted: {})",
            if have.is_empty() {
                "none".to_owned()
            } else {
                have.join(", ")
            }
        );
        self.denials.record(reason.clone());
        self.log.emit(crate::LogLevel::Warn, &reason);
        Err(catalog::Error::Denied(reason))
    }

    fn record(&mut self, blueprint: &str, identifier: &str, change: EntityChange) {
        let affected = &mut self.catalog.affected;
        affected.retain(|a| !(a.blueprint == blueprint && a.identifier == identifier));
        affected.push(AffectedEntity {
            blueprint: blueprint.to_owned(),
            identifier: identifier.to_owned(),
            change,
        });
    }
}

/// Maps store errors to the WIT error; a store failure traps the run as the host's fault.
fn to_wit(err: CatalogError) -> wasmtime::Result<catalog::Error> {
    Ok(match err {
        CatalogError::NotFound => catalog::Error::NotFound,
        CatalogError::Denied(m) => catalog::Error::Denied(m),
        CatalogError::Invalid(m) => catalog::Error::Invalid(m),
        CatalogError::Conflict(m) => catalog::Error::Conflict(m),
        CatalogError::Unavailable(m) => {
            return Err(wasmtime::Error::new(crate::run::HostFailure(format!(
                "catalog unavailable: {m}"
            ))));
        }
    })
}

pub(crate) fn entity_to_wit(entity: Entity) -> types::Entity {
    types::Entity {
        identifier: entity.identifier,
        blueprint: entity.blueprint,
        title: entity.title,
        team: entity.team,
        properties: entity.properties.to_string(),
        relations: entity.relations.to_string(),
    }
}

fn entity_from_wit(entity: types::Entity) -> Result<Entity, catalog::Error> {
    let object = |text: &str, field: &str| -> Result<Value, catalog::Error> {
        let text = if text.trim().is_empty() { "{}" } else { text };
        match serde_json::from_str::<Value>(text) {
            Ok(v @ Value::Object(_)) => Ok(v),
            Ok(_) => Err(catalog::Error::Invalid(format!(
                "{field}: must be a JSON object"
            ))),
            Err(e) => Err(catalog::Error::Invalid(format!(
                "{field}: not valid JSON: {e}"
            ))),
        }
    };
    if entity.identifier.is_empty() {
        return Err(catalog::Error::Invalid(
            "identifier: must not be empty".into(),
        ));
    }
    Ok(Entity {
        properties: object(&entity.properties, "properties")?,
        relations: object(&entity.relations, "relations")?,
        identifier: entity.identifier,
        blueprint: entity.blueprint,
        title: entity.title,
        team: entity.team,
    })
}

impl types::Host for RunState {}

impl catalog::Host for RunState {
    async fn get(
        &mut self,
        blueprint: String,
        identifier: String,
    ) -> wasmtime::Result<Result<Option<types::Entity>, catalog::Error>> {
        if let Err(e) = self.check(&blueprint, false) {
            return Ok(Err(e));
        }
        match self.catalog.store.get(&blueprint, &identifier).await {
            Ok(found) => Ok(Ok(found.map(entity_to_wit))),
            Err(e) => Ok(Err(to_wit(e)?)),
        }
    }

    async fn upsert(
        &mut self,
        entity: types::Entity,
    ) -> wasmtime::Result<Result<types::Entity, catalog::Error>> {
        if let Err(e) = self.check(&entity.blueprint, true) {
            return Ok(Err(e));
        }
        let entity = match entity_from_wit(entity) {
            Ok(entity) => entity,
            Err(e) => return Ok(Err(e)),
        };
        match self.catalog.store.upsert(entity, &self.catalog.by).await {
            Ok(stored) => {
                self.record(
                    &stored.blueprint,
                    &stored.identifier,
                    EntityChange::Upserted,
                );
                Ok(Ok(entity_to_wit(stored)))
            }
            Err(e) => Ok(Err(to_wit(e)?)),
        }
    }

    async fn delete(
        &mut self,
        blueprint: String,
        identifier: String,
    ) -> wasmtime::Result<Result<bool, catalog::Error>> {
        if let Err(e) = self.check(&blueprint, true) {
            return Ok(Err(e));
        }
        match self
            .catalog
            .store
            .delete(&blueprint, &identifier, &self.catalog.by)
            .await
        {
            Ok(existed) => {
                if existed {
                    self.record(&blueprint, &identifier, EntityChange::Deleted);
                }
                Ok(Ok(existed))
            }
            Err(e) => Ok(Err(to_wit(e)?)),
        }
    }

    async fn search(
        &mut self,
        query: String,
    ) -> wasmtime::Result<Result<Vec<types::Entity>, catalog::Error>> {
        let readable: Vec<String> = self.grants.read.iter().cloned().collect();
        if readable.is_empty() {
            let reason = "catalog search denied: the action grants no blueprints \
                          (capabilities.catalog.read is empty)"
                .to_owned();
            self.denials.record(reason.clone());
            return Ok(Err(catalog::Error::Denied(reason)));
        }
        let query: Value = match serde_json::from_str(&query) {
            Ok(q) => q,
            Err(e) => {
                return Ok(Err(catalog::Error::Invalid(format!(
                    "query: not valid JSON: {e}"
                ))));
            }
        };
        match self.catalog.store.search(&query, &readable).await {
            Ok(found) => Ok(Ok(found.into_iter().map(entity_to_wit).collect())),
            Err(e) => Ok(Err(to_wit(e)?)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(id: &str, lang: &str) -> Entity {
        Entity {
            identifier: id.into(),
            blueprint: "service".into(),
            title: None,
            team: vec!["platform".into()],
            properties: json!({ "language": lang }),
            relations: json!({}),
        }
    }

    #[tokio::test]
    async fn memory_search_applies_rules_and_the_blueprint_limit() {
        let catalog = MemoryCatalog::new();
        catalog.insert(svc("a", "rust"));
        catalog.insert(svc("b", "go"));
        let bps = vec!["service".to_owned()];
        let q = json!({"combinator": "or", "rules": [
            {"property": "language", "operator": "=", "value": "go"},
            {"property": "$identifier", "operator": "beginsWith", "value": "a"}]});
        assert_eq!(catalog.search(&q, &bps).await.unwrap().len(), 2);
        let q = json!({"combinator": "and", "rules": [
            {"property": "language", "operator": "in", "value": ["rust"]}]});
        assert_eq!(catalog.search(&q, &bps).await.unwrap()[0].identifier, "a");
        assert!(
            catalog
                .search(&q, &["team".to_owned()])
                .await
                .unwrap()
                .is_empty()
        );
        let bad = json!({"rules": [{"property": "x", "operator": "~"}]});
        assert!(matches!(
            catalog.search(&bad, &bps).await,
            Err(CatalogError::Invalid(_))
        ));
    }
}
