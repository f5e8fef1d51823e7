//! Automations: actions whose `trigger.type` is `automation` run when their event happens:
//! an entity created, updated or deleted, or a run created or changed (both read from the
//! outbox, where the change wrote them in its own transaction), or a timer property expired
//! (found by a periodic search). The plugin gets the event (`{event, diff: {before, after},
//! entity}`) as its inputs; runs are `source: AUTOMATION`.
//!
//! Each fires exactly once per event, across replicas and restarts: its run id is derived from
//! the automation and the event (the outbox event's id; for a timer, the entity and the timer's
//! value), so a second attempt, by this replica after a failure or by another after this one
//! died, is a conflict and starts nothing.
//!
//! Loops are refused: a run started by an automation carries the chain of automations that led
//! to it, and an automation already in the chain does not fire again (the refusal is audited).

use crate::actions::{ActionDefinition, AutomationEvent};
use crate::compiled::{Action, TriggerKind};
use crate::host_key::HostKey;
use crate::jq;
use crate::new_run::NewRun;
use crate::payload::Payload;
use portico_catalog::Catalog;
use portico_runtime::{Operation, User};
use portico_store::{AuditRecord, OutboxEvent, RunInsert, RunStatus, Store, StoreError};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::sync::{Arc, Mutex, RwLock};

/// Automations in a chain beyond which a run starts no more.
const MAX_CHAIN: usize = 8;
/// Expired entities looked at per timer automation and scan.
const TIMER_BATCH: usize = 500;

/// The automations of this host. Cheap to share.
pub struct Automations {
    store: Arc<dyn Store>,
    catalog: Arc<Catalog>,
    actions: RwLock<Vec<Arc<Action>>>,
    /// Seals a run's secret inputs (an automation's runs have none, but every run is built
    /// the same way).
    key: HostKey,
    /// Timer firings already done (their run exists), to skip the conflict.
    fired: Mutex<HashSet<String>>,
}

impl Automations {
    /// Automations over `store`; call [`Automations::refresh`] to load them.
    pub fn new(store: Arc<dyn Store>, catalog: Arc<Catalog>, key: HostKey) -> Self {
        Self {
            store,
            catalog,
            actions: RwLock::default(),
            key,
            fired: Mutex::default(),
        }
    }

    /// Reloads the automation actions from the store.
    pub async fn refresh(&self) -> Result<(), StoreError> {
        let mut automations = Vec::new();
        for stored in self.store.list_actions().await? {
            let Ok(definition) = serde_json::from_value::<ActionDefinition>(stored.data) else {
                continue;
            };
            match Action::compile(definition) {
                Ok(action) if action.trigger_kind == TriggerKind::Automation => {
                    automations.push(Arc::new(action));
                }
                Ok(_) => {}
                Err(e) => tracing::error!("{e}"),
            }
        }
        *self.actions.write().unwrap_or_else(|e| e.into_inner()) = automations;
        Ok(())
    }

    /// Whether any automation reacts to runs (so run changes need looking at).
    pub fn watches_runs(&self) -> bool {
        let actions = self.actions.read().unwrap_or_else(|e| e.into_inner());
        actions.iter().any(|a| {
            a.trigger
                .event
                .as_ref()
                .is_some_and(|e| e.kind.contains("RUN"))
        })
    }

    fn matching(&self, wanted: impl Fn(&AutomationEvent) -> bool) -> Vec<Arc<Action>> {
        let actions = self.actions.read().unwrap_or_else(|e| e.into_inner());
        actions
            .iter()
            .filter(|a| a.trigger.event.as_ref().is_some_and(&wanted))
            .cloned()
            .collect()
    }

    /// Starts the automations an entity change ([`portico_store::NewEvent::ENTITY`]) triggers;
    /// answers how many runs were queued. An error means the event should be tried again:
    /// what it already started is not started twice.
    pub async fn entity_changed(&self, event: &OutboxEvent) -> Result<usize, StoreError> {
        let body = &event.body;
        let kind = body["kind"].as_str().unwrap_or_default();
        let blueprint = body["blueprint"].as_str().unwrap_or_default();
        let actions = self.matching(|e| {
            e.blueprint_identifier.as_deref() == Some(blueprint)
                && (e.kind == kind || e.kind == "ANY_ENTITY_CHANGE")
        });
        let (before, after) = (&body["before"], &body["after"]);
        let entity = [after, before].into_iter().find(|v| !v.is_null()).cloned();
        let cause = body["runId"].as_str();
        let mut started = 0;
        for action in actions {
            let inputs = json!({
                "event": { "type": kind, "blueprintIdentifier": blueprint },
                "diff": { "before": before, "after": after },
                "entity": entity,
            });
            let id = event_run_id(&action.identifier, event);
            if self
                .start(&action, inputs, entity.clone(), cause, id)
                .await?
            {
                started += 1;
            }
        }
        Ok(started)
    }

    /// Starts the automations a run's creation or change ([`portico_store::NewEvent::RUN`],
    /// `{created, run}`) triggers; answers how many runs were queued.
    pub async fn run_changed(&self, event: &OutboxEvent) -> Result<usize, StoreError> {
        let run = &event.body["run"];
        let kind = if event.body["created"] == true {
            "RUN_CREATED"
        } else {
            "RUN_UPDATED"
        };
        let action_id = run["action"].as_str().unwrap_or_default();
        let actions = self.matching(|e| {
            e.action_identifier.as_deref() == Some(action_id)
                && (e.kind == kind || e.kind == "ANY_RUN_CHANGE")
        });
        let mut started = 0;
        for action in actions {
            let inputs = json!({
                "event": { "type": kind, "actionIdentifier": action_id },
                "diff": { "before": Value::Null, "after": run },
                "run": run,
            });
            let id = event_run_id(&action.identifier, event);
            if self
                .start(&action, inputs, None, run["id"].as_str(), id)
                .await?
            {
                started += 1;
            }
        }
        Ok(started)
    }

