//! [`ActionRegistry`] on SQLite.

use super::audit::insert_audit;
use super::{SqliteStore, conflict_or};
use crate::rows::{self, ms};
use crate::sql;
use crate::{ActionRecord, ActionRegistry, AuditRecord, Result, Write, db};
use rusqlite::{OptionalExtension, params};

#[async_trait::async_trait]
impl ActionRegistry for SqliteStore {
    async fn put_action(&self, a: ActionRecord, write: Write, audit: AuditRecord) -> Result<()> {
        self.write(move |c| {
            c.execute(
                sql::put_action(write).sqlite(),
                params![
                    a.identifier,
                    a.plugin,
                    a.data.to_string(),
                    ms(a.created_at),
                    ms(a.updated_at)
                ],
            )
            .map_err(|e| conflict_or(e, || format!("action `{}`", a.identifier)))?;
            insert_audit(c, &audit)
        })
        .await
    }

    async fn get_action(&self, identifier: &str) -> Result<Option<ActionRecord>> {
        let id = identifier.to_owned();
        self.read(move |c| {
            c.prepare_cached(sql::GET_ACTION.sqlite())
                .map_err(db)?
                .query_row([id], |r| rows::action(r))
                .optional()
                .map_err(db)
        })
        .await
    }

    async fn list_actions(&self) -> Result<Vec<ActionRecord>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(sql::LIST_ACTIONS.sqlite()).map_err(db)?;
            let rows = stmt.query_map([], |r| rows::action(r)).map_err(db)?;
            rows.collect::<rusqlite::Result<_>>().map_err(db)
        })
        .await
    }

    async fn delete_action(&self, identifier: &str, audit: AuditRecord) -> Result<bool> {
        let id = identifier.to_owned();
        self.write(move |c| {
            let deleted = c.execute(sql::DELETE_ACTION.sqlite(), [&id]).map_err(db)?;
            if deleted > 0 {
                insert_audit(c, &audit)?;
            }
            Ok(deleted > 0)
        })
        .await
    }
}
