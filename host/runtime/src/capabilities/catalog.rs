//! The catalog capability: reads and writes limited to the blueprints the action grants, every
//! write attributed to the run. The catalog itself sits behind [`CatalogStore`], which the
//! catalog service implements; [`MemoryCatalog`] serves tests and the local demo.

mod memory;

use crate::bindings::{self, catalog, types};
use crate::capabilities::sink::{Denials, LogSink};
use crate::events::{CallOutcome, CallTarget, CapabilityCall, LogLevel};
use crate::failure::HostFailure;
use crate::limits::GrantError;
use crate::request::{Entity, entity_to_wit};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::Arc;
use wasmtime::component::{HasData, Linker};

pub use memory::MemoryCatalog;

/// `capabilities.catalog`: access by blueprint identifier. Writing a blueprint implies reading it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogGrant {
    /// Blueprints the plugin may read and search.
    #[serde(default)]
    pub read: Vec<String>,
    /// Blueprints the plugin may create, change and delete entities of.
    #[serde(default)]
    pub write: Vec<String>,
}

/// The checked [`CatalogGrant`]: `read` includes every blueprint of `write`.
#[derive(Debug, Default)]
pub(crate) struct CatalogRules {
    read: BTreeSet<String>,
    write: BTreeSet<String>,
}

impl CatalogRules {
    pub(crate) fn new(grant: &CatalogGrant) -> Result<Self, GrantError> {
        let check_names = |list: &[String], field: &str| {
            list.iter().enumerate().try_for_each(|(i, name)| {
                if name.is_empty() || name.trim() != name {
                    Err(GrantError::new(
                        format!("capabilities.catalog.{field}[{i}]"),
                        "a blueprint identifier must be non-empty without surrounding spaces",
                    ))
                } else {
                    Ok(())
                }
            })
        };
        check_names(&grant.read, "read")?;
        check_names(&grant.write, "write")?;
        let read = grant.read.iter().cloned();
        let write: BTreeSet<String> = grant.write.iter().cloned().collect();
        Ok(Self {
            read: read.chain(write.iter().cloned()).collect(),
            write,
        })
    }
}

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

/// The run's `catalog` context: the store, the checked grant, who the writes are attributed
/// to, and what the run changed.
pub(crate) struct CatalogCtx {
    store: Arc<dyn CatalogStore>,
    rules: Arc<CatalogRules>,
    by: Attribution,
    log: Arc<LogSink>,
    denials: Arc<Denials>,
    affected: Vec<AffectedEntity>,
}

impl CatalogCtx {
    pub(crate) fn new(
        store: Arc<dyn CatalogStore>,
        rules: Arc<CatalogRules>,
        by: Attribution,
        log: Arc<LogSink>,
        denials: Arc<Denials>,
    ) -> Self {
        Self {
            store,
            rules,
            by,
            log,
            denials,
            affected: Vec::new(),
        }
    }

    /// The entities the run changed, in the order of their last change, leaving none.
    pub(crate) fn take_affected(&mut self) -> Vec<AffectedEntity> {
        std::mem::take(&mut self.affected)
    }

    /// Whether the grant allows `operation` on `blueprint`; a denial is recorded, reported and
    /// logged.
    fn check(
        &self,
        operation: &str,
        blueprint: &str,
        identifier: &str,
        write: bool,
    ) -> Result<(), catalog::Error> {
        let (granted, verb, list) = if write {
            (&self.rules.write, "write", "write")
        } else {
            (&self.rules.read, "read", "read (or write)")
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
        self.log.call(&CapabilityCall {
            target: CallTarget::Catalog {
                operation,
                blueprint: Some(blueprint),
                identifier: Some(identifier),
            },
            outcome: CallOutcome::Denied(&reason),
            logged: Some(&reason),
        });
        self.denials.record(reason.clone());
        self.log.emit(LogLevel::Warn, &reason);
        Err(catalog::Error::Denied(reason))
    }

    fn report(
        &self,
        operation: &str,
        blueprint: Option<&str>,
        identifier: Option<&str>,
        outcome: CallOutcome<'_>,
    ) {
        self.log.call(&CapabilityCall {
            target: CallTarget::Catalog {
                operation,
                blueprint,
                identifier,
            },
            outcome,
            logged: None,
        });
    }

    /// Reports a call the store answered, or refused with `err`.
    fn report_result<T>(
        &self,
        operation: &str,
        blueprint: Option<&str>,
        identifier: Option<&str>,
        result: &Result<T, CatalogError>,
        done: impl FnOnce(&T) -> CallOutcome<'static>,
    ) {
        if !self.log.observes_calls() {
            return;
        }
        match result {
            Ok(value) => self.report(operation, blueprint, identifier, done(value)),
            Err(e) => {
                let text = e.to_string();
                self.report(operation, blueprint, identifier, CallOutcome::Failed(&text));
            }
        }
    }

    fn record(&mut self, blueprint: &str, identifier: &str, change: EntityChange) {
        let affected = &mut self.affected;
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
            return Err(wasmtime::Error::new(HostFailure(format!(
                "catalog unavailable: {m}"
            ))));
        }
    })
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

