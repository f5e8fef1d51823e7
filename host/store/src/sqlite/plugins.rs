//! SqliteStore: the [`crate::PluginRegistry`] methods.

use super::*;

#[async_trait::async_trait]
impl crate::PluginRegistry for SqliteStore {
    async fn put_plugin(
        &self,
        v: PluginVersion,
        bytes: Vec<u8>,
        audit: AuditRecord,
    ) -> Result<bool> {
        self.write(move |c| {
            let added = c
                .execute(
                    "INSERT OR IGNORE INTO plugins (name, digest, size, bytes, created_at, created_by) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![v.name, v.digest, v.size as i64, bytes, ms(v.created_at), v.created_by],
                )
                .map_err(db)?;
            if added > 0 {
                insert_audit(c, &audit)?;
            }
            Ok(added > 0)
        })
        .await
    }

    async fn list_plugins(&self) -> Result<Vec<PluginVersion>> {
        self.read(|c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT name, digest, size, created_at, created_by FROM plugins \
                     ORDER BY name, created_at DESC, digest",
                )
                .map_err(db)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(PluginVersion {
                        name: r.get(0)?,
                        digest: r.get(1)?,
                        size: r.get::<_, i64>(2)? as u64,
                        created_at: at(r.get(3)?),
                        created_by: r.get(4)?,
                    })
                })
                .map_err(db)?;
            rows.collect::<rusqlite::Result<_>>().map_err(db)
        })
        .await
    }

    async fn plugin_bytes(&self, name: &str, digest: &str) -> Result<Option<Vec<u8>>> {
        let (name, digest) = (name.to_owned(), digest.to_owned());
        self.read(move |c| {
            c.query_row(
                "SELECT bytes FROM plugins WHERE name = ?1 AND digest = ?2",
                [name, digest],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)
        })
        .await
    }

    async fn delete_plugin(&self, name: &str, audit: AuditRecord) -> Result<bool> {
        let name = name.to_owned();
        self.write(move |c| {
            let users: i64 = c
                .query_row(
                    "SELECT count(*) FROM actions WHERE plugin = ?1",
                    [&name],
                    |r| r.get(0),
                )
                .map_err(db)?;
            if users > 0 {
                return Err(StoreError::InUse(format!(
                    "plugin `{name}` is used by {users} action(s); change or delete them first"
                )));
            }
            let deleted = c
                .execute("DELETE FROM plugins WHERE name = ?1", [&name])
                .map_err(db)?;
            if deleted > 0 {
                insert_audit(c, &audit)?;
            }
            Ok(deleted > 0)
        })
        .await
    }
}
