//! What Portico stores: blueprints, entities, users and teams, actions and their runs, and the
//! audit log.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A blueprint (entity type). `schema` and `relations` are kept as the API received them; the
/// catalog validates them before they get here.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Blueprint {
    /// Unique id, e.g. `service`.
    pub identifier: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Icon name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
    /// What it models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `{properties, required}`.
    pub schema: Value,
    /// `{name: {target, title, required, many}}`.
    pub relations: Value,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Who created it.
    pub created_by: String,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Who changed it last.
    pub updated_by: String,
}

/// A catalog entity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entity {
    /// Unique within its blueprint.
    pub identifier: String,
    /// Its blueprint.
    pub blueprint: String,
    /// Display name.
    pub title: Option<String>,
    /// Icon name.
    pub icon: Option<String>,
    /// Owning teams.
    pub team: Vec<String>,
    /// Property values (a JSON object).
    pub properties: Value,
    /// Relation name to identifier or list of identifiers (a JSON object).
    pub relations: Value,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Who created it.
    pub created_by: String,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Who changed it last.
    pub updated_by: String,
}

impl Entity {
    /// Every `(relation, target blueprint, target identifier)` this entity points at, given the
    /// relation name to target blueprint map of its blueprint.
    pub fn relation_targets(&self, targets: &dyn Fn(&str) -> Option<String>) -> Vec<Relation> {
        let Some(map) = self.relations.as_object() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (name, value) in map {
            let Some(target_blueprint) = targets(name) else {
                continue;
            };
            let ids: Vec<&str> = match value {
                Value::String(id) => vec![id.as_str()],
                Value::Array(ids) => ids.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            for id in ids {
                out.push(Relation {
                    name: name.clone(),
                    target: EntityRef {
                        blueprint: target_blueprint.clone(),
                        identifier: id.to_owned(),
                    },
                });
            }
        }
        out
    }
}

/// One edge of the relation graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Relation {
    /// The relation's name on the source blueprint.
    pub name: String,
    /// The entity it points at.
    pub target: EntityRef,
}

/// Names an entity.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EntityRef {
    /// Its blueprint.
    pub blueprint: String,
    /// Its identifier.
    pub identifier: String,
}

/// A user's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Manages users, teams, blueprints and actions; sees everything.
    Admin,
    /// Uses the catalog and runs actions.
    Member,
}

impl Role {
    /// `admin` or `member`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Member => "member",
        }
    }

    /// Parses `admin` or `member`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "admin" => Some(Self::Admin),
            "member" => Some(Self::Member),
            _ => None,
        }
    }
}

/// A user. Tokens are stored only as hashes, elsewhere.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// Unique id, e.g. `alice`.
    pub identifier: String,
    /// E-mail.
    pub email: Option<String>,
    /// Role.
    pub role: Role,
    /// Team names.
    pub teams: Vec<String>,
    /// A disabled user keeps its data but none of its tokens works.
    #[serde(default)]
    pub disabled: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// A user's API token, without its value: the value is shown once and stored only as a hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiToken {
    /// Unique id, e.g. `tok_5f0c2a9b81d4e3c7`; names the token in URLs and the audit log.
    pub id: String,
    /// The user it authenticates.
    pub user: String,
    /// A label chosen by its owner, e.g. `ci`.
    pub name: Option<String>,
    /// The first characters of the value, so its owner can tell tokens apart; unknown for
    /// tokens created before tokens were listed.
    pub prefix: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When its value was last replaced.
    pub rotated_at: Option<DateTime<Utc>>,
    /// When it last authenticated a request, to the minute (see `Store::touch_token`).
    pub last_used_at: Option<DateTime<Utc>>,
}

/// What a token's hash authenticates: an enabled user, and when the token was last used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    /// The token's user.
    pub user: User,
    /// The token's id.
    pub token_id: String,
    /// When the token was last used, as stored.
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A team.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Team {
    /// Unique name, e.g. `platform`.
    pub name: String,
    /// What it does.
    pub description: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// Whether an audited attempt worked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum AuditStatus {
    /// It happened.
    Success,
    /// It was refused or failed; `reason` says why.
    Failure,
}

