//! Writing actions: a definition is checked against this server (its blueprints, its plugins, the
//! runtime's bounds), compiled, stored with its audit entry, and every holder of actions is told
//! (the intake's cache, the automations). The API and the embedded examples write through here,
//! so an action is never stored by another path.

use crate::action_check::{self, Known};
use crate::compiled::Action;
use crate::intake::RunIntake;
use crate::runner::Runner;
use portico_catalog::Violation;
use portico_runtime::Runtime;
use portico_store::{ActionRecord, AuditRecord, Store, StoreError, Write};
use serde_json::Value;

/// Why an action was not written.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The definition is invalid; each problem names its path.
    #[error("{} problem(s) in the action", .0.len())]
    Invalid(Vec<Violation>),
    /// The store failed, or (on create) the action exists.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The checked definition could not be serialized (a server fault).
    #[error("{0}")]
    Internal(String),
}

/// Who writes, for the audit log.
#[derive(Clone, Copy, Debug)]
pub struct Author<'a> {
    /// The user (or `portico` for the host itself).
    pub actor: &'a str,
    /// Where the change comes from: `api`, `examples`.
    pub origin: &'a str,
}

/// The actions of this server, as writers see them.
pub struct ActionRegistry<'a> {
    /// Where actions are kept.
    pub store: &'a dyn Store,
    /// Whose bounds an action's limits must respect.
    pub runtime: &'a Runtime,
    /// Keeps compiled actions for run requests.
    pub intake: &'a RunIntake,
    /// Keeps the automations.
    pub runner: &'a Runner,
}

impl ActionRegistry<'_> {
    /// Checks and compiles a definition (every problem listed with its path).
    pub async fn check(&self, body: &Value) -> Result<Action, RegistryError> {
        let blueprints: Vec<String> = self
            .store
            .list_blueprints()
            .await?
            .into_iter()
            .map(|b| b.identifier)
            .collect();
        let plugins: Vec<(String, String)> = self
            .store
            .list_plugins()
            .await?
            .into_iter()
            .map(|p| (p.name, p.digest))
            .collect();
        let known = Known {
            blueprints: &blueprints,
            plugins: &plugins,
            runtime: self.runtime,
        };
        let definition = action_check::check(body, &known).map_err(RegistryError::Invalid)?;
        Action::compile(definition).map_err(|e| {
            RegistryError::Invalid(vec![Violation {
                path: "action".into(),
                message: e.reason,
            }])
        })
    }

    /// Stores a checked action (created, or replaced when `write` allows), audited as CREATE
    /// or UPDATE with what it was before.
    pub async fn write(
        &self,
        author: Author<'_>,
        action: &Action,
        write: Write,
    ) -> Result<ActionRecord, RegistryError> {
        let before = self.store.get_action(&action.identifier).await?;
        let now = portico_store::now();
        let stored = ActionRecord {
            identifier: action.identifier.clone(),
            plugin: action.plugin_name().to_owned(),
            data: serde_json::to_value(action.definition())
                .map_err(|e| RegistryError::Internal(e.to_string()))?,
            created_at: before.as_ref().map_or(now, |b| b.created_at),
            updated_at: now,
        };
        let operation = if before.is_some() { "UPDATE" } else { "CREATE" };
        let mut audit = AuditRecord::success(
            author.actor,
            author.origin,
            operation,
            "action",
            &action.identifier,
        );
        audit.before = before.map(|b| b.data);
        audit.after = Some(stored.data.clone());
        self.store.put_action(stored.clone(), write, audit).await?;
        self.changed().await;
        Ok(stored)
    }

    /// Deletes an action as it is now (`current`); `false` when it was gone meanwhile.
    pub async fn delete(
        &self,
        author: Author<'_>,
        current: ActionRecord,
    ) -> Result<bool, RegistryError> {
        let mut audit = AuditRecord::success(
            author.actor,
            author.origin,
            "DELETE",
            "action",
            &current.identifier,
        );
        audit.before = Some(current.data);
        let deleted = self.store.delete_action(&current.identifier, audit).await?;
        self.changed().await;
        Ok(deleted)
    }

    /// Tells every holder of actions that one changed.
    async fn changed(&self) {
        self.intake.actions_changed();
        self.runner.refresh_automations().await;
    }
}
