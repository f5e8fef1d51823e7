//! The catalog as a plugin sees it: the runtime's [`CatalogStore`] over the catalog service, so
//! a plugin's writes are validated like any other and audited as made by its run. The action's
//! grant (checked by the runtime) decides which blueprints; ownership rules for members do not
//! apply to a run, which acts for the action.

use portico_catalog::{Actor, Catalog, CatalogError as Refused, EntityInput, TeamField};
use portico_runtime::{Attribution, CatalogError, CatalogStore, Entity};
use serde_json::Value;
use std::sync::Arc;

/// The most entities a plugin's search returns.
const SEARCH_LIMIT: usize = 1000;

/// The catalog service, seen by one run.
pub struct RunCatalog {
    catalog: Arc<Catalog>,
}

impl RunCatalog {
    /// A view of `catalog` for runs.
    pub fn new(catalog: Arc<Catalog>) -> Self {
        Self { catalog }
    }
}

fn actor(by: &Attribution) -> Actor {
    Actor {
        identifier: by.user.clone(),
        admin: true,
        teams: Vec::new(),
        origin: "run".into(),
        run_id: Some(by.run_id.clone()),
    }
}

/// A catalog entity as a plugin sees it.
pub fn to_runtime(e: portico_store::Entity) -> Entity {
    Entity {
        identifier: e.identifier,
        blueprint: e.blueprint,
        title: e.title,
        team: e.team,
        properties: e.properties,
        relations: e.relations,
    }
}

fn refused(e: Refused) -> CatalogError {
    match e {
        Refused::NotFound(m) => CatalogError::Invalid(m),
        Refused::Conflict(m) => CatalogError::Conflict(m),
        Refused::Forbidden(m) => CatalogError::Denied(m),
        Refused::Invalid { message, details } => {
            let all: Vec<String> = details
                .iter()
                .map(|d| format!("{}: {}", d.path, d.message))
                .collect();
            CatalogError::Invalid(if all.is_empty() {
                message
            } else {
                all.join("; ")
            })
        }
        Refused::Store(e) => CatalogError::Unavailable(e.to_string()),
    }
}

#[async_trait::async_trait]
impl CatalogStore for RunCatalog {
    async fn get(&self, blueprint: &str, identifier: &str) -> Result<Option<Entity>, CatalogError> {
        match self.catalog.get_entity(blueprint, identifier).await {
            Ok(e) => Ok(Some(to_runtime(e))),
            Err(Refused::NotFound(_)) => Ok(None),
            Err(e) => Err(refused(e)),
        }
    }

    async fn upsert(&self, entity: Entity, by: &Attribution) -> Result<Entity, CatalogError> {
        let input = EntityInput {
            identifier: Some(entity.identifier.clone()),
            title: entity.title,
            icon: None,
            team: Some(TeamField::Many(entity.team)),
            properties: entity.properties.as_object().cloned(),
            relations: entity.relations.as_object().cloned(),
        };
        self.catalog
            .replace_entity(&actor(by), &entity.blueprint, &entity.identifier, input)
            .await
            .map(to_runtime)
            .map_err(refused)
    }

    async fn delete(
        &self,
        blueprint: &str,
        identifier: &str,
        by: &Attribution,
    ) -> Result<bool, CatalogError> {
        match self
            .catalog
            .delete_entity(&actor(by), blueprint, identifier, false)
            .await
        {
            Ok(_) => Ok(true),
            Err(Refused::NotFound(_)) => Ok(false),
            Err(e) => Err(refused(e)),
        }
    }

    async fn search(
        &self,
        query: &Value,
        blueprints: &[String],
    ) -> Result<Vec<Entity>, CatalogError> {
        let found = self
            .catalog
            .search_within(query, blueprints, SEARCH_LIMIT)
            .await
            .map_err(refused)?;
        Ok(found.into_iter().map(to_runtime).collect())
    }
}