/// One audit log entry: who did what to which resource, with the state before and after.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    /// Assigned by the store; 0 before it is stored.
    pub id: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// Who (a user identifier, or `run:<id>` for a plugin's writes).
    pub actor: String,
    /// `CREATE`, `UPDATE`, `DELETE`, ...
    pub operation: String,
    /// `blueprint`, `entity`, `user`, `team`, ...
    pub resource_type: String,
    /// The resource's identifier (`blueprint/identifier` for entities).
    pub resource_id: String,
    /// The blueprint of an entity, for filtering what members may see.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blueprint: Option<String>,
    /// The run that made the change, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// State before.
    pub before: Option<Value>,
    /// State after.
    pub after: Option<Value>,
    /// Success or failure.
    pub status: AuditStatus,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Where the request came from (`api`, `run`, ...).
    pub origin: String,
}

impl AuditRecord {
    /// A refused or failed attempt made now by `actor`, with the reason shown to whoever reads
    /// the audit log.
    pub fn failure(
        actor: &str,
        origin: &str,
        operation: &str,
        resource_type: &str,
        resource_id: &str,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            status: AuditStatus::Failure,
            reason: Some(reason.into()),
            ..Self::success(actor, origin, operation, resource_type, resource_id)
        }
    }

    /// A successful change made now by `actor` through `origin`; set `before`, `after`,
    /// `blueprint` or `run_id` on the result as the change needs.
    pub fn success(
        actor: &str,
        origin: &str,
        operation: &str,
        resource_type: &str,
        resource_id: &str,
    ) -> Self {
        Self {
            id: 0,
            at: crate::now(),
            actor: actor.into(),
            operation: operation.into(),
            resource_type: resource_type.into(),
            resource_id: resource_id.into(),
            blueprint: None,
            run_id: None,
            before: None,
            after: None,
            status: AuditStatus::Success,
            reason: None,
            origin: origin.into(),
        }
    }
}

/// Filters for reading the audit log. Every field narrows the result.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    /// Resource type.
    pub resource_type: Option<String>,
    /// Resource identifier.
    pub resource_id: Option<String>,
    /// Actor.
    pub actor: Option<String>,
    /// Run id.
    pub run_id: Option<String>,
    /// At or after.
    pub from: Option<DateTime<Utc>>,
    /// Before.
    pub to: Option<DateTime<Utc>>,
    /// Only entries a member may see: these are the blueprints whose entities they may read
    /// (all, for now) and the actor whose own entries they always see. `None`: no restriction.
    pub visible_to: Option<String>,
    /// Entries with an id below this (paging backwards from the newest).
    pub before_id: Option<i64>,
    /// At most this many.
    pub limit: usize,
}

/// One uploaded version of a plugin (the component bytes are stored beside it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginVersion {
    /// The plugin's name, e.g. `scaffold-service`.
    pub name: String,
    /// `sha256:<hex>` of the component.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    /// When it was uploaded.
    pub created_at: DateTime<Utc>,
    /// Who uploaded it.
    pub created_by: String,
}

/// A stored action definition. `data` is the definition as the API shows it (Port's v2 shape,
/// with `permissions`); `plugin` is the plugin name it invokes, kept apart so that deleting a
/// plugin can tell whether an action still uses it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionRecord {
    /// Unique id.
    pub identifier: String,
    /// The plugin's name (without any `@digest`).
    pub plugin: String,
    /// The whole definition.
    pub data: Value,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// Where a run is in its life, spelled as Port spells it (`IN_PROGRESS`) in the database and
/// on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunStatus {
    /// Held until enough approvers approve it.
    WaitingForApproval,
    /// Accepted and queued for a worker.
    Pending,
    /// A worker (or an external system it was handed to) holds it.
    InProgress,
    /// Ended well.
    Success,
    /// Ended badly; `error` says how.
    Failure,
    /// Stopped by a user.
    Cancelled,
    /// Refused by an approver.
    Declined,
}

impl RunStatus {
    /// Every status, in the order of a run's life.
    pub const ALL: [RunStatus; 7] = [
        Self::WaitingForApproval,
        Self::Pending,
        Self::InProgress,
        Self::Success,
        Self::Failure,
        Self::Cancelled,
        Self::Declined,
    ];

    /// The statuses a run never leaves.
    pub const FINAL: [RunStatus; 4] = [
        Self::Success,
        Self::Failure,
        Self::Cancelled,
        Self::Declined,
    ];

