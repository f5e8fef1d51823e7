//! The host-side shapes of what a run receives and returns (the WIT types with JSON parsed).

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
