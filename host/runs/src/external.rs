//! What an external system reports about a run it was handed (Port's run `PATCH` and log
//! `POST`): who may report, what a report may change, and how a final status ends the run. An
//! admin may report on any run; a run token only on its own run. What is reported is redacted of
//! the run's secret inputs, because the run token may be in the plugin's hands.

use crate::runner::{Runner, SecretValues};
use portico_catalog::Violation;
use portico_store::{AuditRecord, RunLogLine, RunRecord, RunStatus, Store, StoreError};
use serde::Deserialize;
use serde_json::{Value, json};

/// Who reports.
#[derive(Clone, Debug)]
pub enum Reporter {
    /// The bearer of the run token of this run id.
    RunToken(String),
    /// A user, by identifier, and whether they are an admin.
    User {
        /// The user's identifier.
        identifier: String,
        /// Only admins may report with a personal token.
        admin: bool,
    },
}

impl Reporter {
    /// Who the audit log names.
    pub fn actor(&self) -> String {
        match self {
            Self::RunToken(id) => format!("run-token:{id}"),
            Self::User { identifier, .. } => identifier.clone(),
        }
    }
}

/// A report: `{status: SUCCESS | FAILURE | IN_PROGRESS, statusLabel, summary, link}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExternalReport {
    /// `SUCCESS` or `FAILURE` ends the run; `IN_PROGRESS` keeps it going.
    pub status: Option<String>,
    /// A short status text.
    pub status_label: Option<String>,
    /// What happened.
    pub summary: Option<String>,
    /// A URL, a list of URLs, or a list of `{title, url}`.
    pub link: Option<Value>,
}

/// A log line: `{message, level?, terminationStatus?, statusLabel?}`, where
/// `terminationStatus` (SUCCESS or FAILURE) ends the run.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExternalLog {
    /// The line.
    pub message: String,
    /// TRACE, DEBUG, INFO (default), WARN or ERROR, in any case.
    #[serde(default = "info")]
    pub level: String,
    /// Ends the run.
    pub termination_status: Option<String>,
    /// A short status text.
    pub status_label: Option<String>,
}

fn info() -> String {
    "INFO".into()
}

/// The longest external log line, in bytes.
const MAX_LOG_BYTES: usize = 64 * 1024;

/// Why a report was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The reporter may not report on this run.
    #[error("{0}")]
    Forbidden(String),
    /// No such run.
    #[error("run `{0}` not found")]
    NotFound(String),
    /// The run has ended.
    #[error("{0}")]
    Ended(String),
    /// A field is invalid.
    #[error("{}: {}", .0.path, .0.message)]
    Invalid(Violation),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid(path: &str, message: impl Into<String>) -> ReportError {
    ReportError::Invalid(Violation {
        path: path.into(),
        message: message.into(),
    })
}

/// Applies reports from external systems to runs.
pub struct Reports<'a> {
    /// Where runs are.
    pub store: &'a dyn Store,
    /// Who is told a run ended.
    pub runner: &'a Runner,
}

