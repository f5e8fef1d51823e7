//! Action definitions in Port's v2 shape with a `WASM` invocation method, checked when they are
//! written so that a run never finds out too late that its action is broken: an unknown plugin,
//! a grant naming a missing blueprint, a malformed input schema, a bad jq expression or a limit
//! out of bounds is a 422 naming its path.

use crate::inputs;
use portico_catalog::Violation;
use portico_runtime::{Capabilities, Limits, Runtime};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// What is wrong with an automation's `event` and `condition`.
fn check_automation(trigger: &Trigger, known: &Known<'_>, problem: &mut impl FnMut(&str, String)) {
    let Some(event) = &trigger.event else {
        problem(
            "trigger.event",
            "required for an automation: {type, blueprintIdentifier | actionIdentifier}".into(),
        );
        return;
    };
    if !AUTOMATION_EVENTS.contains(&event.kind.as_str()) {
        problem(
            "trigger.event.type",
            format!(
                "`{}` is not one of {}",
                event.kind,
                AUTOMATION_EVENTS.join(", ")
            ),
        );
    }
    if event.kind.contains("RUN") {
        if event.action_identifier.is_none() {
            problem(
                "trigger.event.actionIdentifier",
                "required for run events".into(),
            );
        }
    } else {
        match &event.blueprint_identifier {
            None => problem(
                "trigger.event.blueprintIdentifier",
                "required for entity and timer events".into(),
            ),
            Some(bp) if !known.blueprints.contains(bp) => problem(
                "trigger.event.blueprintIdentifier",
                format!("blueprint `{bp}` does not exist"),
            ),
            Some(_) => {}
        }
    }
    if event.kind == "TIMER_PROPERTY_EXPIRED" && event.property_identifier.is_none() {
        problem(
            "trigger.event.propertyIdentifier",
            "required: the timer property whose expiry runs the automation".into(),
        );
    }
    if let Some(condition) = &trigger.condition {
        let expressions = condition.get("expressions").and_then(Value::as_array);
        match expressions {
            None => problem(
                "trigger.condition.expressions",
                "required: a list of jq expressions".into(),
            ),
            Some(list) => {
                for (i, code) in list.iter().enumerate() {
                    let checked = code.as_str().ok_or_else(|| "must be a string".to_owned());
                    if let Err(e) =
                        checked.and_then(|code| crate::jq::check(code).map_err(String::from))
                    {
                        problem(&format!("trigger.condition.expressions[{i}]"), e);
                    }
                }
            }
        }
        if let Some(c) = condition.get("combinator").and_then(Value::as_str)
            && c != "and"
            && c != "or"
        {
            problem(
                "trigger.condition.combinator",
                format!("`{c}` is not and or or"),
            );
        }
    }
}

/// What is wrong with one notification (`{type, url, events, format}`).
fn check_notification(path: &str, hook: &Value) -> Vec<Violation> {
    let mut problems = Vec::new();
    let mut problem = |field: &str, message: String| {
        problems.push(Violation {
            path: format!("{path}{field}"),
            message,
        })
    };
    let hook: Notification = match serde_json::from_value(hook.clone()) {
        Ok(h) => h,
        Err(e) => {
            problem("", e.to_string());
            return problems;
        }
    };
    if hook.kind != "webhook" {
        problem(
            ".type",
            format!("`{}` is not supported; use `webhook`", hook.kind),
        );
    }
    if !(hook.url.starts_with("https://") || hook.url.starts_with("http://")) {
        problem(".url", "must be an http:// or https:// URL".into());
    }
    if !matches!(hook.format.as_str(), "json" | "slack") {
        problem(".format", format!("`{}` is not json or slack", hook.format));
    }
    for (i, event) in hook.events.iter().enumerate() {
        if !NOTIFICATION_EVENTS.contains(&event.as_str()) {
            problem(
                &format!(".events[{i}]"),
                format!("`{event}` is not one of {}", NOTIFICATION_EVENTS.join(", ")),
            );
        }
    }
    problems
}

/// Fields the API shows on an action but never takes from a client.
const READ_ONLY: &[&str] = &["createdAt", "updatedAt", "createdBy", "updatedBy"];

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

/// What checking a definition needs to know about the rest of the system.
pub struct Known<'a> {
    /// Blueprint identifiers.
    pub blueprints: &'a [String],
    /// Plugin versions as `(name, digest)`.
    pub plugins: &'a [(String, String)],
    /// The runtime whose bounds the limits must respect.
    pub runtime: &'a Runtime,
}

