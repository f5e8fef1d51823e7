//! The software catalog: blueprints (entity types with a property schema and relations) and
//! entities, validated on every write, searchable, and audited. Shapes follow Port's API.
//!
//! [`Catalog`] holds the rules (validation, ownership, dependents); the store holds the data.

mod blueprint;
mod entity;
mod error;
pub mod search;
pub mod timer;

pub use blueprint::BlueprintInput;
pub use entity::{EntityInput, TeamField};
pub use error::{CatalogError, Result, Violation};

use chrono::Utc;
use portico_store::{AuditRecord, AuditStatus, Blueprint, Entity, EntityRef, Query, Store, Write};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Who is acting, as the catalog needs to know it.
#[derive(Clone, Debug)]
pub struct Actor {
    /// User identifier (or `run:<id>` for a plugin's writes).
    pub identifier: String,
    /// Admins may change blueprints and any entity.
    pub admin: bool,
    /// Members may change entities owned by one of these teams.
    pub teams: Vec<String>,
    /// Where the request came from: `api`, `run`, ...
    pub origin: String,
    /// The run making the change, if any.
    pub run_id: Option<String>,
}

type CachedValidator = (chrono::DateTime<Utc>, Arc<jsonschema::Validator>);

/// The most entities one page returns.
pub const MAX_PAGE: usize = 1000;

/// The Prometheus histogram of store latency by operation (`op`): the catalog times its
/// searches, the runs their hot-path calls (`portico_runs::metrics`).
pub const STORE_SECONDS: &str = "portico_store_seconds";

/// The catalog service over a store.
pub struct Catalog {
    store: Arc<dyn Store>,
    /// Compiled entity schemas by blueprint, with the blueprint version they were built from.
    validators: Mutex<HashMap<String, CachedValidator>>,
}

/// What to do with an existing entity on create.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnExisting {
    /// 409.
    Refuse,
    /// Replace it (`upsert=true`).
    Replace,
    /// Merge properties and relations into it (`upsert=true&merge=true`).
    Merge,
}

