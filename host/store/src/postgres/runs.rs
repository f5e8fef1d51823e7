//! [`RunQueue`] on Postgres. Replicas share the queue: a claim is one statement that skips the
//! rows another claimer holds (`FOR UPDATE SKIP LOCKED`).

use super::audit::insert_audit;
use super::outbox::insert_events;
use super::writer::Write;
use super::{PostgresStore, bind, conflict_or, pg};
use crate::query::Dialect;
use crate::rows::{self, Columns, ms, sql_limit};
use crate::sql;
use crate::{
    ActionVersion, Approval, AuditRecord, NewEvent, Result, RunFilter, RunInsert, RunLimits,
    RunLogLine, RunQueue, RunRecord, RunStatus, over_limit,
};
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use futures_util::future::join_all;
use std::sync::LazyLock;
use tokio_postgres::types::{Json, ToSql};

/// [`RunQueue::claim_runs`]'s statement, built once.
static CLAIM_RUNS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH picked AS (SELECT id FROM runs WHERE status = 'PENDING' \
         ORDER BY created_at, id LIMIT $1 FOR UPDATE SKIP LOCKED) \
         UPDATE runs SET status = 'IN_PROGRESS', lease_owner = $2, lease_until = $3, \
         attempts = runs.attempts + 1 FROM picked \
         WHERE runs.id = picked.id AND runs.status = 'PENDING' \
         RETURNING {}, false",
        sql::RUN_COLUMNS
            .split(", ")
            .map(|column| match column.trim() {
                // Read as text, as the other run reads do (`JsonText`).
                "payload" => "runs.payload::text".to_owned(),
                column => format!("runs.{column}"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    )
});

/// Extends the leases of all the given runs in one statement.
const RENEW_LEASES: &str = "UPDATE runs SET lease_until = $3 \
    WHERE id = ANY($1) AND lease_owner = $2 AND status = 'IN_PROGRESS'";

/// Counts a new run's limits inside its transaction, after taking a transaction-scoped advisory
/// lock on its user and action: every replica's request for the same user and action waits
/// for the one before it to commit, so two runs cannot both pass the last place.
async fn check_limits(tx: &impl GenericClient, r: &RunRecord, limits: RunLimits) -> Result<()> {
    if limits.is_empty() {
        return Ok(());
    }
    let key = format!("quota\u{1f}{}\u{1f}{}", r.created_by, r.action);
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        &[&key],
    )
    .await
    .map_err(pg)?;
    let count = |n: Option<tokio_postgres::Row>| n.map_or(Ok(0), |row| row.try_get::<_, i64>(0));
    let concurrent = match limits.concurrent {
        Some(_) => {
            let row = tx
                .query_opt(
                    sql::COUNT_UNENDED_RUNS.postgres(),
                    &[&r.created_by, &r.action],
                )
                .await
                .map_err(pg)?;
            count(row).map_err(pg)?
        }
        None => 0,
    };
    let today = match limits.per_day {
        Some(_) => {
            let since = ms(r.created_at - chrono::Duration::hours(24));
            let row = tx
                .query_opt(
                    sql::COUNT_RUNS_SINCE.postgres(),
                    &[&r.created_by, &r.action, &since],
                )
                .await
                .map_err(pg)?;
            count(row).map_err(pg)?
        }
        None => 0,
    };
    over_limit(limits, concurrent as u64, today as u64)
}

/// Inserts a run and its audit record in the caller's transaction, leased to `(owner, until)`
/// when stored already claimed.
pub(super) async fn insert_run_row(
    tx: &impl GenericClient,
    r: &RunRecord,
    audit: &AuditRecord,
    lease: Option<&(String, i64)>,
    version: Option<&ActionVersion>,
) -> Result<()> {
    let (owner, until) = lease.map(|(w, until)| (w, until)).unzip();
    let stmt = tx
        .prepare_cached(sql::INSERT_RUN.postgres())
        .await
        .map_err(pg)?;
    let params: [&(dyn ToSql + Sync); 22] = [
        &r.id,
        &r.action,
        &r.blueprint,
        &r.entity,
        &r.properties,
        &r.status.as_str(),
        &r.status_label,
        &Json(&r.link),
        &r.summary,
        &r.progress,
        &r.error,
        &r.affected_entities,
        &r.output,
        &r.source,
        &r.created_by,
        &ms(r.created_at),
        &ms(r.updated_at),
        &r.ended_at.map(ms),
        &r.attempts,
        &r.payload.as_str(),
        &owner,
        &until,
    ];
    // Pipelined: the audit insert is sent without waiting for the run's. Both are awaited,
    // so a conflict is reported rather than the aborted transaction that follows it.
    let run = async {
        tx.execute(&stmt, &params)
            .await
            .map_err(|e| conflict_or(e, || format!("run `{}`", r.id)))
    };
    let (version, run, audit) =
        tokio::join!(insert_version(tx, version), run, insert_audit(tx, audit));
    version?;
    run?;
    audit
}

