//! What a user does to a run after asking for it: read it, cancel it, approve or decline it.
//! The API and the portal both call these, so who may see or change a run is decided once.

use crate::approval::{self, ApprovalError, ApprovalRule, Approver};
use crate::payload::Payload;
use crate::runner::Runner;
use portico_store::{AuditRecord, Role, RunFilter, RunRecord, RunStatus, Store, StoreError, User};
use serde_json::json;

/// Why a user's request about a run was refused.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// No such run, or one the user may not see (the two look alike on purpose).
    #[error("run `{0}` not found")]
    NotFound(String),
    /// The run already ended; the text says how.
    #[error("run `{id}` already ended ({status})")]
    Ended {
        /// The run.
        id: String,
        /// How it ended.
        status: RunStatus,
    },
    /// The approval rules refused the decision.
    #[error(transparent)]
    Approval(#[from] ApprovalError),
    /// The run's stored snapshot cannot be read (a server fault).
    #[error("the run's payload cannot be read: {0}")]
    Broken(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Run controls over one store and runner.
pub struct RunControl<'a> {
    /// Where runs are.
    pub store: &'a dyn Store,
    /// Cancels running runs and wakes workers for approved ones.
    pub runner: &'a Runner,
}

impl RunControl<'_> {
    /// A run, whoever asks.
    pub async fn any(&self, id: &str) -> Result<RunRecord, ControlError> {
        self.store
            .get_run(id)
            .await?
            .ok_or_else(|| ControlError::NotFound(id.to_owned()))
    }

    /// A run `user` may see: their own, or any for an admin.
    pub async fn visible(&self, user: &User, id: &str) -> Result<RunRecord, ControlError> {
        match self.store.get_run(id).await? {
            Some(run) if user.role == Role::Admin || run.created_by == user.identifier => Ok(run),
            _ => Err(ControlError::NotFound(id.to_owned())),
        }
    }

    /// A run `user` may look at: one they may see ([`RunControl::visible`]), or one they are
    /// an approver of (they must read what they decide on).
    pub async fn viewable(&self, user: &User, id: &str) -> Result<RunRecord, ControlError> {
        match self.visible(user, id).await {
            Err(ControlError::NotFound(_)) => {
                let run = self.any(id).await?;
                let approvers = self.approvers(&run).await?;
                if approvers.iter().any(|a| a.user_id == user.identifier) {
                    Ok(run)
                } else {
                    Err(ControlError::NotFound(id.to_owned()))
                }
            }
            found => found,
        }
    }

    /// Cancels a run that has not ended: a pending run ends at once, a running one within a
    /// second. Answers the run as it is now.
    pub async fn cancel(&self, user: &User, id: &str) -> Result<RunRecord, ControlError> {
        let mut run = self.visible(user, id).await?;
        if run.is_final() {
            return Err(ControlError::Ended {
                id: id.to_owned(),
                status: run.status,
            });
        }
        if !self.runner.cancel(id) {
            let now = portico_store::now();
            run.status = RunStatus::Cancelled;
            run.error = Some(
                json!({ "kind": "cancelled", "message": format!("cancelled by {}", user.identifier) }),
            );
            run.updated_at = now;
            run.ended_at = Some(now);
            self.runner.record(&run, None).await?;
        }
        self.visible(user, id).await
    }

    /// `user`'s decision (`APPROVE` or `DECLINE`) on a run waiting for approval. A refusal for
    /// who the user is goes to the audit log, with `origin` (`api`, `ui`).
    pub async fn decide(
        &self,
        user: &User,
        origin: &str,
        id: &str,
        decision: &str,
        description: Option<String>,
    ) -> Result<RunRecord, ControlError> {
        let run = self.any(id).await?;
        let action = action_of(self.store, &run).await?;
        let events = |run: &RunRecord, action: &crate::actions::ActionDefinition| {
            self.runner.events(run, Some(action), false)
        };
        let decided = approval::decide(
            self.store,
            &events,
            run,
            &action,
            user,
            decision,
            description,
        )
        .await;
        let run = match decided {
            Ok(run) => run,
            Err(e @ ApprovalError::Forbidden(_)) => {
                let mut record = AuditRecord::failure(
                    &user.identifier,
                    origin,
                    decision,
                    "run",
                    id,
                    e.to_string(),
                );
                record.run_id = Some(id.to_owned());
                if let Err(e) = self.store.record(record).await {
                    tracing::error!("cannot record a refused decision: {e}");
                }
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        };
        match run.status {
            RunStatus::Pending => self.runner.wake(),
            RunStatus::Declined => self.runner.events_written(),
            _ => {}
        }
        Ok(run)
    }

    /// The runs waiting for `user`'s decision (among the `limit` newest waiting runs), each with
    /// its approvers. The directory is read once, and a run's decisions only when its rule
    /// names `user` as an approver.
    pub async fn awaiting(
        &self,
        user: &User,
        limit: usize,
    ) -> Result<Vec<(RunRecord, Vec<Approver>)>, ControlError> {
        let filter = RunFilter {
            status: Some(RunStatus::WaitingForApproval),
            limit,
            ..RunFilter::default()
        };
        let users = self.store.list_users().await?;
        let mut out = Vec::new();
        for run in self.store.list_runs(&filter).await? {
            let Ok(action) = action_of(self.store, &run).await else {
                continue;
            };
            let Ok(Some(rule)) = ApprovalRule::parse(&action.required_approval) else {
                continue;
            };
            let named =
                approval::approvers(&users, &action.permissions.approve, &rule, &run.created_by);
            if !named.contains(&user.identifier) {
                continue;
            }
            let list = approval::approvers_among(self.store, &users, &run, &action, &rule).await?;
            if list
                .iter()
                .any(|a| a.user_id == user.identifier && a.state == "PENDING")
            {
                out.push((run, list));
            }
        }
        Ok(out)
    }

    /// Whether `user` holds the approve permission of the run's action (whether or not the rule
    /// lets them decide on their own run).
    pub async fn would_approve(&self, user: &User, run: &RunRecord) -> bool {
        match action_of(self.store, run).await {
            Ok(action) => action.permissions.approve.admits(user, &[]),
            Err(_) => false,
        }
    }

    /// Who may decide on a run, and what each decided (empty when it needs no approval).
    pub async fn approvers(&self, run: &RunRecord) -> Result<Vec<Approver>, ControlError> {
        let action = action_of(self.store, run).await?;
        let Some(rule) =
            ApprovalRule::parse(&action.required_approval).map_err(ControlError::Broken)?
        else {
            return Ok(Vec::new());
        };
        Ok(approval::approvers_of(self.store, run, &action, &rule).await?)
    }
}

/// The action a run was started with (as it was then).
async fn action_of(
    store: &dyn Store,
    run: &RunRecord,
) -> Result<std::sync::Arc<crate::actions::ActionDefinition>, ControlError> {
    Payload::open(store, &run.payload)
        .await
        .map(|p| p.action)
        .map_err(|e| ControlError::Broken(e.to_string()))
}