impl Catalog {
    /// A catalog over `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            validators: Mutex::default(),
        }
    }

    /// The store underneath.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    fn audit(
        &self,
        actor: &Actor,
        operation: &str,
        resource_type: &str,
        resource_id: &str,
    ) -> AuditRecord {
        AuditRecord {
            id: 0,
            at: portico_store::now(),
            actor: actor.identifier.clone(),
            operation: operation.into(),
            resource_type: resource_type.into(),
            resource_id: resource_id.into(),
            blueprint: None,
            run_id: actor.run_id.clone(),
            before: None,
            after: None,
            status: AuditStatus::Success,
            reason: None,
            origin: actor.origin.clone(),
        }
    }

    /// Records a failed or refused attempt, then returns the error.
    async fn failed<T>(&self, mut record: AuditRecord, error: CatalogError) -> Result<T> {
        if !matches!(error, CatalogError::Store(_)) {
            record.status = AuditStatus::Failure;
            record.reason = Some(error.to_string());
            if let Err(e) = self.store.record(record).await {
                tracing::error!("cannot record a failed attempt in the audit log: {e}");
            }
        }
        Err(error)
    }

    fn require_admin(actor: &Actor, what: &str) -> Result<()> {
        if actor.admin {
            Ok(())
        } else {
            Err(CatalogError::Forbidden(format!(
                "{what} needs the admin role"
            )))
        }
    }

    // ----- blueprints -----

    /// Every blueprint.
    pub async fn list_blueprints(&self) -> Result<Vec<Blueprint>> {
        Ok(self.store.list_blueprints().await?)
    }

    /// One blueprint, or 404.
    pub async fn get_blueprint(&self, identifier: &str) -> Result<Blueprint> {
        self.store
            .get_blueprint(identifier)
            .await?
            .ok_or_else(|| CatalogError::NotFound(format!("blueprint `{identifier}` not found")))
    }

    /// Creates a blueprint (409 if it exists).
    pub async fn create_blueprint(
        &self,
        actor: &Actor,
        input: BlueprintInput,
    ) -> Result<Blueprint> {
        let record = self.audit(actor, "CREATE", "blueprint", &input.identifier);
        match self
            .write_blueprint(actor, input, Write::Create, record.clone())
            .await
        {
            Ok(bp) => Ok(bp),
            Err(e) => self.failed(record, e).await,
        }
    }

    /// Creates or replaces the blueprint at `identifier`.
    pub async fn replace_blueprint(
        &self,
        actor: &Actor,
        identifier: &str,
        input: BlueprintInput,
    ) -> Result<Blueprint> {
        let record = self.audit(actor, "UPDATE", "blueprint", identifier);
        if input.identifier != identifier {
            let e = CatalogError::field(
                "identifier",
                format!("must match the path (`{identifier}`)"),
            );
            return self.failed(record, e).await;
        }
        match self
            .write_blueprint(actor, input, Write::Replace, record.clone())
            .await
        {
            Ok(bp) => Ok(bp),
            Err(e) => self.failed(record, e).await,
        }
    }

    async fn write_blueprint(
        &self,
        actor: &Actor,
        input: BlueprintInput,
        write: Write,
        mut record: AuditRecord,
    ) -> Result<Blueprint> {
        Self::require_admin(actor, "changing blueprints")?;
        let existing: Vec<String> = self
            .store
            .list_blueprints()
            .await?
            .into_iter()
            .map(|b| b.identifier)
            .collect();
        blueprint::validate(&input, &|id| existing.iter().any(|e| e == id))?;
        let before = self.store.get_blueprint(&input.identifier).await?;
        if write == Write::Create && before.is_some() {
            return Err(CatalogError::Conflict(format!(
                "blueprint `{}` already exists",
                input.identifier
            )));
        }
        let now = portico_store::now();
        let bp = Blueprint {
            identifier: input.identifier,
            title: input.title,
            icon: input.icon,
            description: input.description,
            schema: input.schema,
            relations: input.relations,
            created_at: before.as_ref().map_or(now, |b| b.created_at),
            created_by: before
                .as_ref()
                .map_or(actor.identifier.clone(), |b| b.created_by.clone()),
            updated_at: now,
            updated_by: actor.identifier.clone(),
        };
        record.operation = if before.is_some() { "UPDATE" } else { "CREATE" }.into();
        record.before = before.map(|b| serde_json::to_value(b).unwrap_or_default());
        record.after = Some(serde_json::to_value(&bp).unwrap_or_default());
        self.store.put_blueprint(bp.clone(), write, record).await?;
        Ok(bp)
    }

    /// Deletes a blueprint: 409 while it has entities unless `delete_entities`, and while another
    /// blueprint's relation targets it.
    pub async fn delete_blueprint(
        &self,
        actor: &Actor,
        identifier: &str,
        delete_entities: bool,
    ) -> Result<()> {
        let mut record = self.audit(actor, "DELETE", "blueprint", identifier);
        let result = async {
            Self::require_admin(actor, "deleting blueprints")?;
            let bp = self.get_blueprint(identifier).await?;
            for other in self.store.list_blueprints().await? {
                if other.identifier == identifier {
                    continue;
                }
                if let Some(relations) = other.relations.as_object() {
                    for (name, def) in relations {
                        if def.get("target").and_then(Value::as_str) == Some(identifier) {
                            return Err(CatalogError::Conflict(format!(
                                "blueprint `{identifier}` is the target of relation `{name}` of blueprint `{}`; \
                                 remove that relation first",
                                other.identifier
                            )));
                        }
                    }
                }
            }
            record.before = Some(serde_json::to_value(&bp).unwrap_or_default());
            self.store.delete_blueprint(identifier, delete_entities, record.clone()).await?;
            Ok(())
        }
        .await;
        match result {
            Ok(()) => Ok(()),
            Err(e) => self.failed(record, e).await,
        }
    }

    // ----- entities -----

    /// One entity, or 404.
    pub async fn get_entity(&self, blueprint: &str, identifier: &str) -> Result<Entity> {
        self.get_blueprint(blueprint).await?;
        self.store
            .get_entity(blueprint, identifier)
            .await?
            .ok_or_else(|| {
                CatalogError::NotFound(format!(
                    "entity `{identifier}` of blueprint `{blueprint}` not found"
                ))
            })
    }

    /// A page of a blueprint's entities and the cursor of the next page.
    pub async fn list_entities(
        &self,
        blueprint: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<(Vec<Entity>, Option<String>)> {
        self.get_blueprint(blueprint).await?;
        let query = Query {
            order: portico_store::Order::default(),
            rule: portico_store::Rule::Group {
                combinator: portico_store::Combinator::And,
                rules: Vec::new(),
            },
            blueprints: Some(vec![blueprint.to_owned()]),
        };
        self.page(&query, limit, cursor).await
    }

    /// Searches with a Port-style body; returns a page and the next cursor.
    pub async fn search(
        &self,
        body: &Value,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<(Vec<Entity>, Option<String>)> {
        self.search_ordered(body, portico_store::Order::default(), limit, cursor)
            .await
    }

    /// [`Catalog::search`] in another order (the cursor must come from the same order).
    pub async fn search_ordered(
        &self,
        body: &Value,
        order: portico_store::Order,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<(Vec<Entity>, Option<String>)> {
        let mut query = search::parse(body)?;
        query.order = order;
        self.page(&query, limit, cursor).await
    }

    /// Searches within `blueprints` only (a plugin's readable blueprints): one page.
    pub async fn search_within(
        &self,
        body: &Value,
        blueprints: &[String],
        limit: usize,
    ) -> Result<Vec<Entity>> {
        let mut query = search::parse(body)?;
        query.blueprints = Some(blueprints.to_vec());
        Ok(self.page(&query, limit, None).await?.0)
    }

    async fn page(
        &self,
        query: &Query,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<(Vec<Entity>, Option<String>)> {
        if limit == 0 || limit > MAX_PAGE {
            return Err(CatalogError::field(
                "limit",
                format!("must be between 1 and {MAX_PAGE}"),
            ));
        }
        let after = cursor.map(search::decode_cursor).transpose()?;
        let started = std::time::Instant::now();
        let found = self.store.search(query, limit + 1, after).await;
        metrics::histogram!(STORE_SECONDS, "op" => "search").record(started.elapsed());
        let mut found = found?;
        let next = if found.len() > limit {
            found.truncate(limit);
            found.last().map(|e| {
                search::encode_cursor(&EntityRef {
                    blueprint: e.blueprint.clone(),
                    identifier: e.identifier.clone(),
                })
            })
        } else {
            None
        };
        Ok((found, next))
    }

    /// Creates an entity; what happens when it exists is `on_existing`'s choice. Returns the
    /// entity and whether it was created.
    pub async fn create_entity(
        &self,
        actor: &Actor,
        blueprint: &str,
        input: EntityInput,
        on_existing: OnExisting,
    ) -> Result<(Entity, bool)> {
        let id = input.identifier.clone().unwrap_or_default();
        let mut record = self.audit(actor, "CREATE", "entity", &format!("{blueprint}/{id}"));
        record.blueprint = Some(blueprint.to_owned());
        let result = async {
            if input.identifier.is_none() {
                return Err(CatalogError::field("identifier", "required"));
            }
            let existing = self.store.get_entity(blueprint, &id).await?;
            match (&existing, on_existing) {
                (Some(_), OnExisting::Refuse) => Err(CatalogError::Conflict(format!(
                    "entity `{id}` of blueprint `{blueprint}` already exists; use ?upsert=true to replace it"
                ))),
                (Some(_), OnExisting::Merge) => self.write_entity(actor, blueprint, &id, input, existing, true, record.clone()).await,
                _ => self.write_entity(actor, blueprint, &id, input, existing, false, record.clone()).await,
            }
        }
        .await;
        match result {
            Ok(done) => Ok(done),
            Err(e) => self.failed(record, e).await,
        }
    }

    /// PUT: creates or replaces the entity at `identifier`.
    pub async fn replace_entity(
        &self,
        actor: &Actor,
        blueprint: &str,
        identifier: &str,
        input: EntityInput,
    ) -> Result<Entity> {
        self.change_entity(actor, blueprint, identifier, input, false)
            .await
    }

    /// PATCH: merges into the existing entity (404 when missing).
    pub async fn patch_entity(
        &self,
        actor: &Actor,
        blueprint: &str,
        identifier: &str,
        input: EntityInput,
    ) -> Result<Entity> {
        self.change_entity(actor, blueprint, identifier, input, true)
            .await
    }

    async fn change_entity(
        &self,
        actor: &Actor,
        blueprint: &str,
        identifier: &str,
        input: EntityInput,
        merge: bool,
    ) -> Result<Entity> {
        let mut record = self.audit(
            actor,
            "UPDATE",
            "entity",
            &format!("{blueprint}/{identifier}"),
        );
        record.blueprint = Some(blueprint.to_owned());
        let result = async {
            if input
                .identifier
                .as_deref()
                .is_some_and(|id| id != identifier)
            {
                return Err(CatalogError::field(
                    "identifier",
                    format!("must match the path (`{identifier}`)"),
                ));
            }
            let existing = self.store.get_entity(blueprint, identifier).await?;
            if merge && existing.is_none() {
                return Err(CatalogError::NotFound(format!(
                    "entity `{identifier}` of blueprint `{blueprint}` not found"
                )));
            }
            self.write_entity(
                actor,
                blueprint,
                identifier,
                input,
                existing,
                merge,
                record.clone(),
            )
            .await
        }
        .await;
        match result {
            Ok((entity, _)) => Ok(entity),
            Err(e) => self.failed(record, e).await,
        }
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "one private step shared by create, replace and patch"
    )]
    async fn write_entity(
        &self,
        actor: &Actor,
        blueprint: &str,
        identifier: &str,
        input: EntityInput,
        existing: Option<Entity>,
        merge: bool,
        mut record: AuditRecord,
    ) -> Result<(Entity, bool)> {
        let bp = self.get_blueprint(blueprint).await?;
        let now = portico_store::now();
        let mut entity =
            entity::build(&bp, identifier, input, existing.as_ref(), merge, actor, now)?;
        entity::check_owner(actor, existing.as_ref(), &entity)?;
        let validator = self.validator(&bp)?;
        let relations = entity::validate(&bp, &mut entity, &validator, self.store.as_ref()).await?;
        let created = existing.is_none();
        record.operation = if created { "CREATE" } else { "UPDATE" }.into();
        record.before = existing.map(|e| serde_json::to_value(e).unwrap_or_default());
        record.after = Some(serde_json::to_value(&entity).unwrap_or_default());
        let write = if created {
            Write::Create
        } else {
            Write::Replace
        };
        // The store writes the change's event (for automations) with it, from the record.
        self.store
            .put_entity(entity.clone(), relations, write, record)
            .await?;
        Ok((entity, created))
    }

    /// Deletes an entity: 409 while others relate to it, unless `delete_dependents`, which deletes
    /// them too (transitively). Returns everything deleted.
    pub async fn delete_entity(
        &self,
        actor: &Actor,
        blueprint: &str,
        identifier: &str,
        delete_dependents: bool,
    ) -> Result<Vec<EntityRef>> {
        let mut record = self.audit(
            actor,
            "DELETE",
            "entity",
            &format!("{blueprint}/{identifier}"),
        );
        record.blueprint = Some(blueprint.to_owned());
        let result = async {
            let target = self.get_entity(blueprint, identifier).await?;
            entity::check_owner(actor, Some(&target), &target)?;
            let root = EntityRef {
                blueprint: blueprint.to_owned(),
                identifier: identifier.to_owned(),
            };
            let mut doomed = vec![root.clone()];
            let mut next = 0;
            while next < doomed.len() {
                let dependents = self.store.dependents(&doomed[next]).await?;
                next += 1;
                if !dependents.is_empty() && !delete_dependents {
                    let names: Vec<String> = dependents
                        .iter()
                        .map(|d| format!("{}/{}", d.blueprint, d.identifier))
                        .collect();
                    return Err(CatalogError::Conflict(format!(
                        "entity `{identifier}` of blueprint `{blueprint}` has dependents ({}); \
                         pass ?delete_dependents=true to delete them too",
                        names.join(", ")
                    )));
                }
                for d in dependents {
                    if !doomed.contains(&d) {
                        doomed.push(d);
                    }
                }
            }
            let mut records = Vec::new();
            for d in &doomed {
                let Some(before) = self.store.get_entity(&d.blueprint, &d.identifier).await? else {
                    continue;
                };
                // Every entity in the cascade is checked before anything is deleted.
                if entity::check_owner(actor, Some(&before), &before).is_err() {
                    return Err(CatalogError::Forbidden(format!(
                        "you may not delete `{}/{}`, which depends on `{blueprint}/{identifier}`: \
                         it is owned by [{}] and members may delete only entities owned by one of \
                         their teams ({}); nothing was deleted. Delete or re-own it first, or ask \
                         an admin",
                        d.blueprint,
                        d.identifier,
                        before.team.join(", "),
                        actor.teams.join(", ")
                    )));
                }
                let mut r = record.clone();
                r.resource_id = format!("{}/{}", d.blueprint, d.identifier);
                r.blueprint = Some(d.blueprint.clone());
                r.before = Some(serde_json::to_value(before).unwrap_or_default());
                records.push(r);
            }
            self.store.delete_entities(doomed.clone(), records).await?;
            Ok(doomed)
        }
        .await;
        match result {
            Ok(done) => Ok(done),
            Err(e) => self.failed(record, e).await,
        }
    }

    /// The compiled schema of a blueprint's entities, cached until the blueprint changes.
    fn validator(&self, bp: &Blueprint) -> Result<Arc<jsonschema::Validator>> {
        let mut cache = self.validators.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, v)) = cache.get(&bp.identifier)
            && *at == bp.updated_at
        {
            return Ok(v.clone());
        }
        let schema = blueprint::entity_schema(&bp.schema);
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .map_err(|e| {
                CatalogError::field(
                    "schema",
                    format!("blueprint `{}` has an unusable schema: {e}", bp.identifier),
                )
            })?;
        let validator = Arc::new(validator);
        cache.insert(bp.identifier.clone(), (bp.updated_at, validator.clone()));
        Ok(validator)
    }
}
