//! The software catalog, limited to the blueprints the action grants
//! (`capabilities.catalog.read` / `write`).
//!
//! ```no_run
//! use portico_sdk::{catalog, Entity, json};
//!
//! let mut svc = Entity::new("service", "payments");
//! svc.set_property("language", "rust");
//! let stored = catalog::upsert(&svc)?;
//! let rust = catalog::search(&json!({
//!     "combinator": "and",
//!     "rules": [{ "property": "language", "operator": "=", "value": "rust" }]
//! }))?;
//! # Ok::<(), catalog::CatalogError>(())
//! ```

use crate::Entity;
use crate::bindings::portico::action::catalog as wit;
use crate::types::Failure;
use serde_json::Value;

/// Why the catalog refused a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CatalogError {
    /// No such entity.
    NotFound,
    /// The action does not grant this blueprint.
    Denied(String),
    /// The entity or query is malformed or fails the blueprint's schema.
    Invalid(String),
    /// Conflicts with the catalog's state.
    Conflict(String),
}

impl std::fmt::Display for CatalogError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotFound => f.write_str("entity not found"),
            Self::Denied(m) => write!(f, "catalog access denied: {m}"),
            Self::Invalid(m) => write!(f, "invalid catalog request: {m}"),
            Self::Conflict(m) => write!(f, "catalog conflict: {m}"),
        }
    }
}

impl std::error::Error for CatalogError {}

impl From<wit::Error> for CatalogError {
    fn from(e: wit::Error) -> Self {
        match e {
            wit::Error::NotFound => Self::NotFound,
            wit::Error::Denied(m) => Self::Denied(m),
            wit::Error::Invalid(m) => Self::Invalid(m),
            wit::Error::Conflict(m) => Self::Conflict(m),
        }
    }
}

/// A denial stays a denial; anything else fails the run with the error's text.
impl From<CatalogError> for Failure {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::Denied(m) => Failure::Denied(m),
            other => Failure::Failed(other.to_string()),
        }
    }
}

/// One entity, or `None` when it does not exist.
pub fn get(blueprint: &str, identifier: &str) -> Result<Option<Entity>, CatalogError> {
    Ok(wit::get(blueprint, identifier)?.map(Entity::from_wit))
}

/// Creates or replaces an entity; returns it as stored.
pub fn upsert(entity: &Entity) -> Result<Entity, CatalogError> {
    Ok(Entity::from_wit(wit::upsert(&entity.to_wit())?))
}

/// Deletes an entity; `false` when it did not exist.
pub fn delete(blueprint: &str, identifier: &str) -> Result<bool, CatalogError> {
    Ok(wit::delete(blueprint, identifier)?)
}

/// Searches with a Port-style query (`{combinator, rules}`), within the readable blueprints.
pub fn search(query: &Value) -> Result<Vec<Entity>, CatalogError> {
    let found = wit::search(&query.to_string())?;
    Ok(found.into_iter().map(Entity::from_wit).collect())
}
