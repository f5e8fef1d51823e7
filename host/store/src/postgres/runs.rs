//! PostgresStore: the [`crate::RunQueue`] methods.

use super::*;

#[async_trait::async_trait]
impl crate::RunQueue for PostgresStore {
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
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(&format!("SELECT {RUN_SELECT} FROM runs WHERE id = $1"))
            .await
            .map_err(pg)?;
        c.query_opt(&stmt, &[&id])
            .await
            .map_err(pg)?
            .as_ref()
            .map(run)
            .transpose()
    }

    async fn list_runs(&self, f: &RunFilter) -> Result<Vec<RunRecord>> {
        let mut conditions = vec!["1=1".to_owned()];
        let mut params: Vec<Param> = Vec::new();
        let mut add = |condition: &str, value: Param| {
            params.push(value);
            conditions.push(condition.replace('?', &format!("${}", params.len())));
        };
        if let Some(v) = &f.action {
            add("action = ?", Param::Text(v.clone()));
        }
        if let Some(v) = &f.status {
            add("status = ?", Param::Text(v.as_str().into()));
        }
        if let Some(v) = &f.created_by {
            add("created_by = ?", Param::Text(v.clone()));
        }
        if let Some(v) = &f.entity {
            add("entity = ?", Param::Text(v.clone()));
        }
        if let Some(v) = &f.before {
            add(
                "(created_at, id) < (SELECT created_at, id FROM runs WHERE id = ?)",
                Param::Text(v.clone()),
            );
        }
        let sql = format!(
            "SELECT {RUN_SELECT} FROM runs WHERE {} ORDER BY created_at DESC, id DESC LIMIT {}",
            conditions.join(" AND "),
            sql_limit(f.limit)
        );
        let params: Vec<_> = params.iter().map(bind).collect();
        let c = self.client().await?;
        c.query_typed(&sql, &params)
            .await
            .map_err(pg)?
            .iter()
            .map(run)
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
            .map(run)
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
        let stmt = c
            .prepare_cached(
                "UPDATE runs SET lease_until = $3 \
                 WHERE id = ANY($1) AND lease_owner = $2 AND status = 'IN_PROGRESS'",
            )
            .await
            .map_err(pg)?;
        c.execute(&stmt, &[&run_ids, &worker, &ms(lease_until)])
            .await
            .map_err(pg)
    }

    async fn update_run(&self, r: &RunRecord, audit: Option<AuditRecord>) -> Result<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let stmt = tx.prepare_cached(&UPDATE_RUN).await.map_err(pg)?;
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
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(&format!(
                "SELECT {RUN_SELECT} FROM runs WHERE status = 'IN_PROGRESS' \
                 AND (lease_until IS NULL OR lease_until < $1) ORDER BY created_at, id"
            ))
            .await
            .map_err(pg)?;
        c.query(&stmt, &[&ms(now)])
            .await
            .map_err(pg)?
            .iter()
            .map(run)
            .collect()
    }

    async fn requeue_run(&self, id: &str) -> Result<bool> {
        let c = self.client().await?;
        let n = c
            .execute(
                "UPDATE runs SET status = 'PENDING', lease_owner = NULL, lease_until = NULL \
                 WHERE id = $1 AND status = 'IN_PROGRESS'",
                &[&id],
            )
            .await
            .map_err(pg)?;
        Ok(n > 0)
    }

    async fn hand_off_run(&self, id: &str, worker: &str, deadline: DateTime<Utc>) -> Result<bool> {
        let c = self.client().await?;
        let n = c
            .execute(
                "UPDATE runs SET lease_owner = 'external', lease_until = $3 \
                 WHERE id = $1 AND lease_owner = $2 AND status = 'IN_PROGRESS'",
                &[&id, &worker, &ms(deadline)],
            )
            .await
            .map_err(pg)?;
        Ok(n > 0)
    }

    async fn decide_run(&self, d: Approval, audit: AuditRecord) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        tx.execute(
            "INSERT INTO run_approvals (run_id, approver, decision, description, at) \
             VALUES ($1, $2, $3, $4, $5)",
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
        let c = self.client().await?;
        c.query(
            "SELECT run_id, approver, decision, description, at FROM run_approvals \
             WHERE run_id = $1 ORDER BY at, approver",
            &[&run_id],
        )
        .await
        .map_err(pg)?
        .iter()
        .map(|r| {
            Ok(Approval {
                run_id: r.try_get(0).map_err(pg)?,
                approver: r.try_get(1).map_err(pg)?,
                decision: r.try_get(2).map_err(pg)?,
                description: r.try_get(3).map_err(pg)?,
                at: at(r.try_get(4).map_err(pg)?),
            })
        })
        .collect()
    }

    async fn count_runs(&self, status: RunStatus) -> Result<u64> {
        let c = self.client().await?;
        let n: i64 = c
            .query_one(
                "SELECT count(*) FROM runs WHERE status = $1",
                &[&status.as_str()],
            )
            .await
            .and_then(|r| r.try_get(0))
            .map_err(pg)?;
        Ok(n as u64)
    }

    async fn append_run_logs(&self, lines: Vec<RunLogLine>) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let stmt = tx
            .prepare_cached(
                "INSERT INTO run_logs (run_id, seq, at, level, message) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
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
        let c = self.client().await?;
        c.query_one(
            "SELECT coalesce(max(seq), 0)::int8 FROM run_logs WHERE run_id = $1",
            &[&run_id],
        )
        .await
        .and_then(|r| r.try_get(0))
        .map_err(pg)
    }

    async fn run_logs(&self, run_id: &str, after: i64, limit: usize) -> Result<Vec<RunLogLine>> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(
                "SELECT run_id, seq, at, level, message FROM run_logs \
                 WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            )
            .await
            .map_err(pg)?;
        c.query(&stmt, &[&run_id, &after, &sql_limit(limit)])
            .await
            .map_err(pg)?
            .iter()
            .map(|r| {
                Ok(RunLogLine {
                    run_id: r.try_get(0).map_err(pg)?,
                    seq: r.try_get(1).map_err(pg)?,
                    at: at(r.try_get(2).map_err(pg)?),
                    level: r.try_get(3).map_err(pg)?,
                    message: r.try_get(4).map_err(pg)?,
                })
            })
            .collect()
    }
}
