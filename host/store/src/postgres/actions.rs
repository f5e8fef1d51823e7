//! [`ActionDefinitions`] on Postgres.

use super::audit::insert_audit;
use super::{PostgresStore, conflict_or, pg};
use crate::rows::{self, ms};
use crate::sql;
use crate::{ActionDefinitions, ActionRecord, AuditRecord, Result, Write};

#[async_trait::async_trait]
impl ActionDefinitions for PostgresStore {
    async fn put_action(&self, a: ActionRecord, write: Write, audit: AuditRecord) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        tx.execute(
            sql::put_action(write).postgres(),
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
        self.one(&sql::GET_ACTION, &[&identifier], rows::action)
            .await
    }

    async fn list_actions(&self) -> Result<Vec<ActionRecord>> {
        self.all(&sql::LIST_ACTIONS, &[], rows::action).await
    }

    async fn delete_action(&self, identifier: &str, audit: AuditRecord) -> Result<bool> {
        self.change(&sql::DELETE_ACTION, &[&identifier], &audit)
            .await
    }
}
