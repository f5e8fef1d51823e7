//! [`Coordination`] on Postgres: replicas claim events with `FOR UPDATE SKIP LOCKED`, as they
//! claim runs, and take leadership with an upsert that changes no row while another replica's
//! term lasts. Also the event insert other writes run in their transaction.

use super::audit::insert_audit;
use super::{PostgresStore, pg};
use crate::rows::{self, ms, sql_limit};
use crate::{AuditRecord, Coordination, NewEvent, OutboxEvent, Result, sql};
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

/// Events written with one multi-row statement, whatever their number.
const INSERT_EVENTS: &str = "INSERT INTO outbox (topic, body, created_at, due_at) \
    SELECT topic, body, $3, $3 FROM unnest($1::text[], $2::jsonb[]) AS t(topic, body)";

/// Writes events on a connection or inside the caller's transaction.
pub(super) async fn insert_events<'a>(
    c: &impl GenericClient,
    events: impl IntoIterator<Item = &'a NewEvent>,
) -> Result<()> {
    let (topics, bodies): (Vec<&str>, Vec<&serde_json::Value>) =
        events.into_iter().map(|e| (e.topic, &e.body)).unzip();
    if topics.is_empty() {
        return Ok(());
    }
    let now = ms(crate::now());
    let stmt = c.prepare_cached(INSERT_EVENTS).await.map_err(pg)?;
    c.execute(&stmt, &[&topics, &bodies, &now])
        .await
        .map_err(pg)?;
    Ok(())
}

#[async_trait::async_trait]
impl Coordination for PostgresStore {
    async fn emit(&self, events: Vec<NewEvent>) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        insert_events(&tx, &events).await?;
        tx.commit().await.map_err(pg)
    }

    async fn claim_events(
        &self,
        limit: usize,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<OutboxEvent>> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(sql::CLAIM_EVENTS.postgres())
            .await
            .map_err(pg)?;
        let mut claimed = c
            .query(&stmt, &[&ms(now), &sql_limit(limit), &ms(lease_until)])
            .await
            .map_err(pg)?
            .iter()
            .map(rows::event)
            .collect::<Result<Vec<_>>>()?;
        claimed.sort_by_key(|e| e.id);
        Ok(claimed)
    }

    async fn ack_events(&self, ids: Vec<i64>, audit: Vec<AuditRecord>) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        tx.execute("DELETE FROM outbox WHERE id = ANY($1)", &[&ids])
            .await
            .map_err(pg)?;
        for a in &audit {
            insert_audit(&tx, a).await?;
        }
        tx.commit().await.map_err(pg)
    }

    async fn retry_event(&self, id: i64, at: DateTime<Utc>) -> Result<()> {
        let c = self.client().await?;
        c.execute(sql::RETRY_EVENT.postgres(), &[&id, &ms(at)])
            .await
            .map_err(pg)?;
        Ok(())
    }

    async fn outbox_backlog(&self) -> Result<u64> {
        self.count(&sql::COUNT_EVENTS, &[]).await
    }

    async fn lead(
        &self,
        role: &str,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool> {
        let c = self.client().await?;
        let n = c
            .execute(sql::LEAD.postgres(), &[&role, &owner, &ms(now), &ms(until)])
            .await
            .map_err(pg)?;
        Ok(n > 0)
    }
}
