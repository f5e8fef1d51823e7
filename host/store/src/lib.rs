//! Portico's storage: the [`Store`] trait (the sum of one trait per area: [`CatalogData`],
//! [`UserDirectory`], [`PluginRegistry`], [`ActionDefinitions`], [`RunQueue`], [`AuditTrail`],
//! [`Health`] and the change feed [`Changes`]), two backends chosen by URL: `sqlite://PATH` (the
//! embedded default; rusqlite in WAL mode with one writer thread that commits in batches) and
//! `postgres://...` (several replicas share it). Each backend applies its own migrations when it
//! opens.
//!
//! Every mutation takes the audit record that describes it and stores both in one transaction,
//! so the audit log cannot miss a change that happened.

mod changes;
mod model;
mod postgres;
pub mod query;
mod rows;
mod sql;
mod sqlite;
mod versions;

pub use changes::{Change, Changes};
pub use model::{
    ActionRecord, ActionVersion, ApiToken, Approval, AuditFilter, AuditRecord, AuditStatus,
    Blueprint, Credential, Entity, EntityRef, JsonText, NewEvent, OutboxEvent, PluginVersion,
    Relation, Role, RunFilter, RunInsert, RunLimit, RunLimits, RunLogLine, RunRecord, RunStatus,
    Team, UnknownStatus, User,
};
pub use query::{Combinator, Direction, Field, Op, Order, Query, QueryError, Rule, SortKey};

use chrono::{DateTime, Utc};
use std::sync::Arc;

/// Whether a write may replace what is there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Write {
    /// Fails with [`StoreError::Conflict`] when it exists.
    Create,
    /// Creates or replaces.
    Replace,
}

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique key is taken; the text names it.
    #[error("{0} already exists")]
    Conflict(String),
    /// A blueprint still has entities; the text says how many.
    #[error("{0}")]
    InUse(String),
    /// The query cannot be run.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// A new run would pass one of its [`RunLimits`]; nothing was stored.
    #[error("{limit:?} limit is {max} and {current} runs count against it")]
    OverLimit {
        /// Which limit.
        limit: RunLimit,
        /// The limit.
        max: u32,
        /// The runs counted.
        current: u64,
    },
    /// The database failed. Internal: never shown to API clients as is.
    #[error("database error: {0}")]
    Database(String),
}

/// Result of a store call.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Everything Portico keeps: the sum of one trait per area, implemented by the SQLite and
/// Postgres backends. Callers hold an `Arc<dyn Store>` (or `&dyn Store`) and call any area's
/// methods on it without importing the area traits; code that needs only one area can take that
/// trait alone.
pub trait Store:
    Health
    + CatalogData
    + UserDirectory
    + PluginRegistry
    + ActionDefinitions
    + RunQueue
    + AuditTrail
    + Coordination
    + Changes
{
}

impl<T> Store for T where
    T: Health
        + Changes
        + CatalogData
        + UserDirectory
        + PluginRegistry
        + ActionDefinitions
        + RunQueue
        + AuditTrail
        + Coordination
{
}

/// Which backend a store is and whether its database answers (the health check).
#[async_trait::async_trait]
pub trait Health: Send + Sync {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// Whether the database answers.
    async fn ping(&self) -> Result<()>;
}