/// Stores an action version (when given) unless it is stored.
pub(super) async fn insert_version(
    tx: &impl GenericClient,
    version: Option<&ActionVersion>,
) -> Result<()> {
    let Some(v) = version else { return Ok(()) };
    let stmt = tx
        .prepare_cached(sql::INSERT_ACTION_VERSION.postgres())
        .await
        .map_err(pg)?;
    tx.execute(&stmt, &[&v.digest, &v.definition, &ms(crate::now())])
        .await
        .map_err(pg)?;
    Ok(())
}

impl PostgresStore {
    /// Inserts a run whose limits must be counted first, with its audit record and events, in
    /// a transaction of its own (the count's lock is held until it commits).
    async fn insert_limited_run(
        &self,
        r: RunRecord,
        audit: AuditRecord,
        insert: RunInsert,
    ) -> Result<()> {
        let lease = insert.claim.map(|(w, until)| (w, ms(until)));
        let version = self.versions.to_write(insert.version.as_ref());
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        check_limits(&tx, &r, insert.limits).await?;
        insert_run_row(&tx, &r, &audit, lease.as_ref(), version.as_deref()).await?;
        insert_events(&tx, &insert.events).await?;
        tx.commit().await.map_err(pg)?;
        self.versions.committed(version.as_ref());
        Ok(())
    }
}

/// Writes a run's mutable fields ([`sql::UPDATE_RUN`]) in the caller's transaction, with its
/// audit record and events when the run was written.
pub(super) async fn update_run_row(
    tx: &impl GenericClient,
    r: &RunRecord,
    audit: Option<&AuditRecord>,
    events: &[NewEvent],
) -> Result<bool> {
    let stmt = tx
        .prepare_cached(sql::UPDATE_RUN.postgres())
        .await
        .map_err(pg)?;
    let updated = tx
        .execute(
            &stmt,
            &[
                &r.id,
                &r.status.as_str(),
                &r.status_label,
                &Json(&r.link),
                &r.summary,
                &r.progress,
                &r.error,
                &r.affected_entities,
                &r.output,
                &ms(r.updated_at),
                &r.ended_at.map(ms),
                &r.is_final(),
            ],
        )
        .await
        .map_err(pg)?;
    if updated > 0 {
        if let Some(audit) = audit {
            insert_audit(tx, audit).await?;
        }
        insert_events(tx, events).await?;
    }
    Ok(updated > 0)
}

/// Inserts log lines in the caller's transaction, pipelined.
pub(super) async fn insert_logs(tx: &impl GenericClient, lines: &[RunLogLine]) -> Result<()> {
    if lines.is_empty() {
        return Ok(());
    }
    let stmt = tx
        .prepare_cached(sql::INSERT_LOG.postgres())
        .await
        .map_err(pg)?;
    let inserted = join_all(lines.iter().map(|l| async {
        let at = ms(l.at);
        tx.execute(&stmt, &[&l.run_id, &l.seq, &at, &l.level, &l.message])
            .await
            .map_err(|e| conflict_or(e, || format!("log line {} of run `{}`", l.seq, l.run_id)))
    }))
    .await;
    // The first failure in order: the ones after it only saw the transaction aborted.
    inserted.into_iter().collect::<Result<Vec<_>>>()?;
    Ok(())
}

#[async_trait::async_trait]
impl RunQueue for PostgresStore {
    async fn insert_run(&self, r: RunRecord, audit: AuditRecord, insert: RunInsert) -> Result<()> {
        if !insert.limits.is_empty() {
            return self.insert_limited_run(r, audit, insert).await;
        }
        let lease = insert.claim.map(|(w, until)| (w, ms(until)));
        let version = self.versions.to_write(insert.version.as_ref());
        self.writer
            .write(Write::Insert {
                run: r,
                audit,
                events: insert.events,
                lease,
                version: version.clone(),
            })
            .await?;
        self.versions.committed(version.as_ref());
        Ok(())
    }

    async fn action_version(&self, digest: &str) -> Result<Option<String>> {
        self.one(&sql::ACTION_VERSION, &[&digest], |r| r.text(0))
            .await
    }

    async fn get_run(&self, id: &str) -> Result<Option<RunRecord>> {
        self.one(&sql::GET_RUN, &[&id], rows::run).await
    }

