//! Action definitions in Port's v2 shape with a `WASM` invocation method: the types a stored
//! definition reads into. Checking one when it is written is [`crate::action_check`].

use portico_runtime::{Capabilities, Limits};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// An action as the API reads and writes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActionDefinition {
    /// Unique id.
    pub identifier: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Icon name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
    /// What it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// How it is triggered and what it asks for.
    pub trigger: Trigger,
    /// The plugin that runs it, with its config, grant and limits.
    pub invocation_method: InvocationMethod,
    /// `false`, `true`, or `{"type": "ANY" | "ALL"}` (enforced with the guardrails).
    #[serde(default = "no_approval")]
    pub required_approval: Value,
    /// Where approval requests are sent (with the guardrails).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_notification: Option<Value>,
    /// Whether users see it.
    #[serde(default = "yes")]
    pub publish: bool,
    /// Who may run and approve it.
    #[serde(default)]
    pub permissions: Permissions,
    /// What happens to a run its host died in the middle of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Retry>,
    /// How long a run may wait for approval before it is declined as `expired` (`24h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_timeout: Option<String>,
    /// Consumption limits, checked when a run is requested (429 over a limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quotas: Option<Quotas>,
    /// Webhooks the host calls when its runs reach these events.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notifications: Vec<Notification>,
}

/// `quotas`: each limit absent means no limit of that kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Quotas {
    /// Runs of this action one user may have not yet ended (waiting, pending or in progress).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent_runs_per_user: Option<u32>,
    /// Runs of this action one user may request in 24 hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_runs_per_user_per_day: Option<u32>,
    /// Live (not expired) entities of the action's blueprint one team may own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_active_entities_per_team: Option<u32>,
}

/// One webhook: `{url, events, format}`; `approvalNotification` has the same shape without
/// `events`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Notification {
    /// `webhook` (the only kind).
    #[serde(rename = "type", default = "webhook")]
    pub kind: String,
    /// Where to POST.
    pub url: String,
    /// Which events: RUN_CREATED, WAITING_FOR_APPROVAL, IN_PROGRESS, SUCCESS, FAILURE,
    /// CANCELLED, DECLINED.
    #[serde(default)]
    pub events: Vec<String>,
    /// `json` (the run and the event) or `slack` (`{text}`).
    #[serde(default = "json_format")]
    pub format: String,
}

fn webhook() -> String {
    "webhook".into()
}

fn json_format() -> String {
    "json".into()
}

/// The events a notification may name.
pub const NOTIFICATION_EVENTS: &[&str] = &[
    "RUN_CREATED",
    "WAITING_FOR_APPROVAL",
    "IN_PROGRESS",
    "SUCCESS",
    "FAILURE",
    "CANCELLED",
    "DECLINED",
];

/// `retry`: `{"onInterrupt": true}` runs an interrupted run again (the backend must be
/// idempotent), up to [`Retry::MAX_ATTEMPTS`] attempts in all; otherwise it fails as `interrupted`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Retry {
    /// Run it again when its host stopped while it was in progress.
    #[serde(default)]
    pub on_interrupt: bool,
}

impl Retry {
    /// Attempts in all, the first included, before an interrupted run is failed anyway.
    pub const MAX_ATTEMPTS: i32 = 3;
}

fn no_approval() -> Value {
    Value::Bool(false)
}

fn yes() -> bool {
    true
}

/// `trigger`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Trigger {
    /// `self-service` (users run it) or `automation` (an event runs it).
    #[serde(rename = "type")]
    pub kind: String,
    /// `CREATE`, `DAY-2` or `DELETE` (self-service only).
    #[serde(default)]
    pub operation: String,
    /// For automations: the event that runs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<AutomationEvent>,
    /// The blueprint the action creates or runs on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blueprint_identifier: Option<String>,
    /// `{properties, required, order, steps}`.
    #[serde(default = "no_inputs")]
    pub user_inputs: Value,
    /// Self-service: which entities show a DAY-2/DELETE action (a search body). Automations:
    /// `{type: "JQ", expressions: [...], combinator: "and" | "or"}` over the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Value>,
}

/// `trigger.event` of an automation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AutomationEvent {
    /// One of [`AUTOMATION_EVENTS`].
    #[serde(rename = "type")]
    pub kind: String,
    /// For entity and timer events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blueprint_identifier: Option<String>,
    /// For run events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_identifier: Option<String>,
    /// For TIMER_PROPERTY_EXPIRED: the timer property.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property_identifier: Option<String>,
}

/// The events an automation may react to.
pub const AUTOMATION_EVENTS: &[&str] = &[
    "ENTITY_CREATED",
    "ENTITY_UPDATED",
    "ENTITY_DELETED",
    "ANY_ENTITY_CHANGE",
    "TIMER_PROPERTY_EXPIRED",
    "RUN_CREATED",
    "RUN_UPDATED",
    "ANY_RUN_CHANGE",
];

fn no_inputs() -> Value {
    json!({ "properties": {}, "required": [] })
}

/// `invocationMethod` of type `WASM`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InvocationMethod {
    /// `WASM`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A plugin name (its newest version) or `name@sha256:<digest>`.
    pub plugin: String,
    /// Static JSON handed to the plugin.
    #[serde(default = "empty_object")]
    pub config: Value,
    /// What the plugin may reach.
    #[serde(default)]
    pub capabilities: Capabilities,
    /// Time, memory and log limits.
    #[serde(default)]
    pub limits: Limits,
}

fn empty_object() -> Value {
    json!({})
}

/// Who may do something: any of these roles, users or team members.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Audience {
    /// Roles (`admin`, `member`).
    #[serde(default)]
    pub roles: Vec<String>,
    /// User identifiers.
    #[serde(default)]
    pub users: Vec<String>,
    /// Team names.
    #[serde(default)]
    pub teams: Vec<String>,
    /// For DAY-2/DELETE: members of the entity's owning teams.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub owned_by_team: bool,
    /// Port's policy: catalog queries and jq conditions deciding who may execute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<crate::policy::Policy>,
}

/// `permissions`: who may execute and who may approve.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Permissions {
    /// Who may trigger runs.
    #[serde(default = "everyone")]
    pub execute: Audience,
    /// Who may approve runs.
    #[serde(default = "admins")]
    pub approve: Audience,
}

fn everyone() -> Audience {
    Audience {
        roles: vec!["admin".into(), "member".into()],
        ..Audience::default()
    }
}

fn admins() -> Audience {
    Audience {
        roles: vec!["admin".into()],
        ..Audience::default()
    }
}

impl Default for Permissions {
    fn default() -> Self {
        Self {
            execute: everyone(),
            approve: admins(),
        }
    }
}

impl ActionDefinition {
    /// The plugin's name, without any `@sha256:...` version.
    pub fn plugin_name(&self) -> &str {
        self.invocation_method
            .plugin
            .split_once('@')
            .map_or(&self.invocation_method.plugin, |(name, _)| name)
    }
}