/// The software catalog: blueprints, their entities, the relation edges between entities, and
/// search over entities. (Not `CatalogStore`: that is the runtime's narrower view that plugins
/// read through.)
#[async_trait::async_trait]
pub trait CatalogData: Send + Sync {
    /// Every blueprint, by identifier.
    async fn list_blueprints(&self) -> Result<Vec<Blueprint>>;
    /// One blueprint.
    async fn get_blueprint(&self, identifier: &str) -> Result<Option<Blueprint>>;
    /// Creates or replaces a blueprint.
    async fn put_blueprint(
        &self,
        blueprint: Blueprint,
        write: Write,
        audit: AuditRecord,
    ) -> Result<()>;
    /// Deletes a blueprint; with `with_entities`, its entities too, else [`StoreError::InUse`]
    /// when it has any. `false` when there was no such blueprint.
    async fn delete_blueprint(
        &self,
        identifier: &str,
        with_entities: bool,
        audit: AuditRecord,
    ) -> Result<bool>;
    /// One entity.
    async fn get_entity(&self, blueprint: &str, identifier: &str) -> Result<Option<Entity>>;
    /// Creates or replaces an entity and its relation edges.
    async fn put_entity(
        &self,
        entity: Entity,
        relations: Vec<Relation>,
        write: Write,
        audit: AuditRecord,
    ) -> Result<()>;
    /// Deletes entities (and their outgoing edges) in one transaction, one audit record each.
    async fn delete_entities(
        &self,
        entities: Vec<EntityRef>,
        audit: Vec<AuditRecord>,
    ) -> Result<()>;
    /// Entities with a relation pointing at `target`.
    async fn dependents(&self, target: &EntityRef) -> Result<Vec<EntityRef>>;
    /// Entities matching `query`, ordered by blueprint then identifier, after `after`.
    async fn search(
        &self,
        query: &Query,
        limit: usize,
        after: Option<EntityRef>,
    ) -> Result<Vec<Entity>>;
    /// How many entities a blueprint has.
    async fn count_entities(&self, blueprint: &str) -> Result<u64>;
}

/// Who may call the API: users, their API tokens (kept as hashes), teams, and authentication
/// by a token's hash.
#[async_trait::async_trait]
pub trait UserDirectory: Send + Sync {
    /// Creates a user with a first token (stored as its hash only). [`StoreError::Conflict`]
    /// (`` user `<id>` ``) when the identifier or the token hash is taken.
    async fn create_user(
        &self,
        user: User,
        token: ApiToken,
        token_hash: String,
        audit: AuditRecord,
    ) -> Result<()>;
    /// Every user.
    async fn list_users(&self) -> Result<Vec<User>>;
    /// One user.
    async fn get_user(&self, identifier: &str) -> Result<Option<User>>;
    /// Who a token authenticates, by the token's hash: `None` for an unknown (or revoked, or
    /// replaced) token and for a token of a disabled user.
    async fn authenticate(&self, token_hash: &str) -> Result<Option<Credential>>;
    /// Writes a user's role, teams and disabled flag (by identifier; `false` when there is no
    /// such user). [`StoreError::InUse`] (nothing written) when it would leave no enabled admin.
    async fn update_user(&self, user: User, audit: AuditRecord) -> Result<bool>;
    /// Deletes a user and all its tokens; `false` when there is no such user.
    /// [`StoreError::InUse`] (nothing deleted) when it is the last enabled admin.
    async fn delete_user(&self, identifier: &str, audit: AuditRecord) -> Result<bool>;
    /// Adds a token to an existing user. [`StoreError::Conflict`] (`` token `<id>` ``) when the
    /// id or the hash is taken.
    async fn create_token(
        &self,
        token: ApiToken,
        token_hash: String,
        audit: AuditRecord,
    ) -> Result<()>;
    /// A user's tokens, oldest first.
    async fn list_tokens(&self, user: &str) -> Result<Vec<ApiToken>>;
    /// Gives a user's token a new value (hash) and prefix as of `at`, clearing `last_used_at`;
    /// the old value stops authenticating with the commit. `None` when the user has no such
    /// token.
    async fn rotate_token(
        &self,
        user: &str,
        id: &str,
        token_hash: String,
        prefix: String,
        at: DateTime<Utc>,
        audit: AuditRecord,
    ) -> Result<Option<ApiToken>>;
    /// Deletes (revokes) a user's token; `false` when the user has no such token.
    async fn delete_token(&self, user: &str, id: &str, audit: AuditRecord) -> Result<bool>;
    /// Records that the token with this hash authenticated a request at `at` (not audited:
    /// it changes no rights). Does nothing when the hash is no longer stored.
    async fn touch_token(&self, token_hash: &str, at: DateTime<Utc>) -> Result<()>;
    /// How many users exist.
    async fn count_users(&self) -> Result<u64>;
    /// Creates a team.
    async fn create_team(&self, team: Team, audit: AuditRecord) -> Result<()>;
    /// Every team.
    async fn list_teams(&self) -> Result<Vec<Team>>;
}

