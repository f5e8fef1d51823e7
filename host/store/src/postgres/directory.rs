//! [`UserDirectory`] on Postgres.

use super::audit::insert_audit;
use super::{PostgresStore, conflict_or, pg};
use crate::rows::{self, ms};
use crate::sql;
use crate::{
    ApiToken, AuditRecord, Credential, Result, Role, StoreError, Team, User, UserDirectory,
};
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::types::Json;

async fn insert_token(c: &impl GenericClient, t: &ApiToken, token_hash: &str) -> Result<()> {
    c.execute(
        sql::INSERT_TOKEN.postgres(),
        &[
            &t.id,
            &t.user,
            &t.name,
            &t.prefix,
            &token_hash,
            &ms(t.created_at),
            &t.rotated_at.map(ms),
            &t.last_used_at.map(ms),
        ],
    )
    .await
    .map_err(|e| conflict_or(e, || format!("token `{}`", t.id)))?;
    Ok(())
}

/// [`StoreError::InUse`] when `identifier` is an enabled admin and no other enabled admin
/// exists. Locks the enabled admins' rows first, so two transactions demoting two different
/// admins at once cannot both pass: the second waits, then sees the first's change.
async fn keep_an_admin(c: &impl GenericClient, identifier: &str) -> Result<()> {
    let admins: Vec<String> = c
        .query(
            "SELECT identifier FROM users WHERE role = 'admin' AND NOT disabled \
             ORDER BY identifier FOR UPDATE",
            &[],
        )
        .await
        .map_err(pg)?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<std::result::Result<_, _>>()
        .map_err(pg)?;
    if admins.iter().any(|a| a == identifier) && admins.len() == 1 {
        return Err(StoreError::InUse(crate::last_admin(identifier)));
    }
    Ok(())
}

#[async_trait::async_trait]
impl UserDirectory for PostgresStore {
    async fn create_user(
        &self,
        u: User,
        t: ApiToken,
        token_hash: String,
        audit: AuditRecord,
    ) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        tx.execute(
            sql::INSERT_USER.postgres(),
            &[
                &u.identifier,
                &u.email,
                &u.role.as_str(),
                &Json(&u.teams),
                &u.disabled,
                &ms(u.created_at),
            ],
        )
        .await
        .map_err(|e| conflict_or(e, || format!("user `{}`", u.identifier)))?;
        insert_token(&tx, &t, &token_hash)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => StoreError::Conflict(format!("user `{}`", u.identifier)),
                other => other,
            })?;
        insert_audit(&tx, &audit).await?;
        tx.commit().await.map_err(pg)
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        self.all(&sql::LIST_USERS, &[], rows::user).await
    }

    async fn get_user(&self, identifier: &str) -> Result<Option<User>> {
        self.one(&sql::GET_USER, &[&identifier], rows::user).await
    }

    async fn authenticate(&self, token_hash: &str) -> Result<Option<Credential>> {
        self.one(&sql::AUTHENTICATE, &[&token_hash], rows::credential)
            .await
    }

    async fn update_user(&self, u: User, audit: AuditRecord) -> Result<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        if u.role != Role::Admin || u.disabled {
            keep_an_admin(&tx, &u.identifier).await?;
        }
        let updated = tx
            .execute(
                sql::UPDATE_USER.postgres(),
                &[
                    &u.identifier,
                    &u.role.as_str(),
                    &Json(&u.teams),
                    &u.disabled,
                ],
            )
            .await
            .map_err(pg)?;
        if updated > 0 {
            insert_audit(&tx, &audit).await?;
        }
        tx.commit().await.map_err(pg)?;
        Ok(updated > 0)
    }

    async fn delete_user(&self, identifier: &str, audit: AuditRecord) -> Result<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        keep_an_admin(&tx, identifier).await?;
        let deleted = tx
            .execute(sql::DELETE_USER.postgres(), &[&identifier])
            .await
            .map_err(pg)?;
        if deleted > 0 {
            tx.execute(sql::DELETE_USER_TOKENS.postgres(), &[&identifier])
                .await
                .map_err(pg)?;
            insert_audit(&tx, &audit).await?;
        }
        tx.commit().await.map_err(pg)?;
        Ok(deleted > 0)
    }

    async fn create_token(
        &self,
        t: ApiToken,
        token_hash: String,
        audit: AuditRecord,
    ) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        insert_token(&tx, &t, &token_hash).await?;
        insert_audit(&tx, &audit).await?;
        tx.commit().await.map_err(pg)
    }

    async fn list_tokens(&self, user: &str) -> Result<Vec<ApiToken>> {
        self.all(&sql::LIST_TOKENS, &[&user], rows::token).await
    }

    async fn rotate_token(
        &self,
        user: &str,
        id: &str,
        token_hash: String,
        prefix: String,
        when: DateTime<Utc>,
        audit: AuditRecord,
    ) -> Result<Option<ApiToken>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let row = tx
            .query_opt(
                sql::ROTATE_TOKEN.postgres(),
                &[&user, &id, &token_hash, &prefix, &ms(when)],
            )
            .await
            .map_err(|e| conflict_or(e, || format!("token `{id}`")))?;
        let rotated = row.as_ref().map(rows::token).transpose()?;
        if rotated.is_some() {
            insert_audit(&tx, &audit).await?;
        }
        tx.commit().await.map_err(pg)?;
        Ok(rotated)
    }

    async fn delete_token(&self, user: &str, id: &str, audit: AuditRecord) -> Result<bool> {
        self.change(&sql::DELETE_TOKEN, &[&user, &id], &audit).await
    }

    async fn touch_token(&self, token_hash: &str, when: DateTime<Utc>) -> Result<()> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(sql::TOUCH_TOKEN.postgres())
            .await
            .map_err(pg)?;
        c.execute(&stmt, &[&token_hash, &ms(when)])
            .await
            .map_err(pg)?;
        Ok(())
    }

    async fn count_users(&self) -> Result<u64> {
        self.count(&sql::COUNT_USERS, &[]).await
    }

    async fn create_team(&self, team: Team, audit: AuditRecord) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        tx.execute(
            sql::INSERT_TEAM.postgres(),
            &[&team.name, &team.description, &ms(team.created_at)],
        )
        .await
        .map_err(|e| conflict_or(e, || format!("team `{}`", team.name)))?;
        insert_audit(&tx, &audit).await?;
        tx.commit().await.map_err(pg)
    }

    async fn list_teams(&self) -> Result<Vec<Team>> {
        self.all(&sql::LIST_TEAMS, &[], rows::team).await
    }
}