    async fn list_runs(&self, f: &RunFilter) -> Result<Vec<RunRecord>> {
        let (text, params) = sql::list_runs(f, Dialect::Postgres);
        let params: Vec<_> = params.iter().map(bind).collect();
        let c = self.client().await?;
        c.query_typed(&text, &params)
            .await
            .map_err(pg)?
            .iter()
            .map(rows::run)
            .collect()
    }

    async fn claim_runs(
        &self,
        worker: &str,
        limit: usize,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<RunRecord>> {
        // One statement: rows another claimer has locked are skipped, and a row it took
        // meanwhile is re-checked against `status = 'PENDING'` once its lock is released.
        let c = self.client().await?;
        let stmt = c.prepare_cached(&CLAIM_RUNS).await.map_err(pg)?;
        let mut claimed = c
            .query(&stmt, &[&sql_limit(limit), &worker, &ms(lease_until)])
            .await
            .map_err(pg)?
            .iter()
            .map(rows::run)
            .collect::<Result<Vec<_>>>()?;
        claimed.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(claimed)
    }

    async fn renew_leases(
        &self,
        worker: &str,
        run_ids: &[String],
        lease_until: DateTime<Utc>,
    ) -> Result<u64> {
        let c = self.client().await?;
        let stmt = c.prepare_cached(RENEW_LEASES).await.map_err(pg)?;
        c.execute(&stmt, &[&run_ids, &worker, &ms(lease_until)])
            .await
            .map_err(pg)
    }

    async fn update_run_with(
        &self,
        r: &RunRecord,
        audit: Option<AuditRecord>,
        events: Vec<NewEvent>,
    ) -> Result<bool> {
        self.writer
            .write(Write::Update {
                run: r.clone(),
                audit,
                events,
            })
            .await
    }

    async fn finish_run(
        &self,
        r: &RunRecord,
        lines: Vec<RunLogLine>,
        events: Vec<NewEvent>,
    ) -> Result<bool> {
        self.writer
            .write(Write::Finish {
                run: r.clone(),
                lines,
                events,
            })
            .await
    }

    async fn expired_runs(&self, now: DateTime<Utc>) -> Result<Vec<RunRecord>> {
        self.all(&sql::EXPIRED_RUNS, &[&ms(now)], rows::run).await
    }

    async fn requeue_run(&self, id: &str) -> Result<bool> {
        let c = self.client().await?;
        let n = c
            .execute(sql::REQUEUE_RUN.postgres(), &[&id])
            .await
            .map_err(pg)?;
        Ok(n > 0)
    }

    async fn hand_off_run(&self, id: &str, worker: &str, deadline: DateTime<Utc>) -> Result<bool> {
        let c = self.client().await?;
        let n = c
            .execute(sql::HAND_OFF_RUN.postgres(), &[&id, &worker, &ms(deadline)])
            .await
            .map_err(pg)?;
        Ok(n > 0)
    }

    async fn decide_run(&self, d: Approval, audit: AuditRecord) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        tx.execute(
            sql::INSERT_APPROVAL.postgres(),
            &[
                &d.run_id,
                &d.approver,
                &d.decision,
                &d.description,
                &ms(d.at),
            ],
        )
        .await
        .map_err(|e| conflict_or(e, || format!("decision of `{}`", d.approver)))?;
        insert_audit(&tx, &audit).await?;
        tx.commit().await.map_err(pg)
    }

    async fn approvals(&self, run_id: &str) -> Result<Vec<Approval>> {
        self.all(&sql::APPROVALS, &[&run_id], rows::approval).await
    }

    async fn count_runs(&self, status: RunStatus) -> Result<u64> {
        self.count(&sql::COUNT_RUNS, &[&status.as_str()]).await
    }

    async fn append_run_logs(&self, lines: Vec<RunLogLine>) -> Result<()> {
        self.writer.write(Write::Logs(lines)).await?;
        Ok(())
    }

    async fn last_log_seq(&self, run_id: &str) -> Result<i64> {
        let seq = self
            .one(&sql::LAST_LOG_SEQ, &[&run_id], |r| r.int(0))
            .await?;
        Ok(seq.unwrap_or(0))
    }

    async fn run_logs(&self, run_id: &str, after: i64, limit: usize) -> Result<Vec<RunLogLine>> {
        let key: &[&(dyn tokio_postgres::types::ToSql + Sync)] =
            &[&run_id, &after, &sql_limit(limit)];
        self.all(&sql::RUN_LOGS, key, rows::log_line).await
    }
}
