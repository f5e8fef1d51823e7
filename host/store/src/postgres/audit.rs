//! [`AuditTrail`] on Postgres, and the audit insert every write runs in its transaction.

use super::{PostgresStore, bind, pg};
use crate::query::Dialect;
use crate::rows::{self, audit_status, ms};
use crate::sql;
use crate::{AuditFilter, AuditRecord, AuditTrail, Result};
use deadpool_postgres::GenericClient;

/// Appends an audit record, on a connection or inside the caller's transaction.
pub(super) async fn insert_audit(c: &impl GenericClient, a: &AuditRecord) -> Result<()> {
    let stmt = c
        .prepare_cached(sql::INSERT_AUDIT.postgres())
        .await
        .map_err(pg)?;
    c.execute(
        &stmt,
        &[
            &ms(a.at),
            &a.actor,
            &a.operation,
            &a.resource_type,
            &a.resource_id,
            &a.blueprint,
            &a.run_id,
            &a.before,
            &a.after,
            &audit_status(a.status),
            &a.reason,
            &a.origin,
        ],
    )
    .await
    .map_err(pg)?;
    Ok(())
}

#[async_trait::async_trait]
impl AuditTrail for PostgresStore {
    async fn record(&self, audit: AuditRecord) -> Result<()> {
        // One statement: it is its own transaction.
        insert_audit(&self.client().await?, &audit).await
    }

    async fn audit_log(&self, f: &AuditFilter) -> Result<Vec<AuditRecord>> {
        let (text, params) = sql::audit_log(f, Dialect::Postgres);
        let params: Vec<_> = params.iter().map(bind).collect();
        let c = self.client().await?;
        c.query_typed(&text, &params)
            .await
            .map_err(pg)?
            .iter()
            .map(rows::audit_record)
            .collect()
    }
}