/// Uploaded plugin components: each version by name and digest, with its bytes.
#[async_trait::async_trait]
pub trait PluginRegistry: Send + Sync {
    /// Stores a plugin version; `false` (and nothing stored) when the name already has this
    /// digest.
    async fn put_plugin(
        &self,
        version: PluginVersion,
        bytes: Vec<u8>,
        audit: AuditRecord,
    ) -> Result<bool>;
    /// Every version of every plugin: by name, newest first within a name.
    async fn list_plugins(&self) -> Result<Vec<PluginVersion>>;
    /// The component bytes of one version.
    async fn plugin_bytes(&self, name: &str, digest: &str) -> Result<Option<Vec<u8>>>;
    /// Deletes every version of a plugin; `false` when it had none.
    async fn delete_plugin(&self, name: &str, audit: AuditRecord) -> Result<bool>;
    /// Removes one version that was stored while it compiled and then failed to, whether or not
    /// actions name the plugin (it never ran); `false` when it was not there.
    async fn withdraw_plugin_version(
        &self,
        name: &str,
        digest: &str,
        audit: AuditRecord,
    ) -> Result<bool>;
}

/// Self-service action definitions (each names the plugin that runs it).
#[async_trait::async_trait]
pub trait ActionDefinitions: Send + Sync {
    /// Creates or replaces an action definition.
    async fn put_action(
        &self,
        action: ActionRecord,
        write: Write,
        audit: AuditRecord,
    ) -> Result<()>;
    /// One action.
    async fn get_action(&self, identifier: &str) -> Result<Option<ActionRecord>>;
    /// Every action, by identifier.
    async fn list_actions(&self) -> Result<Vec<ActionRecord>>;
    /// Deletes an action; `false` when there was none.
    async fn delete_action(&self, identifier: &str, audit: AuditRecord) -> Result<bool>;
}

