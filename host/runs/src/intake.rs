//! The run intake: everything between "someone asks for a run" and "the run is committed and
//! dispatched", in one place for every front door (the API, and the portal and the CLI that use
//! it). In order: the action (compiled, cached), its operation and entity, `permissions.execute`,
//! the queue bound, the inputs, the policy, the quotas, approval, then the run record with its
//! payload and audit entry, a worker reserved when one is free, the commit, and the
//! notifications. A refusal is a typed [`IntakeError`]; the API maps it to HTTP once.

use crate::actions::ActionDefinition;
use crate::compiled::{Action, CompileError, TriggerKind};
use crate::inputs::{self, InputContext, InputLookup};
use crate::new_run::NewRun;
use crate::payload::{Payload, new_run_id};
use crate::quotas::{self, QuotaError, QuotaExceeded};
use crate::runner::Runner;
use crate::ttl_cache::TtlCache;
use chrono::{DateTime, Utc};
use portico_catalog::{Catalog, Violation};
use portico_runtime::{Operation, User};
use portico_store::{AuditRecord, RunInsert, RunRecord, RunStatus, Store, StoreError};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a request waits for a worker before its run is queued instead.
const WORKER_PATIENCE: Duration = Duration::from_millis(100);

/// Where a request comes from, kept as the run's `source`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The HTTP API (and the CLI, which uses it).
    Api,
    /// The portal.
    Ui,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Self::Api => "API",
            Self::Ui => "UI",
        }
    }
}

/// What a caller asks for.
#[derive(Debug, Default)]
pub struct RunAsk {
    /// The inputs (`null` counts as none).
    pub properties: Value,
    /// The entity a DAY-2 or DELETE action runs on.
    pub entity: Option<String>,
}

/// Why a run was not accepted. Refusals the guardrails decide (permission, policy, quota) are
/// already in the audit log when this is returned.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// No such action.
    #[error("action `{0}` not found")]
    NotFound(String),
    /// An automation's runs start from its event only.
    #[error("action `{0}` is an automation: its trigger.event runs it, not a request")]
    Automation(String),
    /// The inputs or the entity are invalid; each problem names its field.
    #[error("{} invalid field(s)", .0.len())]
    Invalid(Vec<Violation>),
    /// `permissions.execute` or its policy refuses the caller; the text says which.
    #[error("{0}")]
    Forbidden(String),
    /// The queue is full.
    #[error("{pending} runs are waiting, the most this server queues; retry shortly")]
    Overloaded {
        /// Runs waiting.
        pending: u64,
    },
    /// A quota would be exceeded.
    #[error("{0}: wait for one to end, or ask an admin to raise it")]
    Quota(QuotaExceeded),
    /// The stored action no longer compiles (a server fault).
    #[error(transparent)]
    Broken(#[from] CompileError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Something else on the server failed; the text is for the log only.
    #[error("{0}")]
    Internal(String),
}

impl IntakeError {
    fn field(path: &str, message: impl Into<String>) -> Self {
        Self::Invalid(vec![Violation {
            path: path.into(),
            message: message.into(),
        }])
    }
}

/// The run intake of this process. Cheap to clone.
#[derive(Clone)]
pub struct RunIntake {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    catalog: Arc<Catalog>,
    runner: Runner,
    /// Compiled actions by identifier (`None`: no such action). This replica forgets them when
    /// it writes an action; other replicas' writes show within the ttl.
    actions: TtlCache<String, Option<Arc<Action>>>,
    /// How many runs are PENDING (the queue bound is a soft limit).
    pending: TtlCache<(), u64>,
    /// Each action as last compiled, with the version (`updatedAt`) it was compiled from: the
    /// ttl above only spares a read, this spares compiling an unchanged action again.
    compiled: Mutex<HashMap<String, Versioned>>,
}

/// A compiled action and the `updatedAt` of the version it was compiled from.
type Versioned = (DateTime<Utc>, Arc<Action>);

