//! SqliteStore: the [`crate::ActionRegistry`] methods.

use super::*;

#[async_trait::async_trait]
impl crate::ActionRegistry for SqliteStore {
    async fn put_action(&self, a: ActionRecord, write: Write, audit: AuditRecord) -> Result<()> {
        self.write(move |c| {
            let verb = match write {
                Write::Create => "INSERT",
                Write::Replace => "INSERT OR REPLACE",
            };
            c.execute(
                &format!(
                    "{verb} INTO actions (identifier, plugin, data, created_at, updated_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5)"
                ),
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
            c.prepare_cached(
                "SELECT identifier, plugin, data, created_at, updated_at FROM actions WHERE identifier = ?1",
            )
            .map_err(db)?
            .query_row([id], action)
            .optional()
            .map_err(db)
        })
        .await
    }

    async fn list_actions(&self) -> Result<Vec<ActionRecord>> {
        self.read(|c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT identifier, plugin, data, created_at, updated_at FROM actions ORDER BY identifier",
                )
                .map_err(db)?;
            let rows = stmt.query_map([], action).map_err(db)?;
            rows.collect::<rusqlite::Result<_>>().map_err(db)
        })
        .await
    }

    async fn delete_action(&self, identifier: &str, audit: AuditRecord) -> Result<bool> {
        let id = identifier.to_owned();
        self.write(move |c| {
            let deleted = c
                .execute("DELETE FROM actions WHERE identifier = ?1", [&id])
                .map_err(db)?;
            if deleted > 0 {
                insert_audit(c, &audit)?;
            }
            Ok(deleted > 0)
        })
        .await
    }
}
