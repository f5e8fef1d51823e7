//! A batch of run writes as a few multi-row statements: all the runs inserted in one
//! `INSERT ... SELECT FROM unnest(...)`, all their audit records in another, and so on, so a
//! batch of 200 runs costs Postgres five statements instead of a thousand (each statement has a
//! fixed cost: locks, executor start, a trigger call). The statements of one phase are
//! pipelined; the writes that depend on an update's outcome (its audit record and events, only
//! when the run was written) follow in a second phase.

use super::outbox::insert_events;
use super::runs::insert_version;
use super::writer::Write;
use super::{conflict_or, pg};
use crate::rows::{audit_status, ms};
use crate::{ActionVersion, AuditRecord, NewEvent, Result, RunLogLine, RunRecord, RunStatus};
use deadpool_postgres::GenericClient;
use std::collections::HashSet;
use std::sync::LazyLock;
use tokio_postgres::types::Json;

/// The writes of a batch, gathered by table. Every write changes a different run.
#[derive(Default)]
pub(super) struct Batch<'a> {
    versions: Vec<&'a ActionVersion>,
    inserted: Vec<(&'a RunRecord, Option<&'a (String, i64)>)>,
    /// Written whatever happens (the inserts').
    audits: Vec<&'a AuditRecord>,
    events: Vec<&'a NewEvent>,
    lines: Vec<&'a RunLogLine>,
    updated: Vec<&'a RunRecord>,
    /// Written only if their run was: (run id, audit record, events).
    if_updated: Vec<(&'a str, Option<&'a AuditRecord>, &'a [NewEvent])>,
}

impl<'a> Batch<'a> {
    /// Gathers `writes`.
    pub(super) fn of(writes: impl Iterator<Item = &'a Write>) -> Self {
        let mut b = Self::default();
        for write in writes {
            match write {
                Write::Insert {
                    run,
                    audit,
                    events,
                    lease,
                    version,
                } => {
                    b.versions.extend(version.as_deref());
                    b.inserted.push((run, lease.as_ref()));
                    b.audits.push(audit);
                    b.events.extend(events);
                }
                Write::Update { run, audit, events } => {
                    b.updated.push(run);
                    b.if_updated.push((&run.id, audit.as_ref(), events));
                }
                Write::Finish { run, lines, events } => {
                    b.lines.extend(lines);
                    b.updated.push(run);
                    b.if_updated.push((&run.id, None, events));
                }
                Write::Logs(lines) => b.lines.extend(lines),
            }
        }
        b
    }

    /// Writes the batch in `tx`; the set of updated runs that were written (not ended before).
    pub(super) async fn write(&self, tx: &impl GenericClient) -> Result<HashSet<String>> {
        let versions = async {
            for v in &self.versions {
                insert_version(tx, Some(v)).await?;
            }
            Ok::<(), crate::StoreError>(())
        };
        let (versions, inserted, audits, events, lines, updated) = tokio::join!(
            versions,
            insert_runs(tx, &self.inserted),
            insert_audits(tx, &self.audits),
            insert_events(tx, self.events.iter().copied()),
            insert_logs(tx, &self.lines),
            update_runs(tx, &self.updated),
        );
        // The first failure in order: the statements after it saw the transaction aborted.
        versions?;
        inserted?;
        audits?;
        events?;
        lines?;
        let written = updated?;
        let audits: Vec<&AuditRecord> = self
            .if_updated
            .iter()
            .filter(|(id, ..)| written.contains(*id))
            .filter_map(|(_, audit, _)| *audit)
            .collect();
        let events: Vec<&NewEvent> = self
            .if_updated
            .iter()
            .filter(|(id, ..)| written.contains(*id))
            .flat_map(|(.., events)| events.iter())
            .collect();
        let (audits, events) = tokio::join!(insert_audits(tx, &audits), insert_events(tx, events));
        audits?;
        events?;
        Ok(written)
    }
}

/// The final statuses, for SQL.
fn final_statuses() -> String {
    let quoted: Vec<String> = RunStatus::FINAL.iter().map(|s| format!("'{s}'")).collect();
    quoted.join(", ")
}

static INSERT_RUNS: &str = "INSERT INTO runs (id, action, blueprint, entity, properties, status, \
    status_label, link, summary, progress, error, affected_entities, output, source, created_by, \
    created_at, updated_at, ended_at, attempts, payload, lease_owner, lease_until) \
    SELECT id, action, blueprint, entity, properties, status, status_label, link, summary, \
    progress, error, affected_entities, output, source, created_by, created_at, updated_at, \
    ended_at, attempts, payload::jsonb, lease_owner, lease_until \
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::text[], \
    $7::text[], $8::jsonb[], $9::text[], $10::jsonb[], $11::jsonb[], $12::jsonb[], $13::jsonb[], \
    $14::text[], $15::text[], $16::int8[], $17::int8[], $18::int8[], $19::int4[], $20::text[], \
    $21::text[], $22::int8[]) AS t(id, action, blueprint, entity, properties, status, \
    status_label, link, summary, progress, error, affected_entities, output, source, created_by, \
    created_at, updated_at, ended_at, attempts, payload, lease_owner, lease_until)";

