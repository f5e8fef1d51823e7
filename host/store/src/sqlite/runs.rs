//! [`RunQueue`] on SQLite. Every write goes through the writer thread, so a claim (pick the
//! oldest PENDING runs, then take them) cannot race another claim: nothing else writes between.

use super::audit::insert_audit;
use super::outbox::{event_rows, insert_events};
use super::{SqliteStore, bind, conflict_or};
use crate::query::Dialect;
use crate::rows::{self, ms, sql_limit};
use crate::sql;
use crate::{
    Approval, AuditRecord, Change, NewEvent, Result, RunFilter, RunInsert, RunLogLine, RunQueue,
    RunRecord, RunStatus, db, over_limit,
};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, params, params_from_iter};
use serde_json::Value;
use std::sync::Arc;

/// The oldest PENDING runs, for [`RunQueue::claim_runs`].
const PICK_PENDING: &str =
    "SELECT id FROM runs WHERE status = 'PENDING' ORDER BY created_at, id LIMIT ?1";
/// Takes one picked run for a worker.
const TAKE_RUN: &str = "UPDATE runs SET status = 'IN_PROGRESS', lease_owner = ?2, \
    lease_until = ?3, attempts = attempts + 1 WHERE id = ?1";
/// Extends one run's lease (Postgres renews them all in one statement with `ANY`).
const RENEW_LEASE: &str = "UPDATE runs SET lease_until = ?3 \
    WHERE id = ?1 AND lease_owner = ?2 AND status = 'IN_PROGRESS'";

/// Whose runs a limit counts: the user, the action, and when the new run was created.
type Whose = (String, String, DateTime<Utc>);

/// Counts a new run's limits in the writer's open transaction, which already holds every write
/// committed or queued before it: two runs cannot both pass the last place.
fn check_limits(c: &Connection, whose: &Whose, limits: crate::RunLimits) -> Result<()> {
    if limits.is_empty() {
        return Ok(());
    }
    let (user, action, created_at) = whose;
    let count = |stmt: &sql::Statement, since: Option<i64>| -> Result<u64> {
        let mut stmt = c.prepare_cached(stmt.sqlite()).map_err(db)?;
        let n: i64 = match since {
            Some(since) => stmt.query_row(params![user, action, since], |row| row.get(0)),
            None => stmt.query_row(params![user, action], |row| row.get(0)),
        }
        .map_err(db)?;
        Ok(n as u64)
    };
    let concurrent = match limits.concurrent {
        Some(_) => count(&sql::COUNT_UNENDED_RUNS, None)?,
        None => 0,
    };
    let today = match limits.per_day {
        Some(_) => count(
            &sql::COUNT_RUNS_SINCE,
            Some(ms(*created_at - chrono::Duration::hours(24))),
        )?,
        None => 0,
    };
    over_limit(limits, concurrent, today)
}

impl SqliteStore {
    /// Inserts a run, its audit record and its events, leased when `insert` claims it, once
    /// its limits are counted.
    async fn insert_run_row(
        &self,
        r: RunRecord,
        audit: AuditRecord,
        insert: RunInsert,
    ) -> Result<()> {
        use rusqlite::types::Value as V;
        let text = |v: Option<String>| v.map_or(V::Null, V::Text);
        let lease = insert.claim.map(|(w, until)| (w, ms(until)));
        let (owner, until) = lease.map_or((None, None), |(w, u)| (Some(w), Some(u)));
        let (limits, events) = (insert.limits, event_rows(&insert.events));
        let whose: Whose = (r.created_by.clone(), r.action.clone(), r.created_at);
        let queued = r.status == RunStatus::Pending;
        let row: [V; 22] = [
            V::Text(r.id.clone()),
            V::Text(r.action),
            text(r.blueprint),
            text(r.entity),
            V::Text(r.properties.to_string()),
            V::Text(r.status.as_str().into()),
            text(r.status_label),
            V::Text(serde_json::to_string(&r.link).map_err(db)?),
            text(r.summary),
            text(r.progress.as_ref().map(Value::to_string)),
            text(r.error.as_ref().map(Value::to_string)),
            V::Text(r.affected_entities.to_string()),
            text(r.output.as_ref().map(Value::to_string)),
            V::Text(r.source),
            V::Text(r.created_by),
            V::Integer(ms(r.created_at)),
            V::Integer(ms(r.updated_at)),
            r.ended_at.map_or(V::Null, |t| V::Integer(ms(t))),
            V::Integer(r.attempts.into()),
            V::Text(r.payload.as_str().to_owned()),
            text(owner),
            until.map_or(V::Null, V::Integer),
        ];
        let id = r.id;
        let version = self.versions.to_write(insert.version.as_ref());
        let written = version.clone();
        let now = ms(crate::now());
        self.write(move |c| {
            check_limits(c, &whose, limits)?;
            if let Some(v) = &written {
                c.prepare_cached(sql::INSERT_ACTION_VERSION.sqlite())
                    .map_err(db)?
                    .execute(rusqlite::params![v.digest, v.definition, now])
                    .map_err(db)?;
            }
            c.prepare_cached(sql::INSERT_RUN.sqlite())
                .map_err(db)?
                .execute(params_from_iter(row.iter()))
                .map_err(|e| conflict_or(e, || format!("run `{id}`")))?;
            insert_audit(c, &audit)?;
            insert_events(c, &events)
        })
        .await?;
        self.versions.committed(version.as_ref());
        if queued {
            self.feed.send(Change::RunsQueued);
        }
        Ok(())
    }