impl catalog::Host for CatalogCtx {
    async fn get(
        &mut self,
        blueprint: String,
        identifier: String,
    ) -> wasmtime::Result<Result<Option<types::Entity>, catalog::Error>> {
        if let Err(e) = self.check("get", &blueprint, &identifier, false) {
            return Ok(Err(e));
        }
        let found = self.store.get(&blueprint, &identifier).await;
        self.report_result("get", Some(&blueprint), Some(&identifier), &found, |e| {
            CallOutcome::Found(e.is_some())
        });
        match found {
            Ok(found) => Ok(Ok(found.map(entity_to_wit))),
            Err(e) => Ok(Err(to_wit(e)?)),
        }
    }

    async fn upsert(
        &mut self,
        entity: types::Entity,
    ) -> wasmtime::Result<Result<types::Entity, catalog::Error>> {
        if let Err(e) = self.check("upsert", &entity.blueprint, &entity.identifier, true) {
            return Ok(Err(e));
        }
        // The names outlive the entity only for an observer (`plugin test`).
        let names = self
            .log
            .observes_calls()
            .then(|| (entity.blueprint.clone(), entity.identifier.clone()));
        let (blueprint, identifier) = match &names {
            Some((b, i)) => (Some(b.as_str()), Some(i.as_str())),
            None => (None, None),
        };
        let entity = match entity_from_wit(entity) {
            Ok(entity) => entity,
            Err(e) => {
                if names.is_some() {
                    let text = match &e {
                        catalog::Error::Invalid(m) => format!("invalid: {m}"),
                        other => format!("{other:?}"),
                    };
                    self.report("upsert", blueprint, identifier, CallOutcome::Failed(&text));
                }
                return Ok(Err(e));
            }
        };
        let stored = self.store.upsert(entity, &self.by).await;
        self.report_result("upsert", blueprint, identifier, &stored, |_| {
            CallOutcome::Stored
        });
        match stored {
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
        if let Err(e) = self.check("delete", &blueprint, &identifier, true) {
            return Ok(Err(e));
        }
        let deleted = self.store.delete(&blueprint, &identifier, &self.by).await;
        self.report_result(
            "delete",
            Some(&blueprint),
            Some(&identifier),
            &deleted,
            |d| CallOutcome::Found(*d),
        );
        match deleted {
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
        let readable: Vec<String> = self.rules.read.iter().cloned().collect();
        if readable.is_empty() {
            let reason = "catalog search denied: the action grants no blueprints \
                          (capabilities.catalog.read is empty)"
                .to_owned();
            self.report("search", None, None, CallOutcome::Denied(&reason));
            self.denials.record(reason.clone());
            return Ok(Err(catalog::Error::Denied(reason)));
        }
        let query: Value = match serde_json::from_str(&query) {
            Ok(q) => q,
            Err(e) => {
                let message = format!("query: not valid JSON: {e}");
                let text = format!("invalid: {message}");
                self.report("search", None, None, CallOutcome::Failed(&text));
                return Ok(Err(catalog::Error::Invalid(message)));
            }
        };
        let found = self.store.search(&query, &readable).await;
        self.report_result("search", None, None, &found, |f| {
            CallOutcome::Matched(f.len())
        });
        match found {
            Ok(found) => Ok(Ok(found.into_iter().map(entity_to_wit).collect())),
            Err(e) => Ok(Err(to_wit(e)?)),
        }
    }
}

bindings::answer_v0_1_with_v0_2!(catalog: CatalogCtx);

struct HasCatalog;

impl HasData for HasCatalog {
    type Data<'a> = &'a mut CatalogCtx;
}

/// Links `catalog` (every contract version) to the store state's [`CatalogCtx`].
pub(crate) fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut CatalogCtx,
) -> wasmtime::Result<()> {
    catalog::add_to_linker::<T, HasCatalog>(linker, get)?;
    bindings::v0_1::portico::action::catalog::add_to_linker::<T, HasCatalog>(linker, get)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::v0_1::portico::action::catalog as v0_1;
    use crate::events::RecordedEvents;
    use crate::limits::Limits;

    fn ctx(
        store: Arc<dyn CatalogStore>,
        read: &[&str],
        write: &[&str],
    ) -> (CatalogCtx, Arc<Denials>, Arc<RecordedEvents>) {
        let grant = CatalogGrant {
            read: read.iter().map(|s| s.to_string()).collect(),
            write: write.iter().map(|s| s.to_string()).collect(),
        };
        let events = Arc::new(RecordedEvents::default());
        let log = Arc::new(LogSink::new(events.clone(), &Limits::default()));
        let denials = Arc::new(Denials::default());
        let by = Attribution {
            run_id: "r1".into(),
            action: "deploy".into(),
            user: "ada".into(),
        };
        let rules = Arc::new(CatalogRules::new(&grant).unwrap());
        let ctx = CatalogCtx::new(store, rules, by, log, denials.clone());
        (ctx, denials, events)
    }

    fn entity(blueprint: &str, id: &str, properties: &str) -> types::Entity {
        types::Entity {
            identifier: id.into(),
            blueprint: blueprint.into(),
            title: None,
            team: Vec::new(),
            properties: properties.into(),
            relations: String::new(),
        }
    }

    #[test]
    fn a_grant_names_blueprints_and_writing_implies_reading() {
        let rules = CatalogRules::new(&CatalogGrant {
            read: vec!["team".into()],
            write: vec!["service".into()],
        })
        .unwrap();
        assert!(rules.read.contains("team") && rules.read.contains("service"));
        assert!(!rules.write.contains("team"));
        let err = CatalogRules::new(&CatalogGrant {
            read: Vec::new(),
            write: vec![" service".into()],
        })
        .unwrap_err();
        assert_eq!(err.path, "capabilities.catalog.write[0]");
    }

    #[tokio::test]
    async fn calls_outside_the_grant_are_denied_recorded_and_logged() {
        let store = Arc::new(MemoryCatalog::new());
        let (mut ctx, denials, events) = ctx(store.clone(), &["team"], &[]);
        let denied = catalog::Host::upsert(&mut ctx, entity("team", "a", "{}"))
            .await
            .unwrap()
            .unwrap_err();
        let catalog::Error::Denied(reason) = denied else {
            panic!("{denied:?}")
        };
        assert!(
            reason.contains("capabilities.catalog.write grant (granted: none)"),
            "{reason}"
        );
        assert_eq!(denials.first().as_deref(), Some(reason.as_str()));
        assert!(events.log_text().contains(&reason));
        let denied = catalog::Host::get(&mut ctx, "service".into(), "a".into())
            .await
            .unwrap();
        assert!(matches!(denied, Err(catalog::Error::Denied(r)) if r.contains("(granted: team)")));
        assert!(store.entities().is_empty());
        assert!(ctx.take_affected().is_empty());

        // The same call through 0.1.0's interface is denied alike.
        let old = v0_1::Host::delete(&mut ctx, "service".into(), "a".into())
            .await
            .unwrap();
        assert!(matches!(old, Err(v0_1::Error::Denied(_))));

        let (mut none, denials, _) = ctx_none();
        let searched = catalog::Host::search(&mut none, "{}".into()).await.unwrap();
        assert!(
            matches!(searched, Err(catalog::Error::Denied(r)) if r.contains("grants no blueprints"))
        );
        assert!(denials.first().is_some());
    }

    fn ctx_none() -> (CatalogCtx, Arc<Denials>, Arc<RecordedEvents>) {
        ctx(Arc::new(MemoryCatalog::new()), &[], &[])
    }

    #[tokio::test]
    async fn writes_are_checked_stored_and_attributed_to_the_run() {
        let store = Arc::new(MemoryCatalog::new());
        let (mut ctx, denials, _) = ctx(store.clone(), &[], &["service"]);
        let bad = catalog::Host::upsert(&mut ctx, entity("service", "a", "[1]"))
            .await
            .unwrap();
        assert!(matches!(bad, Err(catalog::Error::Invalid(m)) if m.starts_with("properties")));
        let stored = catalog::Host::upsert(&mut ctx, entity("service", "a", r#"{"x": 1}"#))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.properties, r#"{"x":1}"#);
        catalog::Host::upsert(&mut ctx, entity("service", "b", ""))
            .await
            .unwrap()
            .unwrap();
        assert!(
            catalog::Host::delete(&mut ctx, "service".into(), "a".into())
                .await
                .unwrap()
                .unwrap()
        );
        assert!(
            !catalog::Host::delete(&mut ctx, "service".into(), "zz".into())
                .await
                .unwrap()
                .unwrap()
        );
        let found = catalog::Host::search(&mut ctx, r#"{"rules": []}"#.into())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].identifier, "b");
        let affected: Vec<(String, EntityChange)> = ctx
            .take_affected()
            .into_iter()
            .map(|a| (a.identifier, a.change))
            .collect();
        assert_eq!(
            affected,
            [
                ("b".to_owned(), EntityChange::Upserted),
                ("a".to_owned(), EntityChange::Deleted)
            ],
            "in the order of their last change"
        );
        assert_eq!(denials.first(), None);
    }

    /// Keeps each call as `operation blueprint/identifier outcome`.
    #[derive(Default)]
    struct Calls(std::sync::Mutex<Vec<String>>);

    impl crate::events::RunEvents for Calls {
        fn observes_calls(&self) -> bool {
            true
        }
        fn log(&self, _: LogLevel, _: &str) {}
        fn progress(&self, _: Option<u8>, _: Option<&str>) {}
        fn link(&self, _: &crate::events::Link) {}
        fn call(&self, call: &CapabilityCall<'_>) {
            if let CapabilityCall {
                target:
                    CallTarget::Catalog {
                        operation,
                        blueprint,
                        identifier,
                    },
                outcome,
                ..
            } = call
            {
                let outcome = match outcome {
                    CallOutcome::Denied(_) => "denied".to_owned(),
                    other => format!("{other:?}"),
                };
                self.0.lock().unwrap().push(format!(
                    "{operation} {}/{} {outcome}",
                    blueprint.unwrap_or("*"),
                    identifier.unwrap_or("*")
                ));
            }
        }
    }

    #[tokio::test]
    async fn every_call_is_reported_with_what_the_host_decided() {
        let calls = Arc::new(Calls::default());
        let log = Arc::new(LogSink::new(calls.clone(), &Limits::default()));
        let rules = CatalogRules::new(&CatalogGrant {
            read: Vec::new(),
            write: vec!["service".into()],
        })
        .unwrap();
        let by = Attribution {
            run_id: "r1".into(),
            action: "deploy".into(),
            user: "ada".into(),
        };
        let store = Arc::new(MemoryCatalog::new());
        let mut ctx = CatalogCtx::new(store, Arc::new(rules), by, log, Arc::default());
        let _ = catalog::Host::get(&mut ctx, "team".into(), "a".into()).await;
        let _ = catalog::Host::get(&mut ctx, "service".into(), "a".into()).await;
        let _ = catalog::Host::upsert(&mut ctx, entity("service", "a", "{}")).await;
        let _ = catalog::Host::upsert(&mut ctx, entity("service", "b", "[]")).await;
        let _ = catalog::Host::search(&mut ctx, r#"{"rules": []}"#.into()).await;
        let _ = catalog::Host::delete(&mut ctx, "service".into(), "a".into()).await;
        assert_eq!(
            *calls.0.lock().unwrap(),
            [
                "get team/a denied",
                "get service/a Found(false)",
                "upsert service/a Stored",
                "upsert service/b Failed(\"invalid: properties: must be a JSON object\")",
                "search */* Matched(1)",
                "delete service/a Found(true)",
            ]
        );
    }

    struct Down;

    #[async_trait::async_trait]
    impl CatalogStore for Down {
        async fn get(&self, _: &str, _: &str) -> Result<Option<Entity>, CatalogError> {
            Err(CatalogError::Unavailable("database down".into()))
        }
        async fn upsert(&self, _: Entity, _: &Attribution) -> Result<Entity, CatalogError> {
            Err(CatalogError::Conflict("taken".into()))
        }
        async fn delete(&self, _: &str, _: &str, _: &Attribution) -> Result<bool, CatalogError> {
            Err(CatalogError::NotFound)
        }
        async fn search(&self, _: &Value, _: &[String]) -> Result<Vec<Entity>, CatalogError> {
            Ok(Vec::new())
        }
    }

    #[tokio::test]
    async fn store_errors_reach_the_plugin_and_an_outage_is_the_hosts_failure() {
        let (mut ctx, _, _) = ctx(Arc::new(Down), &[], &["service"]);
        let trap = catalog::Host::get(&mut ctx, "service".into(), "a".into())
            .await
            .unwrap_err();
        assert!(trap.downcast_ref::<HostFailure>().is_some(), "{trap:#}");
        let conflict = catalog::Host::upsert(&mut ctx, entity("service", "a", "{}"))
            .await
            .unwrap();
        assert!(matches!(conflict, Err(catalog::Error::Conflict(m)) if m == "taken"));
        let old = v0_1::Host::delete(&mut ctx, "service".into(), "a".into())
            .await
            .unwrap();
        assert!(matches!(old, Err(v0_1::Error::NotFound)));
    }
}
