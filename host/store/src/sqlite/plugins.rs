//! [`PluginRegistry`] on SQLite.

use super::audit::insert_audit;
use super::{SqliteStore, change};
use crate::rows::{self, ms};
use crate::sql;
use crate::{AuditRecord, PluginRegistry, PluginVersion, Result, db};
use rusqlite::params;

#[async_trait::async_trait]
impl PluginRegistry for SqliteStore {
    async fn put_plugin(
        &self,
        v: PluginVersion,
        bytes: Vec<u8>,
        audit: AuditRecord,
    ) -> Result<bool> {
        self.write(move |c| {
            let row = params![
                v.name,
                v.digest,
                v.size as i64,
                bytes,
                ms(v.created_at),
                v.created_by
            ];
            change(c, &sql::INSERT_PLUGIN, row, &audit)
        })
        .await
    }

    async fn list_plugins(&self) -> Result<Vec<PluginVersion>> {
        self.all(&sql::LIST_PLUGINS, [], |r| rows::plugin(r)).await
    }

    async fn plugin_bytes(&self, name: &str, digest: &str) -> Result<Option<Vec<u8>>> {
        let key = [name.to_owned(), digest.to_owned()];
        self.one(&sql::PLUGIN_BYTES, key, |r| r.get(0)).await
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

    async fn withdraw_plugin_version(
        &self,
        name: &str,
        digest: &str,
        audit: AuditRecord,
    ) -> Result<bool> {
        let (name, digest) = (name.to_owned(), digest.to_owned());
        self.write(move |c| {
            change(
                c,
                &sql::WITHDRAW_PLUGIN_VERSION,
                params![name, digest],
                &audit,
            )
        })
        .await
    }
}
