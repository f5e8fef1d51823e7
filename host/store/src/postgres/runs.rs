//! [`RunQueue`] on Postgres. Replicas share the queue: a claim is one statement that skips the
//! rows another claimer holds (`FOR UPDATE SKIP LOCKED`).

use super::audit::insert_audit;
use super::{PostgresStore, bind, conflict_or, pg};
use crate::query::Dialect;
use crate::rows::{self, Columns, ms, sql_limit};
use crate::sql;
use crate::{Approval, AuditRecord, Result, RunFilter, RunLogLine, RunQueue, RunRecord, RunStatus};
use chrono::{DateTime, Utc};
use std::sync::LazyLock;
use tokio_postgres::types::Json;

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

impl PostgresStore {
    /// Inserts a run and its audit record, leased to `lease` (worker, until in ms) when given.
    async fn insert_run(
        &self,
        r: RunRecord,
        audit: AuditRecord,
        lease: Option<(&str, i64)>,
    ) -> Result<()> {
        let (owner, until) = lease.unzip();
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let stmt = tx
            .prepare_cached(sql::INSERT_RUN.postgres())
            .await
            .map_err(pg)?;
        tx.execute(
            &stmt,
            &[
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
            ],
        )
        .await
        .map_err(|e| conflict_or(e, || format!("run `{}`", r.id)))?;
        insert_audit(&tx, &audit).await?;
        tx.commit().await.map_err(pg)
    }
}

#[async_trait::async_trait]
impl RunQueue for PostgresStore {
    async fn create_run(&self, r: RunRecord, audit: AuditRecord) -> Result<()> {
        self.insert_run(r, audit, None).await
    }

    async fn create_claimed_run(
        &self,
        r: RunRecord,
        audit: AuditRecord,
        worker: &str,
        lease_until: DateTime<Utc>,
    ) -> Result<()> {
        self.insert_run(r, audit, Some((worker, ms(lease_until))))
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

    async fn update_run(&self, r: &RunRecord, audit: Option<AuditRecord>) -> Result<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
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
        if updated > 0
            && let Some(audit) = &audit
        {
            insert_audit(&tx, audit).await?;
        }
        tx.commit().await.map_err(pg)?;
        Ok(updated > 0)
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
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let stmt = tx
            .prepare_cached(sql::INSERT_LOG.postgres())
            .await
            .map_err(pg)?;
        for l in &lines {
            tx.execute(&stmt, &[&l.run_id, &l.seq, &ms(l.at), &l.level, &l.message])
                .await
                .map_err(|e| {
                    conflict_or(e, || format!("log line {} of run `{}`", l.seq, l.run_id))
                })?;
        }
        tx.commit().await.map_err(pg)
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