/// Runs and their life: intake, claims by workers, leases and hand-offs, approvals, and the
/// run's log lines.
#[async_trait::async_trait]
pub trait RunQueue: Send + Sync {
    /// Stores a new run with its audit record and, in the same transaction, counts its
    /// `insert.limits` ([`StoreError::OverLimit`], nothing stored, when it would pass one) and
    /// writes its `insert.events`. With `insert.claim`, the run is stored already claimed:
    /// owned by that worker until that time, as [`Self::claim_runs`] leaves a run (the caller
    /// sets `status` IN_PROGRESS and `attempts` 1), so the process that accepts a run and has
    /// a worker free executes it at once, without a second write to claim it.
    /// [`StoreError::Conflict`] (`` run `<id>` ``) when the id is taken.
    async fn insert_run(&self, run: RunRecord, audit: AuditRecord, insert: RunInsert)
    -> Result<()>;
    /// Stores a new run with its audit record ([`Self::insert_run`] with nothing else).
    async fn create_run(&self, run: RunRecord, audit: AuditRecord) -> Result<()> {
        self.insert_run(run, audit, RunInsert::default()).await
    }
    /// Stores a new run already claimed by `worker` until `lease_until` ([`Self::insert_run`]).
    async fn create_claimed_run(
        &self,
        run: RunRecord,
        audit: AuditRecord,
        worker: &str,
        lease_until: DateTime<Utc>,
    ) -> Result<()> {
        let claim = Some((worker.to_owned(), lease_until));
        let insert = RunInsert {
            claim,
            ..RunInsert::default()
        };
        self.insert_run(run, audit, insert).await
    }
    /// The definition of the action version `digest` ([`ActionVersion`]), stored by the
    /// first run that referred to it.
    async fn action_version(&self, digest: &str) -> Result<Option<String>>;
    /// One run.
    async fn get_run(&self, id: &str) -> Result<Option<RunRecord>>;
    /// Runs matching `filter`, newest first (`created_at DESC, id DESC`).
    async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>>;
    /// Atomically moves up to `limit` PENDING runs (oldest first: `created_at, id`) to
    /// IN_PROGRESS, owned by `worker` until `lease_until`, incrementing `attempts`, and returns
    /// them as they are now, oldest first. `updatedAt` is left to the worker's first
    /// [`Self::update_run`]. Two workers (or two replicas on Postgres) never claim the same
    /// run: SQLite claims through its single writer, Postgres with `FOR UPDATE SKIP LOCKED`.
    async fn claim_runs(
        &self,
        worker: &str,
        limit: usize,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<RunRecord>>;
    /// Extends to `lease_until` the lease of those of `run_ids` that `worker` still owns and
    /// that are still IN_PROGRESS (heartbeat); returns how many were extended.
    async fn renew_leases(
        &self,
        worker: &str,
        run_ids: &[String],
        lease_until: DateTime<Utc>,
    ) -> Result<u64>;
    /// Writes a run's mutable fields (status, statusLabel, link, summary, progress, error,
    /// affectedEntities, output, updatedAt, endedAt), with `audit` when given, only if its
    /// current status is not final ([`RunStatus::is_final`]). Returns `false` (and writes
    /// nothing, not even the audit record) when it was already final, e.g. cancelled meanwhile,
    /// or does not exist. Writing a final status clears the lease.
    async fn update_run(&self, run: &RunRecord, audit: Option<AuditRecord>) -> Result<bool> {
        self.update_run_with(run, audit, Vec::new()).await
    }
    /// [`Self::update_run`], writing `events` in the same transaction when the run was written.
    async fn update_run_with(
        &self,
        run: &RunRecord,
        audit: Option<AuditRecord>,
        events: Vec<NewEvent>,
    ) -> Result<bool>;
    /// IN_PROGRESS runs whose worker died: their lease ended before `now` (or they have none,
    /// so no worker will ever finish them), oldest first, for the caller to fail as
    /// interrupted or re-queue.
    async fn expired_runs(&self, now: DateTime<Utc>) -> Result<Vec<RunRecord>>;
    /// Puts an IN_PROGRESS run back to PENDING (to retry it after an interruption), clearing
    /// its lease; `false` when it is not IN_PROGRESS.
    async fn requeue_run(&self, id: &str) -> Result<bool>;
    /// Hands an IN_PROGRESS run that `worker` owns to an external system until `deadline`
    /// (its lease becomes the deadline and no worker renews it); `false` when `worker` no
    /// longer owns it.
    async fn hand_off_run(&self, id: &str, worker: &str, deadline: DateTime<Utc>) -> Result<bool>;
    /// Records an approver's decision on a run with its audit record;
    /// [`StoreError::Conflict`] when that approver already decided.
    async fn decide_run(&self, decision: Approval, audit: AuditRecord) -> Result<()>;
    /// The decisions on a run, oldest first.
    async fn approvals(&self, run_id: &str) -> Result<Vec<Approval>>;
    /// How many runs have `status`.
    async fn count_runs(&self, status: RunStatus) -> Result<u64>;
    /// Appends log lines in one transaction. A `(run_id, seq)` that is already stored (or
    /// repeated in `lines`) fails the whole call with [`StoreError::Conflict`] and stores none
    /// of the lines.
    async fn append_run_logs(&self, lines: Vec<RunLogLine>) -> Result<()>;
    /// Appends a run's last log lines and writes its end ([`Self::update_run_with`] without an
    /// audit record) together: one commit instead of two on every run's path.
    async fn finish_run(
        &self,
        run: &RunRecord,
        lines: Vec<RunLogLine>,
        events: Vec<NewEvent>,
    ) -> Result<bool>;
    /// The highest `seq` of a run's log lines; 0 when it has none.
    async fn last_log_seq(&self, run_id: &str) -> Result<i64>;
    /// The log lines of a run with `seq > after`, by seq, at most `limit`.
    async fn run_logs(&self, run_id: &str, after: i64, limit: usize) -> Result<Vec<RunLogLine>>;
}

/// The audit log: attempts that changed nothing, and reading the log. (Every mutation in the
/// other traits writes its own audit record in its own transaction.)
#[async_trait::async_trait]
pub trait AuditTrail: Send + Sync {
    /// Records an attempt that changed nothing (a failure or a denial).
    async fn record(&self, audit: AuditRecord) -> Result<()>;
    /// Audit entries, newest first.
    async fn audit_log(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>>;
}

/// What replicas share besides the data: the outbox of events (written by the other traits'
/// mutations in their own transactions, consumed here with leases, as runs are) and the
/// leadership of periodic work that must run on one replica at a time.
#[async_trait::async_trait]
pub trait Coordination: Send + Sync {
    /// Writes events that no other write carries (in a transaction of their own).
    async fn emit(&self, events: Vec<NewEvent>) -> Result<()>;
    /// Claims up to `limit` events that are due at `now` (new, retried, or claimed by a
    /// consumer whose lease ended), oldest first, leasing them until `lease_until`. Two
    /// consumers never hold the same event at once.
    async fn claim_events(
        &self,
        limit: usize,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<OutboxEvent>>;
    /// Removes consumed events, appending `audit` in the same transaction.
    async fn ack_events(&self, ids: Vec<i64>, audit: Vec<AuditRecord>) -> Result<()>;
    /// Makes a claimed event due again at `at` (a delivery to retry later).
    async fn retry_event(&self, id: i64, at: DateTime<Utc>) -> Result<()>;
    /// Events not consumed yet.
    async fn outbox_backlog(&self) -> Result<u64>;
    /// Takes or keeps the leadership of `role` for `owner` until `until`; `false` while another
    /// owner holds it (its term ends after `now`). One replica at a time does the role's work.
    async fn lead(
        &self,
        role: &str,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool>;
}

/// The event an entity's audit record describes (a successful CREATE, UPDATE or DELETE of an
/// entity), which the backends write with the change: automations react to it.
pub(crate) fn entity_event(audit: &AuditRecord) -> Option<NewEvent> {
    if audit.resource_type != "entity" || audit.status != AuditStatus::Success {
        return None;
    }
    let kind = match audit.operation.as_str() {
        "CREATE" => "ENTITY_CREATED",
        "UPDATE" => "ENTITY_UPDATED",
        "DELETE" => "ENTITY_DELETED",
        _ => return None,
    };
    let (blueprint, identifier) = audit.resource_id.split_once('/')?;
    Some(NewEvent {
        topic: NewEvent::ENTITY,
        body: serde_json::json!({
            "kind": kind,
            "blueprint": audit.blueprint.as_deref().unwrap_or(blueprint),
            "identifier": identifier,
            "before": audit.before,
            "after": audit.after,
            "runId": audit.run_id,
        }),
    })
}

/// The limit of `limits` a new run would pass with `concurrent` unended runs and `today` runs in
/// the last 24 hours already counted (counts a backend skips are `0`).
pub(crate) fn over_limit(limits: RunLimits, concurrent: u64, today: u64) -> Result<()> {
    let checks = [
        (RunLimit::Concurrent, limits.concurrent, concurrent),
        (RunLimit::PerDay, limits.per_day, today),
    ];
    for (limit, max, current) in checks {
        if let Some(max) = max
            && current >= u64::from(max)
        {
            return Err(StoreError::OverLimit {
                limit,
                max,
                current,
            });
        }
    }
    Ok(())
}

/// Opens the store a URL names: `sqlite://PATH` (or a bare path ending in `.db`) or
/// `postgres://...`, applying migrations.
pub async fn open(url: &str) -> Result<Arc<dyn Store>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::PostgresStore::open(url).await?))
    } else {
        let path = url.strip_prefix("sqlite://").unwrap_or(url);
        Ok(Arc::new(sqlite::SqliteStore::open(path.as_ref()).await?))
    }
}

