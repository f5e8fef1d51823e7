//! [`AuditTrail`] on SQLite, and the audit insert every write runs in its transaction.

use super::{SqliteStore, bind};
use crate::query::Dialect;
use crate::rows::{self, audit_status, ms};
use crate::sql;
use crate::{AuditFilter, AuditRecord, AuditTrail, Result, db};
use rusqlite::{Connection, params, params_from_iter};
use serde_json::Value;

/// Appends `a` in the writer's open transaction.
pub(super) fn insert_audit(conn: &Connection, a: &AuditRecord) -> Result<()> {
    conn.prepare_cached(sql::INSERT_AUDIT.sqlite())
        .map_err(db)?
        .execute(params![
            ms(a.at),
            a.actor,
            a.operation,
            a.resource_type,
            a.resource_id,
            a.blueprint,
            a.run_id,
            a.before.as_ref().map(Value::to_string),
            a.after.as_ref().map(Value::to_string),
            audit_status(a.status),
            a.reason,
            a.origin,
        ])
        .map_err(db)?;
    Ok(())
}

#[async_trait::async_trait]
impl AuditTrail for SqliteStore {
    async fn record(&self, audit: AuditRecord) -> Result<()> {
        self.write(move |c| insert_audit(c, &audit)).await
    }

    async fn audit_log(&self, f: &AuditFilter) -> Result<Vec<AuditRecord>> {
        let (text, params) = sql::audit_log(f, Dialect::Sqlite);
        self.read(move |c| {
            let mut stmt = c.prepare(&text).map_err(db)?;
            let rows = stmt
                .query_map(params_from_iter(params.iter().map(bind)), |r| {
                    rows::audit_record(r)
                })
                .map_err(db)?;
            rows.collect::<rusqlite::Result<_>>().map_err(db)
        })
        .await
    }
}
