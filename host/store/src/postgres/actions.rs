//! PostgresStore: the [`crate::ActionRegistry`] methods.

use super::*;

#[async_trait::async_trait]
impl crate::ActionRegistry for PostgresStore {
    async fn put_action(&self, a: ActionRecord, write: Write, audit: AuditRecord) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let sql = match write {
            Write::Create => {
                "INSERT INTO actions (identifier, plugin, data, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5)"
            }
            Write::Replace => {
                "INSERT INTO actions (identifier, plugin, data, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (identifier) DO UPDATE SET \
                 plugin = EXCLUDED.plugin, data = EXCLUDED.data, updated_at = EXCLUDED.updated_at"
            }
        };
        tx.execute(
            sql,
            &[
                &a.identifier,
                &a.plugin,
                &a.data,
                &ms(a.created_at),
                &ms(a.updated_at),
            ],
        )
        .await
        .map_err(|e| conflict_or(e, || format!("action `{}`", a.identifier)))?;
        insert_audit(&tx, &audit).await?;
        tx.commit().await.map_err(pg)
    }

    async fn get_action(&self, identifier: &str) -> Result<Option<ActionRecord>> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                "SELECT identifier, plugin, data, created_at, updated_at FROM actions WHERE identifier = $1",
                &[&identifier],
            )
            .await
            .map_err(pg)?;
        row.as_ref().map(action).transpose()
    }

    async fn list_actions(&self) -> Result<Vec<ActionRecord>> {
        let c = self.client().await?;
        c.query(
            "SELECT identifier, plugin, data, created_at, updated_at FROM actions ORDER BY identifier",
            &[],
        )
        .await
        .map_err(pg)?
        .iter()
        .map(action)
        .collect()
    }

    async fn delete_action(&self, identifier: &str, audit: AuditRecord) -> Result<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let deleted = tx
            .execute("DELETE FROM actions WHERE identifier = $1", &[&identifier])
            .await
            .map_err(pg)?;
        if deleted > 0 {
            insert_audit(&tx, &audit).await?;
        }
        tx.commit().await.map_err(pg)?;
        Ok(deleted > 0)
    }
}