    /// Fires the timer automations of entities whose timer has passed; answers how many runs
    /// were queued.
    pub async fn expire_timers(&self) -> usize {
        let timers = self.matching(|e| e.kind == "TIMER_PROPERTY_EXPIRED");
        let mut started = 0;
        for action in timers {
            let Some(event) = &action.trigger.event else {
                continue;
            };
            let (Some(bp), Some(property)) =
                (&event.blueprint_identifier, &event.property_identifier)
            else {
                continue;
            };
            let query = json!({ "combinator": "and", "rules": [
                { "property": "$blueprint", "operator": "=", "value": bp },
                { "property": property, "operator": "isExpired" } ] });
            let expired = match self.catalog.search(&query, TIMER_BATCH, None).await {
                Ok((entities, _)) => entities,
                Err(e) => {
                    tracing::error!(action = %action.identifier, "cannot search expired timers: {e}");
                    continue;
                }
            };
            for entity in expired {
                let value = entity.properties.get(property).cloned().unwrap_or_default();
                let key = format!(
                    "{}|{bp}|{}|{property}|{value}",
                    action.identifier, entity.identifier
                );
                if self.lock_fired().contains(&key) {
                    continue;
                }
                let id = format!("r_t_{}", &hex::encode(Sha256::digest(key.as_bytes()))[..24]);
                let entity = serde_json::to_value(&entity).unwrap_or_default();
                let body = json!({
                    "event": { "type": "TIMER_PROPERTY_EXPIRED", "blueprintIdentifier": bp,
                               "propertyIdentifier": property },
                    "diff": { "before": entity, "after": entity },
                    "entity": entity,
                });
                match self.start(&action, body, Some(entity), None, id).await {
                    Ok(true) => started += 1,
                    Ok(false) => {}
                    Err(e) => {
                        tracing::error!(action = %action.identifier, "cannot fire a timer: {e}");
                        continue;
                    }
                }
                self.lock_fired().insert(key);
            }
        }
        started
    }

    fn lock_fired(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.fired.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues one run of `action` for `body`, unless its condition does not hold, it would
    /// close a loop, or a run with this id exists (it fired already): whether it queued one.
    /// `cause` is the run whose change this reacts to.
    async fn start(
        &self,
        action: &Action,
        body: Value,
        entity: Option<Value>,
        cause: Option<&str>,
        run_id: String,
    ) -> Result<bool, StoreError> {
        if !condition_holds(action, &body) {
            return Ok(false);
        }
        let mut chain = Vec::new();
        if let Some(cause) = cause
            && let Some(parent) = self.store.get_run(cause).await?
            && parent.source == "AUTOMATION"
        {
            chain = Payload::open(self.store.as_ref(), &parent.payload)
                .await
                .map(|p| p.chain)
                .unwrap_or_default();
            chain.push(parent.action.clone());
        }
        let actor = format!("automation:{}", action.identifier);
        if chain.contains(&action.identifier) || chain.len() >= MAX_CHAIN {
            chain.push(action.identifier.clone());
            let reason = format!("loop refused: {}", chain.join(" -> "));
            tracing::warn!(action = %action.identifier, "{reason}");
            let mut record = AuditRecord::failure(
                &actor,
                "automation",
                "RUN",
                "action",
                &action.identifier,
                reason,
            );
            record.run_id = cause.map(str::to_owned);
            self.store.record(record).await?;
            return Ok(false);
        }

        let entity = entity.and_then(|e| serde_json::from_value::<portico_store::Entity>(e).ok());
        let new = NewRun {
            id: run_id,
            action: action.definition().clone(),
            version: action.version().clone(),
            operation: if entity.is_some() {
                Operation::DayTwo
            } else {
                Operation::Create
            },
            blueprint: entity.as_ref().map(|e| e.blueprint.clone()),
            entity,
            event: Some(body["event"].clone()),
            inputs: body,
            secrets: Vec::new(),
            triggered_by: User {
                identifier: actor,
                email: None,
                roles: vec!["admin".into()],
                teams: Vec::new(),
            },
            source: "AUTOMATION",
            status: RunStatus::Pending,
            chain,
        };
        let built = match new.build(&self.key) {
            Ok(built) => built,
            Err(e) => {
                tracing::error!(action = %action.identifier, "cannot start an automation: {e}");
                return Ok(false);
            }
        };
        let insert = RunInsert {
            version: Some(built.version),
            ..RunInsert::default()
        };
        match self
            .store
            .insert_run(built.record, built.audit, insert)
            .await
        {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// The id of the run `automation` starts for `event`: the same on every replica and attempt.
fn event_run_id(automation: &str, event: &OutboxEvent) -> String {
    let key = format!(
        "{automation}|{}|{}",
        event.id,
        event.created_at.timestamp_millis()
    );
    format!("r_e_{}", &hex::encode(Sha256::digest(key.as_bytes()))[..24])
}

/// Whether the automation's `condition` holds for the event (no condition: it does). An
/// expression that fails counts as false: the automation does not fire.
fn condition_holds(action: &ActionDefinition, body: &Value) -> bool {
    let Some(condition) = &action.trigger.condition else {
        return true;
    };
    let expressions: Vec<&str> = condition
        .get("expressions")
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let any = condition.get("combinator").and_then(Value::as_str) == Some("or");
    let mut results = expressions
        .iter()
        .map(|code| matches!(jq::first(code, body), Ok(Value::Bool(true))));
    if any {
        results.any(|r| r)
    } else {
        results.all(|r| r)
    }
}
