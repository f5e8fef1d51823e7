//! [`PluginRegistry`] on SQLite.

use super::SqliteStore;
use super::audit::insert_audit;
use crate::rows::{self, ms};
use crate::sql;
use crate::{AuditRecord, PluginRegistry, PluginVersion, Result, db};
use rusqlite::{OptionalExtension, params};

#[async_trait::async_trait]
impl PluginRegistry for SqliteStore {
    async fn put_plugin(
        &self,
        v: PluginVersion,
        bytes: Vec<u8>,
        audit: AuditRecord,
    ) -> Result<bool> {
        self.write(move |c| {
            let added = c
                .execute(
                    sql::INSERT_PLUGIN.sqlite(),
                    params![
                        v.name,
                        v.digest,
                        v.size as i64,
                        bytes,
                        ms(v.created_at),
                        v.created_by
                    ],
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
            let mut stmt = c.prepare_cached(sql::LIST_PLUGINS.sqlite()).map_err(db)?;
            let rows = stmt.query_map([], |r| rows::plugin(r)).map_err(db)?;
            rows.collect::<rusqlite::Result<_>>().map_err(db)
        })
        .await
    }

    async fn plugin_bytes(&self, name: &str, digest: &str) -> Result<Option<Vec<u8>>> {
        let (name, digest) = (name.to_owned(), digest.to_owned());
        self.read(move |c| {
            c.query_row(sql::PLUGIN_BYTES.sqlite(), [name, digest], |r| r.get(0))
                .optional()
                .map_err(db)
        })
        .await
    }

    async fn delete_plugin(&self, name: &str, audit: AuditRecord) -> Result<bool> {
        let name = name.to_owned();
        self.write(move |c| {
            let users: i64 = c
                .query_row(sql::PLUGIN_USERS.sqlite(), [&name], |r| r.get(0))
                .map_err(db)?;
            if users > 0 {
                return Err(crate::plugin_in_use(&name, users));
            }
            let deleted = c
                .execute(sql::DELETE_PLUGIN.sqlite(), [&name])
                .map_err(db)?;
            if deleted > 0 {
                insert_audit(c, &audit)?;
            }
            Ok(deleted > 0)
        })
        .await
    }
}
