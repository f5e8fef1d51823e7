//! What Portico stores: blueprints, entities, users and teams, and the audit log.

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
    /// When it was created.
    pub created_at: DateTime<Utc>,
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
