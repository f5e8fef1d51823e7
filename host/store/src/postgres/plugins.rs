//! PostgresStore: the [`crate::PluginRegistry`] methods.

use super::*;

#[async_trait::async_trait]
impl crate::PluginRegistry for PostgresStore {
    async fn put_plugin(
        &self,
        v: PluginVersion,
        bytes: Vec<u8>,
        audit: AuditRecord,
    ) -> Result<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let added = tx
            .execute(
                "INSERT INTO plugins (name, digest, size, bytes, created_at, created_by) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                &[
                    &v.name,
                    &v.digest,
                    &(v.size as i64),
                    &bytes,
                    &ms(v.created_at),
                    &v.created_by,
                ],
            )
            .await
            .map_err(pg)?;
        if added > 0 {
            insert_audit(&tx, &audit).await?;
        }
        tx.commit().await.map_err(pg)?;
        Ok(added > 0)
    }

    async fn list_plugins(&self) -> Result<Vec<PluginVersion>> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(
                "SELECT name, digest, size, created_at, created_by FROM plugins \
                 ORDER BY name, created_at DESC, digest",
            )
            .await
            .map_err(pg)?;
        c.query(&stmt, &[])
            .await
            .map_err(pg)?
            .iter()
            .map(|r| {
                Ok(PluginVersion {
                    name: r.try_get(0).map_err(pg)?,
                    digest: r.try_get(1).map_err(pg)?,
                    size: r.try_get::<_, i64>(2).map_err(pg)? as u64,
                    created_at: at(r.try_get(3).map_err(pg)?),
                    created_by: r.try_get(4).map_err(pg)?,
                })
            })
            .collect()
    }

    async fn plugin_bytes(&self, name: &str, digest: &str) -> Result<Option<Vec<u8>>> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                "SELECT bytes FROM plugins WHERE name = $1 AND digest = $2",
                &[&name, &digest],
            )
            .await
            .map_err(pg)?;
        row.map(|r| r.try_get(0).map_err(pg)).transpose()
    }

    async fn delete_plugin(&self, name: &str, audit: AuditRecord) -> Result<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let users: i64 = tx
            .query_one("SELECT count(*) FROM actions WHERE plugin = $1", &[&name])
            .await
            .and_then(|r| r.try_get(0))
            .map_err(pg)?;
        if users > 0 {
            return Err(StoreError::InUse(format!(
                "plugin `{name}` is used by {users} action(s); change or delete them first"
            )));
        }
        let deleted = tx
            .execute("DELETE FROM plugins WHERE name = $1", &[&name])
            .await
            .map_err(pg)?;
        if deleted > 0 {
            insert_audit(&tx, &audit).await?;
        }
        tx.commit().await.map_err(pg)?;
        Ok(deleted > 0)
    }
}