impl RunIntake {
    /// An intake committing to `store` and dispatching to `runner`.
    pub fn new(store: Arc<dyn Store>, catalog: Arc<Catalog>, runner: Runner) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                catalog,
                runner,
                actions: TtlCache::new(Duration::from_secs(1)),
                pending: TtlCache::new(Duration::from_millis(100)),
                compiled: Mutex::default(),
            }),
        }
    }

    /// Forgets cached actions: call after writing or deleting one.
    pub fn actions_changed(&self) {
        self.inner.actions.clear();
    }

    /// The compiled action, from the cache or the store; `None` when there is no such action.
    pub async fn action(&self, id: &str) -> Result<Option<Arc<Action>>, IntakeError> {
        if let Some(action) = self.inner.actions.get(id) {
            return Ok(action);
        }
        let action = match self.inner.store.get_action(id).await? {
            // The same version as last time: keep what was compiled (its validators too).
            Some(stored) if let Some(kept) = self.compiled(id, stored.updated_at) => Some(kept),
            Some(stored) => {
                let definition: ActionDefinition = serde_json::from_value(stored.data)
                    .map_err(|e| IntakeError::Internal(format!("stored action `{id}`: {e}")))?;
                let action = Arc::new(Action::compile(definition)?);
                self.inner
                    .compiled
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(id.to_owned(), (stored.updated_at, action.clone()));
                Some(action)
            }
            None => {
                let mut compiled = self
                    .inner
                    .compiled
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                compiled.remove(id);
                None
            }
        };
        self.inner.actions.put(id.to_owned(), action.clone());
        Ok(action)
    }

    /// The action compiled for its version written at `updated_at`, if this intake has it.
    fn compiled(&self, id: &str, updated_at: DateTime<Utc>) -> Option<Arc<Action>> {
        let compiled = self
            .inner
            .compiled
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        compiled
            .get(id)
            .filter(|(version, _)| *version == updated_at)
            .map(|(_, action)| action.clone())
    }

    /// Accepts a run of `action_id` for `caller`, or says why not. The answer is the run as
    /// stored (without its payload), already committed and dispatched.
    pub async fn request(
        &self,
        caller: &portico_store::User,
        source: Source,
        action_id: &str,
        ask: RunAsk,
    ) -> Result<RunRecord, IntakeError> {
        let inner = &*self.inner;
        let action = self
            .action(action_id)
            .await?
            .ok_or_else(|| IntakeError::NotFound(action_id.to_owned()))?;
        if action.trigger_kind == TriggerKind::Automation {
            return Err(IntakeError::Automation(action_id.to_owned()));
        }
        let entity = self.entity(&action, ask.entity).await?;
        let owners = entity.as_ref().map(|e| e.team.clone()).unwrap_or_default();
        let execute = &action.permissions.execute;
        // With a policy, the policy decides (below); roles, users and teams only say who sees it.
        if execute.policy.is_none() && !execute.admits(caller, &owners) {
            self.refused(
                caller,
                source,
                action_id,
                "not allowed by permissions.execute",
            )
            .await;
            return Err(IntakeError::Forbidden(format!(
                "you may not run `{action_id}`: its permissions.execute allows roles [{}], users [{}], teams [{}]{}",
                execute.roles.join(", "),
                execute.users.join(", "),
                execute.teams.join(", "),
                if execute.owned_by_team {
                    " and the entity's owning teams"
                } else {
                    ""
                }
            )));
        }

        let pending = match inner.pending.get(&()) {
            Some(n) => n,
            None => {
                let n = inner.store.count_runs(RunStatus::Pending).await?;
                inner.pending.put((), n);
                crate::metrics::queue_depth(n);
                n
            }
        };
        if pending >= inner.runner.config().max_queue {
            return Err(IntakeError::Overloaded { pending });
        }

        let user = run_user(caller);
        let context = input_context(&user, entity.as_ref());
        let submitted = if ask.properties.is_null() {
            json!({})
        } else {
            ask.properties
        };
        let validated = inputs::validate(&action.inputs, &submitted, &context, &Lookup(inner))
            .await
            .map_err(IntakeError::Invalid)?;

        // What policies and approval conditions see; most actions have neither.
        let context = if execute.policy.is_some() || action.approval.is_some() {
            json!({
                "inputs": validated.properties.clone(),
                "user": context.user,
                "entity": context.entity,
                "action": action.identifier,
                "blueprint": action.trigger.blueprint_identifier,
            })
        } else {
            Value::Null
        };
        if let Some(policy) = &execute.policy
            && let Err(why) = policy.allows(&inner.catalog, &context).await
        {
            self.refused(
                caller,
                source,
                action_id,
                &format!("permissions.execute.policy: {why}"),
            )
            .await;
            return Err(IntakeError::Forbidden(format!(
                "you may not run `{action_id}`: its policy denies it ({why})"
            )));
        }
        if let Err(e) = quotas::check(&inner.catalog, &action, caller).await {
            self.refused(caller, source, action_id, &e.to_string())
                .await;
            return Err(match e {
                QuotaError::Exceeded(over) => IntakeError::Quota(over),
                QuotaError::Count(..) => IntakeError::Internal(e.to_string()),
            });
        }
        let waits = action
            .approval
            .as_ref()
            .is_some_and(|r| r.applies(&context));
        // Started at once when this process has a worker free (soon); otherwise queued for one.
        let reservation = if waits {
            None
        } else {
            inner.runner.reserve(WORKER_PATIENCE).await
        };

        let built = NewRun {
            id: new_run_id(),
            action: action.definition().clone(),
            version: action.version().clone(),
            operation: action.operation,
            blueprint: action.trigger.blueprint_identifier.clone(),
            entity,
            inputs: validated.properties,
            secrets: validated.secrets,
            triggered_by: user,
            source: source.as_str(),
            status: if waits {
                RunStatus::WaitingForApproval
            } else if reservation.is_some() {
                RunStatus::InProgress
            } else {
                RunStatus::Pending
            },
            chain: Vec::new(),
            event: None,
        }
        .build(&inner.runner.config().key)
        .map_err(|e| IntakeError::Internal(e.to_string()))?;
        // What the caller is answered and a local worker reads: the store keeps the payload.
        let mut record = built.record;
        let payload = std::mem::take(&mut record.payload);
        let accepted = record.clone();
        record.payload = payload;
        let events = inner
            .runner
            .events(&accepted, Some(action.definition()), true);
        let published = !events.is_empty();
        let insert = RunInsert {
            claim: reservation.as_ref().map(|_| {
                let (worker, lease_until) = inner.runner.claim();
                (worker.to_owned(), lease_until)
            }),
            limits: quotas::held(&action),
            events,
            version: Some(built.version),
        };
        let insert = inner.store.insert_run(record, built.audit, insert);
        let stored = crate::metrics::store("insert_run", insert).await;
        if let Err(StoreError::OverLimit {
            limit,
            max,
            current,
        }) = stored
        {
            let over = quotas::exceeded(limit, max, current);
            self.refused(caller, source, action_id, &over.to_string())
                .await;
            return Err(IntakeError::Quota(over));
        }
        stored?;
        if published {
            inner.runner.events_written();
        }
        if reservation.is_none() && !waits {
            if let Some(n) = inner.pending.get(&()) {
                inner.pending.put((), n + 1);
            }
            inner.runner.wake();
        }
        if let Some(reservation) = reservation {
            inner
                .runner
                .dispatch(reservation, accepted.clone(), built.payload);
        }
        Ok(accepted)
    }

    /// Requests `previous`'s action again for `caller`, with the inputs it ran with and the
    /// same entity; `properties` are laid over them (secret inputs must be given again: a run
    /// never keeps them in clear). Every rule of a new request applies, to the action as it is
    /// now.
    pub async fn retry(
        &self,
        caller: &portico_store::User,
        source: Source,
        previous: &RunRecord,
        properties: Value,
    ) -> Result<RunRecord, IntakeError> {
        let payload = Payload::open(self.inner.store.as_ref(), &previous.payload)
            .await
            .map_err(|e| IntakeError::Internal(format!("run `{}`: {e}", previous.id)))?;
        let action = self
            .action(&previous.action)
            .await?
            .ok_or_else(|| IntakeError::NotFound(previous.action.clone()))?;
        let mut inputs = inputs::as_submitted(action.inputs.definition(), &payload.request.inputs);
        match (inputs.as_object_mut(), properties) {
            (Some(inputs), Value::Object(given)) => inputs.extend(given),
            (_, Value::Null) => {}
            _ => {
                return Err(IntakeError::field(
                    "properties",
                    "must be an object of inputs to change or give again",
                ));
            }
        }
        let ask = RunAsk {
            properties: inputs,
            entity: previous.entity.clone(),
        };
        self.request(caller, source, &previous.action, ask).await
    }

    /// How `action`'s form stands for values `submitted` so far (on `entity`, for DAY-2 and
    /// DELETE): what the portal shows, from the rules a request is checked by.
    pub async fn form_state(
        &self,
        caller: &portico_store::User,
        action: &Action,
        entity: Option<String>,
        submitted: &Value,
    ) -> inputs::FormState {
        // An entity not chosen yet, or not one this action runs on, leaves `.entity` null.
        let entity = self.entity(action, entity).await.ok().flatten();
        let context = input_context(&run_user(caller), entity.as_ref());
        inputs::form_state(&action.inputs, submitted, &context)
    }

    /// The entity a request names, checked against the action's operation and blueprint.
    async fn entity(
        &self,
        action: &Action,
        entity: Option<String>,
    ) -> Result<Option<portico_store::Entity>, IntakeError> {
        match (
            entity,
            action.operation,
            &action.trigger.blueprint_identifier,
        ) {
            (None, Operation::Create, _) => Ok(None),
            (None, _, _) => Err(IntakeError::field(
                "entity",
                "required: this action runs on an entity",
            )),
            (Some(id), _, Some(bp)) => match self.inner.catalog.get_entity(bp, &id).await {
                Ok(entity) => Ok(Some(entity)),
                Err(_) => Err(IntakeError::field(
                    "entity",
                    format!("entity `{id}` of blueprint `{bp}` does not exist"),
                )),
            },
            (Some(_), _, None) => Err(IntakeError::field(
                "entity",
                "this action has no blueprint to find the entity in",
            )),
        }
    }

    /// Records a refused run request in the audit log.
    async fn refused(
        &self,
        caller: &portico_store::User,
        source: Source,
        action: &str,
        reason: &str,
    ) {
        let origin = source.as_str().to_ascii_lowercase();
        let record =
            AuditRecord::failure(&caller.identifier, &origin, "RUN", "action", action, reason);
        if let Err(e) = self.inner.store.record(record).await {
            tracing::error!("cannot record a refused run: {e}");
        }
    }
}