impl Reports<'_> {
    /// Applies `report` to run `id`; answers the run as it is now.
    pub async fn report(
        &self,
        reporter: &Reporter,
        id: &str,
        report: ExternalReport,
    ) -> Result<RunRecord, ReportError> {
        let mut run = self.reportable(reporter, id).await?;
        let before = json!({ "status": run.status, "statusLabel": run.status_label });
        let secrets = self.runner.secret_values(&run).await;
        apply(&mut run, report, &secrets)?;
        let mut audit = AuditRecord::success(&reporter.actor(), "api", "REPORT", "run", id);
        audit.run_id = Some(id.to_owned());
        audit.before = Some(before);
        audit.after = Some(
            json!({ "status": run.status, "statusLabel": run.status_label, "summary": run.summary }),
        );
        if !self.runner.record(&run, Some(audit)).await? {
            return Err(ReportError::Ended(format!(
                "run `{id}` ended meanwhile: it takes no more reports"
            )));
        }
        Ok(run)
    }

    /// Appends `log` to run `id`'s log and applies its status, if any; answers the line.
    pub async fn append_log(
        &self,
        reporter: &Reporter,
        id: &str,
        log: ExternalLog,
    ) -> Result<RunLogLine, ReportError> {
        let mut run = self.reportable(reporter, id).await?;
        let level = log.level.to_uppercase();
        if !["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&level.as_str()) {
            return Err(invalid(
                "level",
                "must be one of TRACE, DEBUG, INFO, WARN, ERROR",
            ));
        }
        if log.message.len() > MAX_LOG_BYTES {
            return Err(invalid(
                "message",
                format!("must be at most {MAX_LOG_BYTES} bytes"),
            ));
        }
        let secrets = self.runner.secret_values(&run).await;
        let mut line = RunLogLine {
            run_id: id.to_owned(),
            seq: 0,
            at: portico_store::now(),
            level,
            message: secrets.redact(&log.message),
        };
        // A worker may be appending to the same run: take the next free number.
        let mut attempts = 0;
        loop {
            line.seq = self.store.last_log_seq(id).await? + 1;
            match self.store.append_run_logs(vec![line.clone()]).await {
                Err(StoreError::Conflict(_)) if attempts < 5 => attempts += 1,
                other => break other?,
            }
        }
        if log.termination_status.is_some() || log.status_label.is_some() {
            let report = ExternalReport {
                status: log.termination_status,
                status_label: log.status_label,
                ..ExternalReport::default()
            };
            apply(&mut run, report, &secrets)?;
            let mut audit = AuditRecord::success(&reporter.actor(), "api", "REPORT", "run", id);
            audit.run_id = Some(id.to_owned());
            audit.after = Some(json!({ "status": run.status, "statusLabel": run.status_label }));
            self.runner.record(&run, Some(audit)).await?;
        }
        Ok(line)
    }

    /// The run a reporter may change: a run token is good for its own run only; users must be
    /// admins; an ended run takes no more reports.
    async fn reportable(&self, reporter: &Reporter, id: &str) -> Result<RunRecord, ReportError> {
        match reporter {
            Reporter::RunToken(own) if own != id => {
                return Err(ReportError::Forbidden(format!(
                    "this run token is for run `{own}`, not `{id}`"
                )));
            }
            Reporter::User { admin: false, .. } => {
                return Err(ReportError::Forbidden(
                    "reporting on a run needs the run's token (given to the system it was handed \
                     to) or the admin role"
                        .into(),
                ));
            }
            _ => {}
        }
        let run = self
            .store
            .get_run(id)
            .await?
            .ok_or_else(|| ReportError::NotFound(id.to_owned()))?;
        if run.is_final() {
            return Err(ReportError::Ended(format!(
                "run `{id}` already ended ({}): it takes no more reports",
                run.status
            )));
        }
        Ok(run)
    }
}

fn links(value: Value) -> Result<Vec<Value>, ReportError> {
    let bad = || {
        invalid(
            "link",
            "must be a URL, a list of URLs, or a list of {title, url}",
        )
    };
    let items = match value {
        Value::String(url) => vec![Value::String(url)],
        Value::Array(items) => items,
        _ => return Err(bad()),
    };
    items
        .into_iter()
        .map(|item| match item {
            Value::String(url) => Ok(json!({ "title": url, "url": url })),
            Value::Object(o) if o.get("url").is_some_and(Value::is_string) => Ok(json!({
                "title": o.get("title").cloned().unwrap_or_else(|| o["url"].clone()),
                "url": o["url"],
            })),
            _ => Err(bad()),
        })
        .collect()
}

/// Applies a report to `run`: labels, summary, links, and a final status with its end time.
fn apply(
    run: &mut RunRecord,
    report: ExternalReport,
    secrets: &SecretValues,
) -> Result<(), ReportError> {
    let now = portico_store::now();
    if let Some(link) = report.link {
        let mut added = Value::Array(links(link)?);
        secrets.redact_json(&mut added);
        if let Value::Array(added) = added {
            run.link.extend(added);
        }
    }
    if let Some(label) = report.status_label {
        run.status_label = Some(secrets.redact(&label));
    }
    if let Some(summary) = report.summary {
        run.summary = Some(secrets.redact(&summary));
    }
    match report.status.as_deref() {
        None | Some("IN_PROGRESS") => {}
        Some("SUCCESS") => {
            run.status = RunStatus::Success;
            run.ended_at = Some(now);
        }
        Some("FAILURE") => {
            run.status = RunStatus::Failure;
            run.ended_at = Some(now);
            let message = run
                .summary
                .clone()
                .unwrap_or_else(|| "the external system reported a failure".into());
            run.error = Some(json!({ "kind": "external", "message": message }));
        }
        Some(other) => {
            return Err(invalid(
                "status",
                format!("`{other}` is not one of SUCCESS, FAILURE, IN_PROGRESS"),
            ));
        }
    }
    run.updated_at = now;
    Ok(())
}
