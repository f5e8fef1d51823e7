//! [`ActionDefinitions`] on SQLite.

use super::audit::insert_audit;
use super::{SqliteStore, change, conflict_or};
use crate::rows::{self, ms};
use crate::sql;
use crate::{ActionDefinitions, ActionRecord, AuditRecord, Result, Write};
use rusqlite::params;

#[async_trait::async_trait]
impl ActionDefinitions for SqliteStore {
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
        self.one(&sql::GET_ACTION, [identifier.to_owned()], |r| {
            rows::action(r)
        })
        .await
    }

    async fn list_actions(&self) -> Result<Vec<ActionRecord>> {
        self.all(&sql::LIST_ACTIONS, [], |r| rows::action(r)).await
    }

    async fn delete_action(&self, identifier: &str, audit: AuditRecord) -> Result<bool> {
        let id = identifier.to_owned();
        self.write(move |c| change(c, &sql::DELETE_ACTION, [&id], &audit))
            .await
    }
}
