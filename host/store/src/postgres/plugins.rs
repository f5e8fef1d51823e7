//! [`PluginRegistry`] on Postgres.

use super::audit::insert_audit;
use super::{PostgresStore, pg};
use crate::rows::{self, ms};
use crate::sql;
use crate::{AuditRecord, PluginRegistry, PluginVersion, Result};
use tokio_postgres::types::ToSql;

#[async_trait::async_trait]
impl PluginRegistry for PostgresStore {
    async fn put_plugin(
        &self,
        v: PluginVersion,
        bytes: Vec<u8>,
        audit: AuditRecord,
    ) -> Result<bool> {
        let row: [&(dyn ToSql + Sync); 6] = [
            &v.name,
            &v.digest,
            &(v.size as i64),
            &bytes,
            &ms(v.created_at),
            &v.created_by,
        ];
        self.change(&sql::INSERT_PLUGIN, &row, &audit).await
    }

    async fn list_plugins(&self) -> Result<Vec<PluginVersion>> {
        self.all(&sql::LIST_PLUGINS, &[], rows::plugin).await
    }

    async fn plugin_bytes(&self, name: &str, digest: &str) -> Result<Option<Vec<u8>>> {
        self.one(&sql::PLUGIN_BYTES, &[&name, &digest], |r| {
            r.try_get(0).map_err(pg)
        })
        .await
    }

    async fn delete_plugin(&self, name: &str, audit: AuditRecord) -> Result<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let users: i64 = tx
            .query_one(sql::PLUGIN_USERS.postgres(), &[&name])
            .await
            .and_then(|r| r.try_get(0))
            .map_err(pg)?;
        if users > 0 {
            return Err(crate::plugin_in_use(name, users));
        }
        let deleted = tx
            .execute(sql::DELETE_PLUGIN.postgres(), &[&name])
            .await
            .map_err(pg)?;
        if deleted > 0 {
            insert_audit(&tx, &audit).await?;
        }
        tx.commit().await.map_err(pg)?;
        Ok(deleted > 0)
    }

    async fn withdraw_plugin_version(
        &self,
        name: &str,
        digest: &str,
        audit: AuditRecord,
    ) -> Result<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let deleted = tx
            .execute(sql::WITHDRAW_PLUGIN_VERSION.postgres(), &[&name, &digest])
            .await
            .map_err(pg)?;
        if deleted > 0 {
            insert_audit(&tx, &audit).await?;
        }
        tx.commit().await.map_err(pg)?;
        Ok(deleted > 0)
    }
}
