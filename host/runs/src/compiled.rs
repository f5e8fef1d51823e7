//! An action compiled for running: the stored definition ([`crate::actions`], Port's JSON shape)
//! with what a run request needs parsed once, so that no request reads raw JSON again. Writing
//! an action checks it ([`crate::action_check`]) and compiles it; the run intake keeps compiled
//! actions; a run refers to the definition's version ([`crate::payload::Payload`]).

use crate::actions::ActionDefinition;
use crate::approval::{ApprovalRule, parse_duration};
use crate::inputs::CompiledInputs;
use portico_runtime::Operation;
use portico_store::ActionVersion;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

/// What starts an action's runs (`trigger.type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TriggerKind {
    /// `self-service`: users request runs.
    SelfService,
    /// `automation`: an event starts runs; requests are refused.
    Automation,
}

/// A checked action, ready for run requests. Dereferences to its definition.
#[derive(Clone, Debug)]
pub struct Action {
    definition: Arc<ActionDefinition>,
    /// The definition stored once for its runs, which name it by digest.
    version: Arc<ActionVersion>,
    /// What starts its runs.
    pub trigger_kind: TriggerKind,
    /// What its runs do to the catalog (`CREATE` when the definition names none).
    pub operation: Operation,
    /// `requiredApproval`, parsed; `None` when runs never wait.
    pub approval: Option<ApprovalRule>,
    /// `approvalTimeout`, parsed.
    pub approval_timeout: Option<Duration>,
    /// `trigger.userInputs` with each input's JSON Schema compiled.
    pub inputs: CompiledInputs,
}

/// A stored definition that no longer compiles (it was checked when written, so this is a
/// server fault, not the caller's).
#[derive(Debug, thiserror::Error)]
#[error("action `{action}` cannot be compiled: {reason}")]
pub struct CompileError {
    /// The action's identifier.
    pub action: String,
    /// What is wrong.
    pub reason: String,
}

impl Action {
    /// Compiles a definition that [`crate::action_check::check`] accepted.
    pub fn compile(definition: ActionDefinition) -> Result<Self, CompileError> {
        let fail = |reason: String| CompileError {
            action: definition.identifier.clone(),
            reason,
        };
        let trigger = match definition.trigger.kind.as_str() {
            "self-service" => TriggerKind::SelfService,
            "automation" => TriggerKind::Automation,
            other => return Err(fail(format!("trigger.type `{other}`"))),
        };
        let operation = match definition.trigger.operation.as_str() {
            "DAY-2" => Operation::DayTwo,
            "DELETE" => Operation::Delete,
            _ => Operation::Create,
        };
        let approval = ApprovalRule::parse(&definition.required_approval)
            .map_err(|e| fail(format!("requiredApproval: {e}")))?;
        let approval_timeout = definition
            .approval_timeout
            .as_deref()
            .map(parse_duration)
            .transpose()
            .map_err(|e| fail(format!("approvalTimeout: {e}")))?;
        let inputs = CompiledInputs::compile(&definition.trigger.user_inputs);
        let definition = Arc::new(definition);
        let version = crate::payload::version_of(&definition).map_err(|e| CompileError {
            action: definition.identifier.clone(),
            reason: format!("cannot serialize it: {e}"),
        })?;
        Ok(Self {
            inputs,
            version: Arc::new(version),
            definition,
            trigger_kind: trigger,
            operation,
            approval,
            approval_timeout,
        })
    }

    /// The definition as written: what the API shows and what a run runs with.
    pub fn definition(&self) -> &Arc<ActionDefinition> {
        &self.definition
    }

    /// The version its runs refer to.
    pub fn version(&self) -> &Arc<ActionVersion> {
        &self.version
    }
}

impl Deref for Action {
    type Target = ActionDefinition;

    fn deref(&self) -> &ActionDefinition {
        &self.definition
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn definition(extra: serde_json::Value) -> ActionDefinition {
        let mut body = json!({
            "identifier": "deploy",
            "trigger": { "type": "self-service", "operation": "DAY-2", "blueprintIdentifier": "service" },
            "invocationMethod": { "type": "WASM", "plugin": "noop" },
        });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn compiling_parses_the_trigger_operation_and_approval_once() {
        let action = Action::compile(definition(json!({
            "requiredApproval": { "type": "ALL" }, "approvalTimeout": "1h30m"
        })))
        .unwrap();
        assert_eq!(action.trigger_kind, TriggerKind::SelfService);
        assert_eq!(action.operation, Operation::DayTwo);
        assert_eq!(
            action.approval.as_ref().map(|r| r.quorum),
            Some(crate::approval::Quorum::All)
        );
        assert_eq!(action.approval_timeout, Some(Duration::from_secs(5400)));
        assert_eq!(action.identifier, "deploy");
    }

    #[test]
    fn a_definition_that_no_longer_parses_names_the_action_and_the_field() {
        let e = Action::compile(definition(
            json!({ "requiredApproval": { "type": "SOME" } }),
        ))
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "action `deploy` cannot be compiled: requiredApproval: type `SOME` is not ANY or ALL"
        );
    }
}
