//! The host-side shapes of what a run receives and returns (the WIT types with JSON parsed).

use crate::bindings::types as wit;
use crate::events::Link;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A catalog entity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entity {
    /// Unique within its blueprint.
    pub identifier: String,
    /// The blueprint it belongs to.
    pub blueprint: String,
    /// Human-friendly name.
    #[serde(default)]
    pub title: Option<String>,
    /// Owning teams.
    #[serde(default)]
    pub team: Vec<String>,
    /// Properties, a JSON object.
    #[serde(default = "empty_object")]
    pub properties: Value,
    /// Relations, a JSON object.
    #[serde(default = "empty_object")]
    pub relations: Value,
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

/// The user who triggered a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Identifier in Portico.
    pub identifier: String,
    /// E-mail, when known.
    #[serde(default)]
    pub email: Option<String>,
    /// Roles.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Teams.
    #[serde(default)]
    pub teams: Vec<String>,
}

/// An action's operation, as in Port's `trigger.operation`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operation {
    /// Creates something.
    #[serde(rename = "CREATE")]
    Create,
    /// Changes an existing entity.
    #[serde(rename = "DAY-2")]
    DayTwo,
    /// Deletes an existing entity.
    #[serde(rename = "DELETE")]
    Delete,
}

impl Operation {
    /// As Port writes it in `trigger.operation`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::DayTwo => "DAY-2",
            Operation::Delete => "DELETE",
        }
    }
}

/// Everything a plugin receives for one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRequest {
    /// The run's id.
    pub run_id: String,
    /// The action's identifier.
    pub action: String,
    /// The action's operation.
    pub operation: Operation,
    /// Validated user inputs.
    pub inputs: Value,
    /// The entity a DAY-2 or DELETE run acts on.
    pub entity: Option<Entity>,
    /// Who triggered the run.
    pub triggered_by: User,
    /// The action's static plugin config.
    pub config: Value,
}

/// How a successful run ended.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunOutcome {
    /// One-line summary.
    pub summary: Option<String>,
    /// Links: those added during the run, then those returned.
    pub links: Vec<Link>,
    /// Whatever JSON the plugin returned.
    pub output: Option<Value>,
}

/// The request as the contract's `run-request`.
pub(crate) fn request_to_wit(request: RunRequest) -> wit::RunRequest {
    wit::RunRequest {
        run_id: request.run_id,
        action: request.action,
        operation: match request.operation {
            Operation::Create => wit::Operation::Create,
            Operation::DayTwo => wit::Operation::DayTwo,
            Operation::Delete => wit::Operation::Delete,
        },
        inputs: request.inputs.to_string(),
        entity: request.entity.map(entity_to_wit),
        triggered_by: wit::User {
            identifier: request.triggered_by.identifier,
            email: request.triggered_by.email,
            roles: request.triggered_by.roles,
            teams: request.triggered_by.teams,
        },
        config: request.config.to_string(),
    }
}

/// An entity as the contract's `entity` (JSON as text).
pub(crate) fn entity_to_wit(entity: Entity) -> wit::Entity {
    wit::Entity {
        identifier: entity.identifier,
        blueprint: entity.blueprint,
        title: entity.title,
        team: entity.team,
        properties: entity.properties.to_string(),
        relations: entity.relations.to_string(),
    }
}