/// A failure that did not come from the database itself (or a SQLite one, whose text says it all).
pub(crate) fn db(e: impl std::fmt::Display) -> StoreError {
    StoreError::Database(e.to_string())
}

/// Why a blueprint cannot be deleted without its entities ([`StoreError::InUse`]).
pub(crate) fn blueprint_in_use(identifier: &str, count: i64) -> StoreError {
    StoreError::InUse(format!(
        "blueprint `{identifier}` has {count} entities; delete them first or pass \
         ?delete_entities=true"
    ))
}

/// Why a plugin cannot be deleted while actions use it ([`StoreError::InUse`]).
pub(crate) fn plugin_in_use(name: &str, users: i64) -> StoreError {
    StoreError::InUse(format!(
        "plugin `{name}` is used by {users} action(s); change or delete them first"
    ))
}

/// Why a user cannot be demoted, disabled or deleted ([`StoreError::InUse`]): the same words from
/// both backends.
pub(crate) fn last_admin(identifier: &str) -> String {
    format!(
        "user `{identifier}` is the last enabled admin; make another user an admin first, so \
         that someone can still manage users"
    )
}

/// The current time at the precision the store keeps (milliseconds), so that what a write
/// returns equals what a later read returns.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::SubsecRound;
    chrono::Utc::now().trunc_subsecs(3)
}