    /// The stored and displayed spelling, e.g. `IN_PROGRESS`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WaitingForApproval => "WAITING_FOR_APPROVAL",
            Self::Pending => "PENDING",
            Self::InProgress => "IN_PROGRESS",
            Self::Success => "SUCCESS",
            Self::Failure => "FAILURE",
            Self::Cancelled => "CANCELLED",
            Self::Declined => "DECLINED",
        }
    }

    /// Whether a run in this status never changes again.
    pub fn is_final(self) -> bool {
        Self::FINAL.contains(&self)
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A text that is not one of [`RunStatus::ALL`]'s spellings.
#[derive(Debug, thiserror::Error)]
#[error("unknown run status `{0}`")]
pub struct UnknownStatus(pub String);

impl std::str::FromStr for RunStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

/// One run of an action: what was asked, by whom, and how it is going.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    /// Unique id chosen by the caller, e.g. `r_01HV...`.
    pub id: String,
    /// The action's identifier.
    pub action: String,
    /// The blueprint the action belongs to, if any.
    pub blueprint: Option<String>,
    /// The entity a DAY-2 or DELETE run acts on.
    pub entity: Option<String>,
    /// The inputs as users may see them (secrets already redacted by the caller).
    pub properties: Value,
    /// Where it is in its life.
    pub status: RunStatus,
    /// A short human-readable status.
    pub status_label: Option<String>,
    /// Links, as JSON objects `{title, url}`.
    pub link: Vec<Value>,
    /// What happened, in a sentence.
    pub summary: Option<String>,
    /// `{percent, label}`.
    pub progress: Option<Value>,
    /// `{kind, message}` when it failed.
    pub error: Option<Value>,
    /// The entities it changed (a JSON array).
    pub affected_entities: Value,
    /// What the plugin returned.
    pub output: Option<Value>,
    /// `API`, `UI` or `AUTOMATION`.
    pub source: String,
    /// Who asked for it.
    pub created_by: String,
    /// When it was accepted.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// When it reached a final status.
    pub ended_at: Option<DateTime<Utc>>,
    /// How many times a worker claimed it.
    pub attempts: i32,
    /// What the worker needs to execute it; opaque to the store. It may hold what `properties`
    /// redacts, so it is never serialized (an API answer built from a run cannot leak it).
    #[serde(skip)]
    pub payload: JsonText,
    /// Whether an external system holds the run ([`crate::RunQueue::hand_off_run`]); its lease is
    /// then the deadline for that system's report. Read-only: set by the store.
    #[serde(default, skip_serializing)]
    pub external: bool,
}

impl RunRecord {
    /// A run just accepted: `PENDING`, no outcome yet, created and updated now, never claimed.
    /// Callers fill in its blueprint, entity, inputs and payload.
    pub fn accepted(id: &str, action: &str, source: &str, created_by: &str) -> Self {
        let now = crate::now();
        Self {
            id: id.into(),
            action: action.into(),
            blueprint: None,
            entity: None,
            properties: Value::Object(Default::default()),
            status: RunStatus::Pending,
            status_label: None,
            link: Vec::new(),
            summary: None,
            progress: None,
            error: None,
            affected_entities: Value::Array(Vec::new()),
            output: None,
            source: source.into(),
            created_by: created_by.into(),
            created_at: now,
            updated_at: now,
            ended_at: None,
            attempts: 0,
            external: false,
            payload: JsonText::default(),
        }
    }

    /// Whether it reached a status it never leaves.
    pub fn is_final(&self) -> bool {
        self.status.is_final()
    }
}

/// JSON kept as text. A run's payload is written once when the run is accepted and read back
/// only by the worker that claims it (the accepting process hands it over in memory), so it is
/// never built into a tree on the way to the database.
#[derive(Clone, Debug)]
pub struct JsonText(String);

impl JsonText {
    /// `value` serialized.
    pub fn of<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Self> {
        serde_json::to_string(value).map(Self)
    }

    /// Text read back from the database (written by [`JsonText::of`]).
    pub fn from_stored(text: String) -> Self {
        Self(text)
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text read as `T`.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> serde_json::Result<T> {
        serde_json::from_str(&self.0)
    }

    /// The text read as a JSON value (`null` if it is not JSON).
    pub fn value(&self) -> Value {
        self.parse().unwrap_or(Value::Null)
    }
}

impl Default for JsonText {
    fn default() -> Self {
        Self("null".into())
    }
}

impl From<Value> for JsonText {
    fn from(value: Value) -> Self {
        Self(value.to_string())
    }
}

/// Equal when the JSON is (Postgres stores `jsonb`, which does not keep the text as written).
impl PartialEq for JsonText {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0 || self.value() == other.value()
    }
}