/// What input validation looks up: entities in the catalog, users and teams in the store.
struct Lookup<'a>(&'a Inner);

#[async_trait::async_trait]
impl InputLookup for Lookup<'_> {
    async fn entity(&self, blueprint: &str, identifier: &str) -> Option<Value> {
        let e = self
            .0
            .catalog
            .get_entity(blueprint, identifier)
            .await
            .ok()?;
        serde_json::to_value(e).ok()
    }
    async fn in_dataset(
        &self,
        blueprint: &str,
        identifier: &str,
        dataset: &Value,
    ) -> Result<bool, String> {
        let query = crate::inputs::dataset_query(blueprint, identifier, dataset);
        match self.0.catalog.search(&query, 1, None).await {
            Ok((found, _)) => Ok(!found.is_empty()),
            Err(portico_catalog::CatalogError::Invalid { message, .. }) => Err(message),
            Err(e) => {
                // A server fault: its text stays in the log.
                tracing::error!("cannot search an input's dataset: {e}");
                Err(
                    "the catalog could not be searched; try again (the server's log says why)"
                        .into(),
                )
            }
        }
    }
    async fn user_exists(&self, identifier: &str) -> bool {
        matches!(self.0.store.get_user(identifier).await, Ok(Some(_)))
    }
    async fn team_exists(&self, name: &str) -> bool {
        matches!(self.0.store.list_teams().await, Ok(teams) if teams.iter().any(|t| t.name == name))
    }
}

/// The caller as a run (and its inputs' jq) sees them.
fn run_user(caller: &portico_store::User) -> User {
    User {
        identifier: caller.identifier.clone(),
        email: caller.email.clone(),
        roles: vec![caller.role.as_str().to_owned()],
        teams: caller.teams.clone(),
    }
}

/// What an input's jq expressions see besides the form: the entity and the caller.
fn input_context(user: &User, entity: Option<&portico_store::Entity>) -> InputContext {
    InputContext {
        entity: entity.map(|e| serde_json::to_value(e).unwrap_or_default()),
        user: serde_json::to_value(user).unwrap_or_default(),
    }
}