    /// Tells subscribers a run's fields were written, once committed (what the Postgres
    /// triggers send).
    fn run_written(&self, id: &str, status: RunStatus) {
        let id = id.into();
        self.feed.send(if status.is_final() {
            Change::RunEnded(id)
        } else {
            Change::RunChanged(id)
        });
    }

    /// Tells subscribers log lines were appended to `runs` ([`logged_runs`]), once committed.
    fn logged(&self, runs: Vec<Arc<str>>) {
        for run in runs {
            self.feed.send(Change::RunLogged(run));
        }
    }
}

/// A run's mutable fields (see [`RunQueue::update_run`]) as SQLite columns, serialized by the
/// caller so the writer thread only writes.
struct RunUpdate {
    id: String,
    status: RunStatus,
    status_label: Option<String>,
    link: String,
    summary: Option<String>,
    progress: Option<String>,
    error: Option<String>,
    affected_entities: String,
    output: Option<String>,
    updated_at: i64,
    ended_at: Option<i64>,
    is_final: bool,
}

impl RunUpdate {
    fn of(r: &RunRecord) -> Result<Self> {
        Ok(Self {
            id: r.id.clone(),
            status: r.status,
            status_label: r.status_label.clone(),
            link: serde_json::to_string(&r.link).map_err(db)?,
            summary: r.summary.clone(),
            progress: r.progress.as_ref().map(Value::to_string),
            error: r.error.as_ref().map(Value::to_string),
            affected_entities: r.affected_entities.to_string(),
            output: r.output.as_ref().map(Value::to_string),
            updated_at: ms(r.updated_at),
            ended_at: r.ended_at.map(ms),
            is_final: r.is_final(),
        })
    }
}

/// Writes a run's mutable fields ([`sql::UPDATE_RUN`]) in the writer's transaction, with its
/// audit record when given and when the run was written.
fn update_run_row(c: &Connection, r: &RunUpdate, audit: Option<&AuditRecord>) -> Result<bool> {
    let updated = c
        .prepare_cached(sql::UPDATE_RUN.sqlite())
        .map_err(db)?
        .execute(params![
            r.id,
            r.status,
            r.status_label,
            r.link,
            r.summary,
            r.progress,
            r.error,
            r.affected_entities,
            r.output,
            r.updated_at,
            r.ended_at,
            r.is_final,
        ])
        .map_err(db)?;
    if updated > 0
        && let Some(audit) = audit
    {
        insert_audit(c, audit)?;
    }
    Ok(updated > 0)
}

/// The runs `lines` belong to, each once.
fn logged_runs(lines: &[RunLogLine]) -> Vec<Arc<str>> {
    let mut runs: Vec<Arc<str>> = Vec::new();
    for line in lines {
        if !runs.iter().any(|r| **r == *line.run_id) {
            runs.push(line.run_id.as_str().into());
        }
    }
    runs
}