async fn insert_runs(
    tx: &impl GenericClient,
    runs: &[(&RunRecord, Option<&(String, i64)>)],
) -> Result<()> {
    if runs.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = runs.iter().map(|(r, _)| r.id.as_str()).collect();
    let actions: Vec<&str> = runs.iter().map(|(r, _)| r.action.as_str()).collect();
    let blueprints: Vec<Option<&str>> = runs.iter().map(|(r, _)| r.blueprint.as_deref()).collect();
    let entities: Vec<Option<&str>> = runs.iter().map(|(r, _)| r.entity.as_deref()).collect();
    let properties: Vec<_> = runs.iter().map(|(r, _)| &r.properties).collect();
    let statuses: Vec<&str> = runs.iter().map(|(r, _)| r.status.as_str()).collect();
    let labels: Vec<Option<&str>> = runs
        .iter()
        .map(|(r, _)| r.status_label.as_deref())
        .collect();
    let links: Vec<_> = runs.iter().map(|(r, _)| Json(&r.link)).collect();
    let summaries: Vec<Option<&str>> = runs.iter().map(|(r, _)| r.summary.as_deref()).collect();
    let progress: Vec<_> = runs.iter().map(|(r, _)| r.progress.as_ref()).collect();
    let errors: Vec<_> = runs.iter().map(|(r, _)| r.error.as_ref()).collect();
    let affected: Vec<_> = runs.iter().map(|(r, _)| &r.affected_entities).collect();
    let outputs: Vec<_> = runs.iter().map(|(r, _)| r.output.as_ref()).collect();
    let sources: Vec<&str> = runs.iter().map(|(r, _)| r.source.as_str()).collect();
    let creators: Vec<&str> = runs.iter().map(|(r, _)| r.created_by.as_str()).collect();
    let created: Vec<i64> = runs.iter().map(|(r, _)| ms(r.created_at)).collect();
    let updated: Vec<i64> = runs.iter().map(|(r, _)| ms(r.updated_at)).collect();
    let ended: Vec<Option<i64>> = runs.iter().map(|(r, _)| r.ended_at.map(ms)).collect();
    let attempts: Vec<i32> = runs.iter().map(|(r, _)| r.attempts).collect();
    let payloads: Vec<&str> = runs.iter().map(|(r, _)| r.payload.as_str()).collect();
    let owners: Vec<Option<&str>> = runs.iter().map(|(_, l)| l.map(|l| l.0.as_str())).collect();
    let untils: Vec<Option<i64>> = runs.iter().map(|(_, l)| l.map(|l| l.1)).collect();
    let stmt = tx.prepare_cached(INSERT_RUNS).await.map_err(pg)?;
    tx.execute(
        &stmt,
        &[
            &ids,
            &actions,
            &blueprints,
            &entities,
            &properties,
            &statuses,
            &labels,
            &links,
            &summaries,
            &progress,
            &errors,
            &affected,
            &outputs,
            &sources,
            &creators,
            &created,
            &updated,
            &ended,
            &attempts,
            &payloads,
            &owners,
            &untils,
        ],
    )
    .await
    .map_err(|e| conflict_or(e, || "a run of the batch".into()))?;
    Ok(())
}

static INSERT_AUDITS: &str = "INSERT INTO audit_log (at, actor, operation, resource_type, \
    resource_id, blueprint, run_id, before, after, status, reason, origin) \
    SELECT * FROM unnest($1::int8[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
    $7::text[], $8::jsonb[], $9::jsonb[], $10::text[], $11::text[], $12::text[])";

async fn insert_audits(tx: &impl GenericClient, audits: &[&AuditRecord]) -> Result<()> {
    if audits.is_empty() {
        return Ok(());
    }
    let at: Vec<i64> = audits.iter().map(|a| ms(a.at)).collect();
    let actors: Vec<&str> = audits.iter().map(|a| a.actor.as_str()).collect();
    let operations: Vec<&str> = audits.iter().map(|a| a.operation.as_str()).collect();
    let types: Vec<&str> = audits.iter().map(|a| a.resource_type.as_str()).collect();
    let ids: Vec<&str> = audits.iter().map(|a| a.resource_id.as_str()).collect();
    let blueprints: Vec<Option<&str>> = audits.iter().map(|a| a.blueprint.as_deref()).collect();
    let runs: Vec<Option<&str>> = audits.iter().map(|a| a.run_id.as_deref()).collect();
    let before: Vec<_> = audits.iter().map(|a| a.before.as_ref()).collect();
    let after: Vec<_> = audits.iter().map(|a| a.after.as_ref()).collect();
    let statuses: Vec<&str> = audits.iter().map(|a| audit_status(a.status)).collect();
    let reasons: Vec<Option<&str>> = audits.iter().map(|a| a.reason.as_deref()).collect();
    let origins: Vec<&str> = audits.iter().map(|a| a.origin.as_str()).collect();
    let stmt = tx.prepare_cached(INSERT_AUDITS).await.map_err(pg)?;
    tx.execute(
        &stmt,
        &[
            &at,
            &actors,
            &operations,
            &types,
            &ids,
            &blueprints,
            &runs,
            &before,
            &after,
            &statuses,
            &reasons,
            &origins,
        ],
    )
    .await
    .map_err(pg)?;
    Ok(())
}

