//! [`MemoryCatalog`]: a [`CatalogStore`] in memory, for tests and for `portico demo` (which runs
//! plugins through the runtime alone). Product code, kept apart from the capability's host side.

use super::{Attribution, CatalogError, CatalogStore};
use crate::request::Entity;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Mutex;

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