/// Inserts log lines (see [`RunQueue::append_run_logs`]) in the writer's transaction.
fn insert_logs(c: &Connection, lines: &[RunLogLine]) -> Result<()> {
    let mut insert = c.prepare_cached(sql::INSERT_LOG.sqlite()).map_err(db)?;
    for l in lines {
        insert
            .execute(params![l.run_id, l.seq, ms(l.at), l.level, l.message])
            .map_err(|e| conflict_or(e, || format!("log line {} of run `{}`", l.seq, l.run_id)))?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl RunQueue for SqliteStore {
    async fn insert_run(&self, r: RunRecord, audit: AuditRecord, insert: RunInsert) -> Result<()> {
        self.insert_run_row(r, audit, insert).await
    }

    async fn action_version(&self, digest: &str) -> Result<Option<String>> {
        self.one(&sql::ACTION_VERSION, [digest.to_owned()], |r| r.get(0))
            .await
    }

    async fn get_run(&self, id: &str) -> Result<Option<RunRecord>> {
        self.one(&sql::GET_RUN, [id.to_owned()], |r| rows::run(r))
            .await
    }

    async fn list_runs(&self, f: &RunFilter) -> Result<Vec<RunRecord>> {
        let (text, params) = sql::list_runs(f, Dialect::Sqlite);
        self.read(move |c| {
            let mut stmt = c.prepare(&text).map_err(db)?;
            let rows = stmt
                .query_map(params_from_iter(params.iter().map(bind)), |r| rows::run(r))
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
        let claimed: Vec<RunRecord> = self
            .write(move |c| {
                let ids: Vec<String> = c
                    .prepare_cached(PICK_PENDING)
                    .map_err(db)?
                    .query_map([sql_limit(limit)], |r| r.get(0))
                    .map_err(db)?
                    .collect::<rusqlite::Result<_>>()
                    .map_err(db)?;
                let mut take = c.prepare_cached(TAKE_RUN).map_err(db)?;
                let mut read = c.prepare_cached(sql::GET_RUN.sqlite()).map_err(db)?;
                let mut claimed = Vec::with_capacity(ids.len());
                for id in &ids {
                    take.execute(params![id, worker, ms(lease_until)])
                        .map_err(db)?;
                    claimed.push(read.query_row([id], |r| rows::run(r)).map_err(db)?);
                }
                Ok(claimed)
            })
            .await?;
        for run in &claimed {
            self.run_written(&run.id, run.status);
        }
        Ok(claimed)
    }

    async fn renew_leases(
        &self,
        worker: &str,
        run_ids: &[String],
        lease_until: DateTime<Utc>,
    ) -> Result<u64> {
        let (worker, ids) = (worker.to_owned(), run_ids.to_vec());
        self.write(move |c| {
            let mut renew = c.prepare_cached(RENEW_LEASE).map_err(db)?;
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

    async fn update_run_with(
        &self,
        r: &RunRecord,
        audit: Option<AuditRecord>,
        events: Vec<NewEvent>,
    ) -> Result<bool> {
        let (update, events) = (RunUpdate::of(r)?, event_rows(&events));
        let updated = self
            .write(move |c| {
                let updated = update_run_row(c, &update, audit.as_ref())?;
                if updated {
                    insert_events(c, &events)?;
                }
                Ok(updated)
            })
            .await?;
        if updated {
            self.run_written(&r.id, r.status);
        }
        Ok(updated)
    }

    async fn finish_run(
        &self,
        r: &RunRecord,
        lines: Vec<RunLogLine>,
        events: Vec<NewEvent>,
    ) -> Result<bool> {
        let (update, events) = (RunUpdate::of(r)?, event_rows(&events));
        let runs = logged_runs(&lines);
        let updated = self
            .write(move |c| {
                insert_logs(c, &lines)?;
                let updated = update_run_row(c, &update, None)?;
                if updated {
                    insert_events(c, &events)?;
                }
                Ok(updated)
            })
            .await?;
        self.logged(runs);
        if updated {
            self.run_written(&r.id, r.status);
        }
        Ok(updated)
    }

    async fn expired_runs(&self, now: DateTime<Utc>) -> Result<Vec<RunRecord>> {
        self.all(&sql::EXPIRED_RUNS, [ms(now)], |r| rows::run(r))
            .await
    }

    async fn requeue_run(&self, id: &str) -> Result<bool> {
        let run = id.to_owned();
        let requeued = self
            .write(move |c| {
                let n = c.execute(sql::REQUEUE_RUN.sqlite(), [&run]).map_err(db)?;
                Ok(n > 0)
            })
            .await?;
        if requeued {
            self.run_written(id, RunStatus::Pending);
            self.feed.send(Change::RunsQueued);
        }
        Ok(requeued)
    }

    async fn hand_off_run(&self, id: &str, worker: &str, deadline: DateTime<Utc>) -> Result<bool> {
        let (id, worker) = (id.to_owned(), worker.to_owned());
        self.write(move |c| {
            let n = c
                .execute(
                    sql::HAND_OFF_RUN.sqlite(),
                    params![id, worker, ms(deadline)],
                )
                .map_err(db)?;
            Ok(n > 0)
        })
        .await
    }

    async fn decide_run(&self, d: Approval, audit: AuditRecord) -> Result<()> {
        self.write(move |c| {
            c.prepare_cached(sql::INSERT_APPROVAL.sqlite())
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
        self.all(&sql::APPROVALS, [run_id.to_owned()], |r| rows::approval(r))
            .await
    }

    async fn count_runs(&self, status: RunStatus) -> Result<u64> {
        self.count(&sql::COUNT_RUNS, [status]).await
    }

    async fn append_run_logs(&self, lines: Vec<RunLogLine>) -> Result<()> {
        let runs = logged_runs(&lines);
        self.write(move |c| insert_logs(c, &lines)).await?;
        self.logged(runs);
        Ok(())
    }

    async fn last_log_seq(&self, run_id: &str) -> Result<i64> {
        let seq = self.one(&sql::LAST_LOG_SEQ, [run_id.to_owned()], |r| r.get(0));
        Ok(seq.await?.unwrap_or(0))
    }

    async fn run_logs(&self, run_id: &str, after: i64, limit: usize) -> Result<Vec<RunLogLine>> {
        let key = (run_id.to_owned(), after, sql_limit(limit));
        self.all(&sql::RUN_LOGS, key, |r| rows::log_line(r)).await
    }
}
