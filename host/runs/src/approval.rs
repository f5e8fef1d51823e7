//! Manual approval. An action with `requiredApproval` starts its runs as WAITING_FOR_APPROVAL
//! (always, or when its `when` jq condition holds for the request); approvers resolved from
//! `permissions.approve` decide with APPROVE or DECLINE. ANY needs one approval, ALL every
//! approver's; one DECLINE ends the run as DECLINED. An unanswered run is declined as `expired`
//! after the action's `approvalTimeout`.

use crate::actions::{ActionDefinition, Audience};
use crate::jq;
use crate::payload::Payload;
use portico_store::{
    Approval, AuditRecord, NewEvent, Role, RunRecord, RunStatus, Store, StoreError, User,
};
use serde_json::{Value, json};
use std::time::Duration;

/// How many approvals a run needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quorum {
    /// One approver's.
    Any,
    /// Every resolved approver's.
    All,
}

/// `requiredApproval` as the host enforces it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovalRule {
    /// ANY or ALL.
    pub quorum: Quorum,
    /// A jq condition over `{inputs, user, entity}`: approval is needed only when it is true.
    pub when: Option<String>,
    /// Whether the requester may approve their own run.
    pub allow_self_approval: bool,
}

impl ApprovalRule {
    /// Reads `requiredApproval`: `false`, `true` (ANY), or
    /// `{"type": "ANY" | "ALL", "when"?: jq, "allowSelfApproval"?: bool}`.
    pub fn parse(value: &Value) -> Result<Option<Self>, String> {
        let rule = |quorum| Self {
            quorum,
            when: None,
            allow_self_approval: false,
        };
        match value {
            Value::Bool(false) | Value::Null => Ok(None),
            Value::Bool(true) => Ok(Some(rule(Quorum::Any))),
            Value::Object(o) => {
                if let Some(key) = o
                    .keys()
                    .find(|k| !["type", "when", "allowSelfApproval"].contains(&k.as_str()))
                {
                    return Err(format!(
                        "unknown key `{key}`; use type, when, allowSelfApproval"
                    ));
                }
                let quorum = match o.get("type").and_then(Value::as_str) {
                    Some("ANY") | None => Quorum::Any,
                    Some("ALL") => Quorum::All,
                    Some(other) => return Err(format!("type `{other}` is not ANY or ALL")),
                };
                let when = match o.get("when") {
                    None => None,
                    Some(Value::String(code)) => {
                        jq::check(code).map_err(|e| format!("when: {e}"))?;
                        Some(code.clone())
                    }
                    Some(_) => return Err("when must be a jq expression (a string)".into()),
                };
                let allow_self_approval = match o.get("allowSelfApproval") {
                    None => false,
                    Some(Value::Bool(b)) => *b,
                    Some(_) => return Err("allowSelfApproval must be true or false".into()),
                };
                Ok(Some(Self {
                    quorum,
                    when,
                    allow_self_approval,
                }))
            }
            _ => Err("must be false, true, or {\"type\": \"ANY\" | \"ALL\"}".into()),
        }
    }

    /// Whether a run with this `context` (`{inputs, user, entity}`) must wait for approval.
    /// A condition that fails to evaluate requires approval: guardrails fail closed.
    pub fn applies(&self, context: &Value) -> bool {
        match &self.when {
            None => true,
            Some(code) => !matches!(
                jq::first(code, context),
                Ok(Value::Bool(false) | Value::Null)
            ),
        }
    }
}

/// Parses a duration such as `90s`, `15m`, `8h`, `7d` or `1h30m` (the parser the plugin SDK
/// uses too).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    portico_duration::parse(text).map_err(|e| e.to_string())
}