/// Parses and checks a definition; every problem is listed with its path.
pub fn check(body: &Value, known: &Known<'_>) -> Result<ActionDefinition, Vec<Violation>> {
    // What GET adds is ignored, so a definition read back can be edited and written again.
    let mut body = body.clone();
    if let Some(fields) = body.as_object_mut() {
        for read_only in READ_ONLY {
            fields.remove(*read_only);
        }
    }
    let def: ActionDefinition = serde_json::from_value(body).map_err(|e| {
        vec![Violation {
            path: "action".into(),
            message: e.to_string(),
        }]
    })?;
    let mut problems = Vec::new();
    let mut problem = |path: &str, message: String| {
        problems.push(Violation {
            path: path.into(),
            message,
        })
    };

    let id_ok = (1..=100).contains(&def.identifier.len())
        && def
            .identifier
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '@' | '_' | '=' | '-'));
    if !id_ok {
        problem(
            "identifier",
            "must be 1-100 letters, digits, `@`, `_`, `=` or `-`".into(),
        );
    }
    if def.trigger.kind == "automation" {
        check_automation(&def.trigger, known, &mut problem);
    } else if def.trigger.kind != "self-service" {
        problem(
            "trigger.type",
            format!(
                "`{}` is not supported; use `self-service` or `automation`",
                def.trigger.kind
            ),
        );
    } else if !matches!(
        def.trigger.operation.as_str(),
        "CREATE" | "DAY-2" | "DELETE"
    ) {
        problem(
            "trigger.operation",
            format!("`{}` is not CREATE, DAY-2 or DELETE", def.trigger.operation),
        );
    }
    match &def.trigger.blueprint_identifier {
        Some(bp) if !known.blueprints.contains(bp) => {
            problem(
                "trigger.blueprintIdentifier",
                format!("blueprint `{bp}` does not exist"),
            );
        }
        None if def.trigger.kind == "self-service" && def.trigger.operation != "CREATE" => {
            problem(
                "trigger.blueprintIdentifier",
                "required for DAY-2 and DELETE actions".into(),
            );
        }
        _ => {}
    }
    if let Err(input_problems) = inputs::check_definition(&def.trigger.user_inputs) {
        problems.extend(input_problems);
    }

    let im = &def.invocation_method;
    if im.kind != "WASM" {
        problems.push(Violation {
            path: "invocationMethod.type".into(),
            message: format!("`{}` is not supported; use `WASM`", im.kind),
        });
    }
    let name = def.plugin_name();
    let digest = im.plugin.split_once('@').map(|(_, d)| d);
    let found = known
        .plugins
        .iter()
        .any(|(n, d)| n == name && digest.is_none_or(|want| want == d));
    if !found {
        problems.push(Violation {
            path: "invocationMethod.plugin".into(),
            message: match digest {
                Some(d) => format!("plugin `{name}` has no version {d}"),
                None => {
                    format!("plugin `{name}` does not exist; upload it with PUT /v1/plugins/{name}")
                }
            },
        });
    }
    let caps = &im.capabilities;
    for (list, names) in [("read", &caps.catalog.read), ("write", &caps.catalog.write)] {
        for (i, bp) in names.iter().enumerate() {
            if !known.blueprints.contains(bp) {
                problems.push(Violation {
                    path: format!("invocationMethod.capabilities.catalog.{list}[{i}]"),
                    message: format!("blueprint `{bp}` does not exist"),
                });
            }
        }
    }
    let grant_check = known
        .runtime
        .grants(caps, im.limits)
        .and_then(|_| known.runtime.check_secret_access(&def.identifier, caps));
    if let Err(e) = grant_check {
        let path = if e.path.starts_with("limits.") || e.path.starts_with("capabilities.") {
            format!("invocationMethod.{}", e.path)
        } else {
            e.path.clone()
        };
        problems.push(Violation {
            path,
            message: e.reason,
        });
    }
    for (field, audience) in [
        ("execute", &def.permissions.execute),
        ("approve", &def.permissions.approve),
    ] {
        for (i, role) in audience.roles.iter().enumerate() {
            if role != "admin" && role != "member" {
                problems.push(Violation {
                    path: format!("permissions.{field}.roles[{i}]"),
                    message: format!("`{role}` is not `admin` or `member`"),
                });
            }
        }
    }

    if let Err(e) = crate::approval::ApprovalRule::parse(&def.required_approval) {
        problems.push(Violation {
            path: "requiredApproval".into(),
            message: e,
        });
    }
    if let Some(timeout) = &def.approval_timeout
        && let Err(e) = crate::approval::parse_duration(timeout)
    {
        problems.push(Violation {
            path: "approvalTimeout".into(),
            message: e,
        });
    }
    let hooks = def
        .approval_notification
        .iter()
        .map(|n| ("approvalNotification".to_owned(), n.clone()));
    let hooks = hooks.chain(def.notifications.iter().enumerate().map(|(i, n)| {
        (
            format!("notifications[{i}]"),
            serde_json::to_value(n).unwrap_or_default(),
        )
    }));
    for (path, hook) in hooks {
        problems.extend(check_notification(&path, &hook));
    }
    if let Some(policy) = &def.permissions.execute.policy {
        problems.extend(policy.check("permissions.execute.policy"));
    }

    if problems.is_empty() {
        Ok(def)
    } else {
        Err(problems)
    }
}
