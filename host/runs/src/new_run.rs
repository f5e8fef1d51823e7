//! A new run's record, payload and audit entry, built one way for every way a run starts: a
//! request through the [`crate::intake`] and an automation's event ([`crate::automations`]).
//! It sits below both (and below the runner) so that neither builds a run by hand.

use crate::actions::ActionDefinition;
use crate::host_key::HostKey;
use crate::payload::Payload;
use portico_runtime::{Operation, RunRequest, User};
use portico_store::{ActionVersion, AuditRecord, RunRecord, RunStatus};
use serde_json::{Value, json};
use std::sync::Arc;

/// Everything a new run is made of.
pub struct NewRun {
    /// Its id ([`crate::payload::new_run_id`], or derived from an event so that it fires once).
    pub id: String,
    /// The action's definition, which the run runs with.
    pub action: Arc<ActionDefinition>,
    /// That definition's version, which the stored run refers to.
    pub version: Arc<ActionVersion>,
    /// What the run does to the catalog.
    pub operation: Operation,
    /// The blueprint the run is listed under.
    pub blueprint: Option<String>,
    /// The entity a DAY-2 or DELETE run (or an entity event's automation) acts on.
    pub entity: Option<portico_store::Entity>,
    /// The inputs as the plugin receives them.
    pub inputs: Value,
    /// The names of the secret inputs: sealed in the payload, `[REDACTED]` in what is shown.
    pub secrets: Vec<String>,
    /// Who the plugin is told triggered it.
    pub triggered_by: User,
    /// `API`, `UI` or `AUTOMATION`.
    pub source: &'static str,
    /// Where it starts: waiting for approval, pending, or already claimed (in progress).
    pub status: RunStatus,
    /// The automations whose runs led to this one.
    pub chain: Vec<String>,
    /// For an automation, the event it reacts to: the audit entry records it instead of the
    /// inputs.
    pub event: Option<Value>,
}

/// A run ready to commit: the record to store (payload included), the payload a local worker
/// reads, and the audit entry stored with it.
pub struct Built {
    /// What the store keeps.
    pub record: RunRecord,
    /// What the worker executes.
    pub payload: Payload,
    /// The `RUN` audit entry.
    pub audit: AuditRecord,
    /// The action version the record refers to, for the store to keep with it.
    pub version: Arc<ActionVersion>,
}

impl NewRun {
    /// Builds the run: secrets sealed with `key` for this run and redacted from its shown
    /// inputs.
    pub fn build(self, key: &HostKey) -> serde_json::Result<Built> {
        let mut shown = self.inputs.clone();
        for name in &self.secrets {
            if let Some(v) = shown.get_mut(name) {
                *v = json!("[REDACTED]");
            }
        }
        let created_by = self.triggered_by.identifier.clone();
        let entity_id = self.entity.as_ref().map(|e| e.identifier.clone());
        let request = RunRequest {
            run_id: self.id.clone(),
            action: self.action.identifier.clone(),
            operation: self.operation,
            inputs: self.inputs,
            entity: self.entity.map(crate::run_catalog::to_runtime),
            triggered_by: self.triggered_by,
            config: self.action.invocation_method.config.clone(),
        };
        let mut payload = Payload::seal(self.action, request, &self.secrets, key);
        payload.chain = self.chain;
        let origin = self.source.to_ascii_lowercase();
        let mut audit = AuditRecord::success(&created_by, &origin, "RUN", "run", &self.id);
        audit.blueprint = self.blueprint.clone();
        audit.run_id = Some(self.id.clone());
        audit.after = Some(match self.event {
            Some(event) => json!({ "action": payload.action.identifier, "event": event }),
            None => json!({ "action": payload.action.identifier, "properties": shown.clone() }),
        });
        let record = RunRecord {
            blueprint: self.blueprint,
            entity: entity_id,
            properties: shown,
            status: self.status,
            attempts: i32::from(self.status == RunStatus::InProgress),
            payload: payload.stored(&self.version)?,
            ..RunRecord::accepted(
                &self.id,
                &payload.action.identifier,
                self.source,
                &created_by,
            )
        };
        Ok(Built {
            record,
            payload,
            audit,
            version: self.version,
        })
    }
}