/// Why a decision was refused.
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    /// The caller may not decide on this run; the text says who may.
    #[error("{0}")]
    Forbidden(String),
    /// The run is not waiting, or the caller already decided.
    #[error("{0}")]
    Conflict(String),
    /// The decision is malformed: `field` (`status`, `description`) says where.
    #[error("{field}: {message}")]
    Invalid {
        /// The field of the decision at fault.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The run's action snapshot cannot be used (it was checked when written, so this is the
    /// host's fault, not the caller's).
    #[error("the run's action has an unusable requiredApproval: {0}")]
    Broken(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One approver and what they decided, as `GET .../approvers` shows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Approver {
    /// The user.
    pub user_id: String,
    /// `PENDING`, `APPROVED` or `DECLINED`.
    pub state: String,
    /// The approver's words.
    pub description: Option<String>,
}

/// Users the action's `permissions.approve` names, without the requester unless the rule allows
/// self-approval.
pub fn approvers(
    users: &[User],
    audience: &Audience,
    rule: &ApprovalRule,
    requester: &str,
) -> Vec<String> {
    users
        .iter()
        .filter(|u| !u.disabled && audience.admits(u, &[]))
        .filter(|u| rule.allow_self_approval || u.identifier != requester)
        .map(|u| u.identifier.clone())
        .collect()
}

/// The approvers of a run with their decisions (decisions by someone no longer an approver are
/// listed too: they counted when made).
pub async fn approvers_of(
    store: &dyn Store,
    run: &RunRecord,
    action: &ActionDefinition,
    rule: &ApprovalRule,
) -> Result<Vec<Approver>, StoreError> {
    let users = store.list_users().await?;
    approvers_among(store, &users, run, action, rule).await
}

/// [`approvers_of`] with the directory already read (a page listing many runs reads it once).
pub async fn approvers_among(
    store: &dyn Store,
    users: &[User],
    run: &RunRecord,
    action: &ActionDefinition,
    rule: &ApprovalRule,
) -> Result<Vec<Approver>, StoreError> {
    let decided = store.approvals(&run.id).await?;
    let mut list: Vec<Approver> =
        approvers(users, &action.permissions.approve, rule, &run.created_by)
            .into_iter()
            .map(|user_id| Approver {
                state: "PENDING".into(),
                description: None,
                user_id,
            })
            .collect();
    for d in decided {
        let state = if d.decision == "APPROVE" {
            "APPROVED"
        } else {
            "DECLINED"
        };
        match list.iter_mut().find(|a| a.user_id == d.approver) {
            Some(a) => {
                a.state = state.into();
                a.description = d.description;
            }
            None => list.push(Approver {
                user_id: d.approver,
                state: state.into(),
                description: d.description,
            }),
        }
    }
    Ok(list)
}

/// The longest reason an approver may give: it is shown to everyone who reads the run and sent
/// in notifications.
pub const MAX_REASON_CHARS: usize = 1000;

/// Records `decider`'s decision on a waiting run and moves the run on when it is settled:
/// to PENDING (approved, workers take it) or DECLINED, written with the `events` a decline
/// publishes. Answers the run as it is now.
pub async fn decide(
    store: &dyn Store,
    events: &(dyn Fn(&RunRecord, &ActionDefinition) -> Vec<NewEvent> + Sync),
    mut run: RunRecord,
    action: &ActionDefinition,
    decider: &User,
    decision: &str,
    description: Option<String>,
) -> Result<RunRecord, ApprovalError> {
    let rule = ApprovalRule::parse(&action.required_approval)
        .map_err(ApprovalError::Broken)?
        .unwrap_or(ApprovalRule {
            quorum: Quorum::Any,
            when: None,
            allow_self_approval: false,
        });
    if !matches!(decision, "APPROVE" | "DECLINE") {
        return Err(ApprovalError::Invalid {
            field: "status",
            message: format!("`{decision}` is not APPROVE or DECLINE"),
        });
    }
    if let Some(text) = &description
        && text.chars().count() > MAX_REASON_CHARS
    {
        return Err(ApprovalError::Invalid {
            field: "description",
            message: format!("at most {MAX_REASON_CHARS} characters"),
        });
    }
    if run.status != RunStatus::WaitingForApproval {
        return Err(ApprovalError::Conflict(format!(
            "run `{}` is {}, not waiting for approval",
            run.id, run.status
        )));
    }
    let audience = &action.permissions.approve;
    if decider.identifier == run.created_by && !rule.allow_self_approval {
        return Err(ApprovalError::Forbidden(
            "you requested this run, and its action does not allow self-approval \
             (requiredApproval.allowSelfApproval)"
                .into(),
        ));
    }
    if !audience.admits(decider, &[]) {
        return Err(ApprovalError::Forbidden(format!(
            "you are not an approver of `{}`: its permissions.approve allows roles [{}], users [{}], teams [{}]",
            action.identifier,
            audience.roles.join(", "),
            audience.users.join(", "),
            audience.teams.join(", "),
        )));
    }

    let now = portico_store::now();
    let mut audit = AuditRecord::success(&decider.identifier, "api", decision, "run", &run.id);
    audit.run_id = Some(run.id.clone());
    audit.blueprint = run.blueprint.clone();
    audit.after = Some(json!({ "decision": decision, "description": description }));
    let record = Approval {
        run_id: run.id.clone(),
        approver: decider.identifier.clone(),
        decision: decision.into(),
        description: description.clone(),
        at: now,
    };
    store.decide_run(record, audit).await.map_err(|e| match e {
        StoreError::Conflict(_) => {
            ApprovalError::Conflict("you already decided on this run".into())
        }
        other => ApprovalError::Store(other),
    })?;

    let settled = if decision == "DECLINE" {
        Some(RunStatus::Declined)
    } else {
        match rule.quorum {
            Quorum::Any => Some(RunStatus::Pending),
            Quorum::All => {
                let list = approvers_of(store, &run, action, &rule).await?;
                list.iter()
                    .all(|a| a.state == "APPROVED")
                    .then_some(RunStatus::Pending)
            }
        }
    };
    if let Some(status) = settled {
        run.status = status;
        run.updated_at = now;
        if status == RunStatus::Declined {
            run.ended_at = Some(now);
            let reason = description.unwrap_or_else(|| "no reason given".into());
            run.error = Some(json!({
                "kind": "declined",
                "message": format!("declined by {}: {reason}", decider.identifier),
            }));
        }
        let published = if run.is_final() {
            events(&run, action)
        } else {
            Vec::new()
        };
        if store.update_run_with(&run, None, published).await? {
            crate::metrics::run_ended(&run);
        }
    }
    Ok(run)
}

/// Declines, as `expired`, the runs that waited for approval longer than their action allows,
/// each with the `events` its end publishes; answers how many.
pub async fn expire(
    store: &dyn Store,
    events: &(dyn Fn(&RunRecord, &ActionDefinition) -> Vec<NewEvent> + Sync),
) -> Result<usize, StoreError> {
    let waiting = store
        .list_runs(&portico_store::RunFilter {
            status: Some(RunStatus::WaitingForApproval),
            limit: 1000,
            ..Default::default()
        })
        .await?;
    let now = portico_store::now();
    let mut expired = 0;
    for mut run in waiting {
        let action = match Payload::open(store, &run.payload).await {
            Ok(payload) => payload.action,
            Err(e) => {
                tracing::error!(run_id = %run.id, "cannot read the run's action: {e}");
                continue;
            }
        };
        let Some(timeout) = action
            .approval_timeout
            .as_deref()
            .and_then(|t| parse_duration(t).ok())
        else {
            continue;
        };
        let deadline = run.created_at + chrono::Duration::from_std(timeout).unwrap_or_default();
        if deadline > now {
            continue;
        }
        run.status = RunStatus::Declined;
        run.updated_at = now;
        run.ended_at = Some(now);
        run.error = Some(json!({
            "kind": "expired",
            "message": "expired: nobody decided before the action's approvalTimeout",
        }));
        let mut audit = AuditRecord::success("portico", "host", "DECLINE", "run", &run.id);
        audit.run_id = Some(run.id.clone());
        audit.reason = Some("expired".into());
        let published = events(&run, &action);
        if store.update_run_with(&run, Some(audit), published).await? {
            crate::metrics::run_ended(&run);
            expired += 1;
        }
    }
    Ok(expired)
}

/// `Audience` membership, shared by execute and approve.
impl Audience {
    /// Whether `user` is in this audience (`entity_teams`: the entity's owners, for
    /// `ownedByTeam`).
    pub fn admits(&self, user: &User, entity_teams: &[String]) -> bool {
        let role = match user.role {
            Role::Admin => "admin",
            Role::Member => "member",
        };
        self.roles.iter().any(|r| r == role)
            || self.users.contains(&user.identifier)
            || self.teams.iter().any(|t| user.teams.contains(t))
            || (self.owned_by_team && entity_teams.iter().any(|t| user.teams.contains(t)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("8h"), Ok(Duration::from_secs(8 * 3600)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        for bad in ["", "8", "h", "8x", "0h", "-1h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn required_approval_takes_ports_shapes_and_a_condition() {
        assert_eq!(ApprovalRule::parse(&json!(false)), Ok(None));
        let any = ApprovalRule::parse(&json!(true)).unwrap().unwrap();
        assert_eq!(any.quorum, Quorum::Any);
        let all = ApprovalRule::parse(&json!({"type": "ALL"}))
            .unwrap()
            .unwrap();
        assert_eq!(all.quorum, Quorum::All);
        assert!(ApprovalRule::parse(&json!({"type": "SOME"})).is_err());
        assert!(ApprovalRule::parse(&json!({"when": ".inputs |"})).is_err());

        let long =
            json!({"type": "ANY", "when": "(.inputs.ttl | rtrimstr(\"h\") | tonumber) > 24"});
        let long = ApprovalRule::parse(&long).unwrap().unwrap();
        assert!(long.applies(&json!({"inputs": {"ttl": "48h"}})));
        assert!(!long.applies(&json!({"inputs": {"ttl": "8h"}})));
        assert!(
            long.applies(&json!({"inputs": {"ttl": "soon"}})),
            "fails closed"
        );
    }
}