static INSERT_LOGS: &str = "INSERT INTO run_logs (run_id, seq, at, level, message) \
    SELECT * FROM unnest($1::text[], $2::int8[], $3::int8[], $4::text[], $5::text[])";

async fn insert_logs(tx: &impl GenericClient, lines: &[&RunLogLine]) -> Result<()> {
    if lines.is_empty() {
        return Ok(());
    }
    let runs: Vec<&str> = lines.iter().map(|l| l.run_id.as_str()).collect();
    let seqs: Vec<i64> = lines.iter().map(|l| l.seq).collect();
    let at: Vec<i64> = lines.iter().map(|l| ms(l.at)).collect();
    let levels: Vec<&str> = lines.iter().map(|l| l.level.as_str()).collect();
    let messages: Vec<&str> = lines.iter().map(|l| l.message.as_str()).collect();
    let stmt = tx.prepare_cached(INSERT_LOGS).await.map_err(pg)?;
    tx.execute(&stmt, &[&runs, &seqs, &at, &levels, &messages])
        .await
        .map_err(|e| conflict_or(e, || "a log line of the batch".into()))?;
    Ok(())
}

/// [`crate::sql::UPDATE_RUN`] for many runs.
static UPDATE_RUNS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE runs SET status = v.status, status_label = v.status_label, link = v.link, \
         summary = v.summary, progress = v.progress, error = v.error, \
         affected_entities = v.affected_entities, output = v.output, \
         updated_at = v.updated_at, ended_at = v.ended_at, \
         lease_owner = CASE WHEN v.final THEN NULL ELSE runs.lease_owner END, \
         lease_until = CASE WHEN v.final THEN NULL ELSE runs.lease_until END, \
         payload = CASE WHEN v.final AND jsonb_typeof(runs.payload) = 'object' \
         THEN runs.payload - 'sealed' ELSE runs.payload END \
         FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::text[], $6::jsonb[], \
         $7::jsonb[], $8::jsonb[], $9::jsonb[], $10::int8[], $11::int8[], $12::bool[]) \
         AS v(id, status, status_label, link, summary, progress, error, affected_entities, \
         output, updated_at, ended_at, final) \
         WHERE runs.id = v.id AND runs.status NOT IN ({}) RETURNING runs.id",
        final_statuses()
    )
});

async fn update_runs(tx: &impl GenericClient, runs: &[&RunRecord]) -> Result<HashSet<String>> {
    if runs.is_empty() {
        return Ok(HashSet::new());
    }
    let ids: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();
    let statuses: Vec<&str> = runs.iter().map(|r| r.status.as_str()).collect();
    let labels: Vec<Option<&str>> = runs.iter().map(|r| r.status_label.as_deref()).collect();
    let links: Vec<_> = runs.iter().map(|r| Json(&r.link)).collect();
    let summaries: Vec<Option<&str>> = runs.iter().map(|r| r.summary.as_deref()).collect();
    let progress: Vec<_> = runs.iter().map(|r| r.progress.as_ref()).collect();
    let errors: Vec<_> = runs.iter().map(|r| r.error.as_ref()).collect();
    let affected: Vec<_> = runs.iter().map(|r| &r.affected_entities).collect();
    let outputs: Vec<_> = runs.iter().map(|r| r.output.as_ref()).collect();
    let updated: Vec<i64> = runs.iter().map(|r| ms(r.updated_at)).collect();
    let ended: Vec<Option<i64>> = runs.iter().map(|r| r.ended_at.map(ms)).collect();
    let finals: Vec<bool> = runs.iter().map(|r| r.is_final()).collect();
    let stmt = tx.prepare_cached(&UPDATE_RUNS).await.map_err(pg)?;
    let written = tx
        .query(
            &stmt,
            &[
                &ids, &statuses, &labels, &links, &summaries, &progress, &errors, &affected,
                &outputs, &updated, &ended, &finals,
            ],
        )
        .await
        .map_err(pg)?;
    written
        .iter()
        .map(|row| row.try_get::<_, String>(0).map_err(pg))
        .collect()
}
