//! SqliteStore: the [`crate::RunQueue`] methods.

use super::*;

#[async_trait::async_trait]
impl crate::RunQueue for SqliteStore {
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
        self.insert_run(r, audit, Some((worker.to_owned(), ms(lease_until))))
            .await
    }

    async fn get_run(&self, id: &str) -> Result<Option<RunRecord>> {
        let id = id.to_owned();
        self.read(move |c| {
            c.prepare_cached(&format!("SELECT {RUN_SELECT} FROM runs WHERE id = ?1"))
                .map_err(db)?
                .query_row([id], run)
                .optional()
                .map_err(db)
        })
        .await
    }

    async fn list_runs(&self, f: &RunFilter) -> Result<Vec<RunRecord>> {
        use rusqlite::types::Value as V;
        let mut conditions = vec!["1=1".to_owned()];
        let mut params: Vec<V> = Vec::new();
        let mut add = |condition: &str, value: V| {
            params.push(value);
            conditions.push(condition.replace('?', &format!("?{}", params.len())));
        };
        if let Some(v) = &f.action {
            add("action = ?", V::Text(v.clone()));
        }
        if let Some(v) = &f.status {
            add("status = ?", V::Text(v.as_str().into()));
        }
        if let Some(v) = &f.created_by {
            add("created_by = ?", V::Text(v.clone()));
        }
        if let Some(v) = &f.entity {
            add("entity = ?", V::Text(v.clone()));
        }
        if let Some(v) = &f.before {
            add(
                "(created_at, id) < (SELECT created_at, id FROM runs WHERE id = ?)",
                V::Text(v.clone()),
            );
        }
        let sql = format!(
            "SELECT {RUN_SELECT} FROM runs WHERE {} ORDER BY created_at DESC, id DESC LIMIT {}",
            conditions.join(" AND "),
            sql_limit(f.limit)
        );
        self.read(move |c| {
            let mut stmt = c.prepare(&sql).map_err(db)?;
            let rows = stmt
                .query_map(params_from_iter(params.iter()), run)
                .map_err(db)?;
            rows.collect::<rusqlite::Result<_>>().map_err(db)
        })
        .await
    }

    async fn claim_runs(
        &self,
        worker: &str,
        limit: usize,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<RunRecord>> {
        let worker = worker.to_owned();
        // In the writer: nothing else writes between picking the runs and taking them.
        self.write(move |c| {
            let ids: Vec<String> = c
                .prepare_cached(
                    "SELECT id FROM runs WHERE status = 'PENDING' \
                     ORDER BY created_at, id LIMIT ?1",
                )
                .map_err(db)?
                .query_map([sql_limit(limit)], |r| r.get(0))
                .map_err(db)?
                .collect::<rusqlite::Result<_>>()
                .map_err(db)?;
            let mut take = c
                .prepare_cached(
                    "UPDATE runs SET status = 'IN_PROGRESS', lease_owner = ?2, lease_until = ?3, \
                     attempts = attempts + 1 WHERE id = ?1",
                )
                .map_err(db)?;
            let mut read = c
                .prepare_cached(&format!("SELECT {RUN_SELECT} FROM runs WHERE id = ?1"))
                .map_err(db)?;
            let mut claimed = Vec::with_capacity(ids.len());
            for id in &ids {
                take.execute(params![id, worker, ms(lease_until)])
                    .map_err(db)?;
                claimed.push(read.query_row([id], run).map_err(db)?);
            }
            Ok(claimed)
        })
        .await
    }

    async fn renew_leases(
        &self,
        worker: &str,
        run_ids: &[String],
        lease_until: DateTime<Utc>,
    ) -> Result<u64> {
        let (worker, ids) = (worker.to_owned(), run_ids.to_vec());
        self.write(move |c| {
            let mut renew = c
                .prepare_cached(
                    "UPDATE runs SET lease_until = ?3 \
                     WHERE id = ?1 AND lease_owner = ?2 AND status = 'IN_PROGRESS'",
                )
                .map_err(db)?;
            let mut renewed = 0;
            for id in &ids {
                renewed += renew
                    .execute(params![id, worker, ms(lease_until)])
                    .map_err(db)? as u64;
            }
            Ok(renewed)
        })
        .await
    }

    async fn update_run(&self, r: &RunRecord, audit: Option<AuditRecord>) -> Result<bool> {
        let r = RunUpdate::of(r)?;
        self.write(move |c| update_run_row(c, &r, audit.as_ref()))
            .await
    }

    async fn finish_run(&self, r: &RunRecord, lines: Vec<RunLogLine>) -> Result<bool> {
        let r = RunUpdate::of(r)?;
        self.write(move |c| {
            insert_logs(c, &lines)?;
            update_run_row(c, &r, None)
        })
        .await
    }

    async fn expired_runs(&self, now: DateTime<Utc>) -> Result<Vec<RunRecord>> {
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(&format!(
                    "SELECT {RUN_SELECT} FROM runs WHERE status = 'IN_PROGRESS' \
                     AND (lease_until IS NULL OR lease_until < ?1) ORDER BY created_at, id"
                ))
                .map_err(db)?;
            let rows = stmt.query_map([ms(now)], run).map_err(db)?;
            rows.collect::<rusqlite::Result<_>>().map_err(db)
        })
        .await
    }

    async fn requeue_run(&self, id: &str) -> Result<bool> {
        let id = id.to_owned();
        self.write(move |c| {
            let n = c
                .execute(
                    "UPDATE runs SET status = 'PENDING', lease_owner = NULL, lease_until = NULL \
                     WHERE id = ?1 AND status = 'IN_PROGRESS'",
                    [&id],
                )
                .map_err(db)?;
            Ok(n > 0)
        })
        .await
    }

    async fn hand_off_run(&self, id: &str, worker: &str, deadline: DateTime<Utc>) -> Result<bool> {
        let (id, worker) = (id.to_owned(), worker.to_owned());
        self.write(move |c| {
            let n = c
                .execute(
                    "UPDATE runs SET lease_owner = 'external', lease_until = ?3 \
                     WHERE id = ?1 AND lease_owner = ?2 AND status = 'IN_PROGRESS'",
                    params![id, worker, ms(deadline)],
                )
                .map_err(db)?;
            Ok(n > 0)
        })
        .await
    }

    async fn decide_run(&self, d: Approval, audit: AuditRecord) -> Result<()> {
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO run_approvals (run_id, approver, decision, description, at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .map_err(db)?
            .execute(params![
                d.run_id,
                d.approver,
                d.decision,
                d.description,
                ms(d.at)
            ])
            .map_err(|e| conflict_or(e, || format!("decision of `{}`", d.approver)))?;
            insert_audit(c, &audit)
        })
        .await
    }

    async fn approvals(&self, run_id: &str) -> Result<Vec<Approval>> {
        let run_id = run_id.to_owned();
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT run_id, approver, decision, description, at FROM run_approvals \
                     WHERE run_id = ?1 ORDER BY at, approver",
                )
                .map_err(db)?;
            let rows = stmt
                .query_map([run_id], |r| {
                    Ok(Approval {
                        run_id: r.get(0)?,
                        approver: r.get(1)?,
                        decision: r.get(2)?,
                        description: r.get(3)?,
                        at: at(r.get(4)?),
                    })
                })
                .map_err(db)?;
            rows.collect::<rusqlite::Result<_>>().map_err(db)
        })
        .await
    }

    async fn count_runs(&self, status: RunStatus) -> Result<u64> {
        self.read(move |c| {
            c.query_row(
                "SELECT count(*) FROM runs WHERE status = ?1",
                [status],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(db)
        })
        .await
    }

    async fn append_run_logs(&self, lines: Vec<RunLogLine>) -> Result<()> {
        self.write(move |c| insert_logs(c, &lines)).await
    }

    async fn last_log_seq(&self, run_id: &str) -> Result<i64> {
        let run_id = run_id.to_owned();
        self.read(move |c| {
            c.query_row(
                "SELECT coalesce(max(seq), 0) FROM run_logs WHERE run_id = ?1",
                [run_id],
                |r| r.get(0),
            )
            .map_err(db)
        })
        .await
    }

    async fn run_logs(&self, run_id: &str, after: i64, limit: usize) -> Result<Vec<RunLogLine>> {
        let run_id = run_id.to_owned();
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT run_id, seq, at, level, message FROM run_logs \
                     WHERE run_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
                )
                .map_err(db)?;
            let rows = stmt
                .query_map(params![run_id, after, sql_limit(limit)], |r| {
                    Ok(RunLogLine {
                        run_id: r.get(0)?,
                        seq: r.get(1)?,
                        at: at(r.get(2)?),
                        level: r.get(3)?,
                        message: r.get(4)?,
                    })
                })
                .map_err(db)?;
            rows.collect::<rusqlite::Result<_>>().map_err(db)
        })
        .await
    }
}
