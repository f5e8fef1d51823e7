//! [`Coordination`] on SQLite: the outbox and leadership tables, written through the writer
//! thread like every other write (so a claim cannot race another claim), and the event insert
//! that other writes run in their transaction.

use super::SqliteStore;
use super::audit::insert_audit;
use crate::rows::{self, ms, sql_limit};
use crate::{AuditRecord, Coordination, NewEvent, OutboxEvent, Result, db, sql};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};

/// An event as SQLite stores it: topic and body text, serialized before the writer runs.
pub(super) struct EventRow {
    topic: &'static str,
    body: String,
}

/// Events as rows, serialized on the caller's thread (the writer thread is the bottleneck).
pub(super) fn event_rows(events: &[NewEvent]) -> Vec<EventRow> {
    events
        .iter()
        .map(|e| EventRow {
            topic: e.topic,
            body: e.body.to_string(),
        })
        .collect()
}

/// Writes events in the writer's open transaction.
pub(super) fn insert_events(c: &Connection, events: &[EventRow]) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let now = ms(crate::now());
    let mut insert = c.prepare_cached(sql::INSERT_EVENT.sqlite()).map_err(db)?;
    for e in events {
        insert.execute(params![e.topic, e.body, now]).map_err(db)?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl Coordination for SqliteStore {
    async fn emit(&self, events: Vec<NewEvent>) -> Result<()> {
        let rows = event_rows(&events);
        self.write(move |c| insert_events(c, &rows)).await
    }

    async fn claim_events(
        &self,
        limit: usize,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<OutboxEvent>> {
        let mut claimed = self
            .write(move |c| {
                let mut claim = c.prepare_cached(sql::CLAIM_EVENTS.sqlite()).map_err(db)?;
                let rows = claim
                    .query_map(params![ms(now), sql_limit(limit), ms(lease_until)], |r| {
                        rows::event(r)
                    })
                    .map_err(db)?;
                rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
            })
            .await?;
        claimed.sort_by_key(|e| e.id);
        Ok(claimed)
    }

    async fn ack_events(&self, ids: Vec<i64>, audit: Vec<AuditRecord>) -> Result<()> {
        self.write(move |c| {
            let mut delete = c
                .prepare_cached("DELETE FROM outbox WHERE id = ?1")
                .map_err(db)?;
            for id in &ids {
                delete.execute([id]).map_err(db)?;
            }
            audit.iter().try_for_each(|a| insert_audit(c, a))
        })
        .await
    }

    async fn retry_event(&self, id: i64, at: DateTime<Utc>) -> Result<()> {
        self.write(move |c| {
            c.prepare_cached(sql::RETRY_EVENT.sqlite())
                .map_err(db)?
                .execute(params![id, ms(at)])
                .map_err(db)?;
            Ok(())
        })
        .await
    }

    async fn outbox_backlog(&self) -> Result<u64> {
        self.count(&sql::COUNT_EVENTS, []).await
    }

    async fn lead(
        &self,
        role: &str,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool> {
        let (role, owner) = (role.to_owned(), owner.to_owned());
        self.write(move |c| {
            let n = c
                .prepare_cached(sql::LEAD.sqlite())
                .map_err(db)?
                .execute(params![role, owner, ms(now), ms(until)])
                .map_err(db)?;
            Ok(n > 0)
        })
        .await
    }
}