/// One approver's decision on a run waiting for approval.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    /// The run.
    pub run_id: String,
    /// The approver's user identifier.
    pub approver: String,
    /// `APPROVE` or `DECLINE`.
    pub decision: String,
    /// Why, in the approver's words.
    pub description: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
}

/// One line of a run's log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunLogLine {
    /// The run.
    pub run_id: String,
    /// Its position in the run's log, assigned by the caller; unique per run.
    pub seq: i64,
    /// When it was written.
    pub at: DateTime<Utc>,
    /// `INFO`, `WARN`, `ERROR`, ...
    pub level: String,
    /// The text.
    pub message: String,
}

/// Filters for listing runs. Every field narrows the result.
#[derive(Clone, Debug, Default)]
pub struct RunFilter {
    /// The action's identifier.
    pub action: Option<String>,
    /// The status.
    pub status: Option<RunStatus>,
    /// Who asked for it.
    pub created_by: Option<String>,
    /// The entity it acts on.
    pub entity: Option<String>,
    /// A run id: only runs listed after it, that is created before it (the order is
    /// `created_at DESC, id DESC`). An id that does not exist gives an empty list.
    pub before: Option<String>,
    /// At most this many.
    pub limit: usize,
}

/// An event to publish, written in the same transaction as the change that caused it (the
/// outbox), and consumed by whichever replica claims it.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    /// What consumes it: [`NewEvent::ENTITY`], [`NewEvent::RUN`] or [`NewEvent::NOTIFY`].
    pub topic: &'static str,
    /// What happened, as its consumer reads it.
    pub body: Value,
}

impl NewEvent {
    /// An entity was created, updated or deleted (written by the store itself).
    pub const ENTITY: &'static str = "entity";
    /// A run was created or changed status (for automations on runs).
    pub const RUN: &'static str = "run";
    /// A notification to deliver to one webhook.
    pub const NOTIFY: &'static str = "notify";
}

/// An event claimed from the outbox ([`crate::Coordination::claim_events`]).
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxEvent {
    /// Its position in the outbox: unique for the life of the database, so ids derived from it
    /// (an automation's run id) are the same on every replica and every attempt.
    pub id: i64,
    /// Its topic ([`NewEvent::topic`]).
    pub topic: String,
    /// Its body.
    pub body: Value,
    /// When it was written.
    pub created_at: DateTime<Utc>,
    /// Claims so far, this one included.
    pub attempts: i32,
}

/// Limits on the runs one user has of one action, counted in the transaction that stores a
/// new run, so that racing requests cannot pass them together ([`crate::StoreError::OverLimit`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunLimits {
    /// Runs not ended yet (waiting for approval, pending or in progress).
    pub concurrent: Option<u32>,
    /// Runs created in the 24 hours before the new run's `created_at`.
    pub per_day: Option<u32>,
}

impl RunLimits {
    /// Whether there is anything to count.
    pub fn is_empty(&self) -> bool {
        self.concurrent.is_none() && self.per_day.is_none()
    }
}

/// Which of [`RunLimits`] a new run would pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunLimit {
    /// [`RunLimits::concurrent`].
    Concurrent,
    /// [`RunLimits::per_day`].
    PerDay,
}

/// How a new run is stored, besides its record and audit entry.
#[derive(Clone, Debug, Default)]
pub struct RunInsert {
    /// Stored already claimed by this worker until this time.
    pub claim: Option<(String, DateTime<Utc>)>,
    /// Limits counted in the same transaction.
    pub limits: RunLimits,
    /// Events written with it.
    pub events: Vec<NewEvent>,
    /// The action version its payload refers to, stored with it unless already stored
    /// ([`crate::RunQueue::action_version`]).
    pub version: Option<std::sync::Arc<ActionVersion>>,
}

/// An action's definition as runs were accepted with it, stored once and named by a digest of
/// its content: a run's payload refers to it instead of carrying a copy (about 450 of a no-op
/// run's 700 bytes of payload). Never changed nor deleted, so a digest read once can be kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionVersion {
    /// The digest of `definition` that names it.
    pub digest: String,
    /// The definition, as JSON.
    pub definition: String,
}
