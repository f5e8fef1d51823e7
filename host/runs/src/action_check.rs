//! Checks an action definition when it is written, so that a run never finds out too late that
//! its action is broken: an unknown plugin, a grant naming a missing blueprint, a malformed input
//! schema, a bad jq expression or a limit out of bounds is a 422 naming its path.

use crate::actions::{
    AUTOMATION_EVENTS, ActionDefinition, NOTIFICATION_EVENTS, Notification, Trigger,
};
use crate::inputs;
use portico_catalog::Violation;
use portico_runtime::Runtime;
use serde_json::Value;

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
        .and_then(|grants| known.runtime.check_secret_access(&def.identifier, &grants));
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
