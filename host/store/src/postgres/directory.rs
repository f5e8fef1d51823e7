//! PostgresStore: the [`crate::UserDirectory`] methods.

use super::*;

#[async_trait::async_trait]
impl crate::UserDirectory for PostgresStore {
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
            "INSERT INTO users (identifier, email, role, teams, disabled, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
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
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(&format!(
                "SELECT {USER_COLUMNS} FROM users ORDER BY identifier"
            ))
            .await
            .map_err(pg)?;
        c.query(&stmt, &[])
            .await
            .map_err(pg)?
            .iter()
            .map(user)
            .collect()
    }

    async fn get_user(&self, identifier: &str) -> Result<Option<User>> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(&format!(
                "SELECT {USER_COLUMNS} FROM users WHERE identifier = $1"
            ))
            .await
            .map_err(pg)?;
        c.query_opt(&stmt, &[&identifier])
            .await
            .map_err(pg)?
            .as_ref()
            .map(user)
            .transpose()
    }

    async fn authenticate(&self, token_hash: &str) -> Result<Option<Credential>> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(
                "SELECT u.identifier, u.email, u.role, u.teams, u.created_at, u.disabled, \
                 t.id, t.last_used_at \
                 FROM user_tokens t JOIN users u ON u.identifier = t.user_id \
                 WHERE t.token_hash = $1 AND NOT u.disabled",
            )
            .await
            .map_err(pg)?;
        let Some(row) = c.query_opt(&stmt, &[&token_hash]).await.map_err(pg)? else {
            return Ok(None);
        };
        Ok(Some(Credential {
            user: user(&row)?,
            token_id: row.try_get(6).map_err(pg)?,
            last_used_at: row.try_get::<_, Option<i64>>(7).map_err(pg)?.map(at),
        }))
    }

    async fn update_user(&self, u: User, audit: AuditRecord) -> Result<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        if u.role != Role::Admin || u.disabled {
            keep_an_admin(&tx, &u.identifier).await?;
        }
        let updated = tx
            .execute(
                "UPDATE users SET role = $2, teams = $3, disabled = $4 WHERE identifier = $1",
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
            .execute("DELETE FROM users WHERE identifier = $1", &[&identifier])
            .await
            .map_err(pg)?;
        if deleted > 0 {
            tx.execute("DELETE FROM user_tokens WHERE user_id = $1", &[&identifier])
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
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(&format!(
                "SELECT {TOKEN_COLUMNS} FROM user_tokens WHERE user_id = $1 ORDER BY created_at, id"
            ))
            .await
            .map_err(pg)?;
        c.query(&stmt, &[&user])
            .await
            .map_err(pg)?
            .iter()
            .map(token)
            .collect()
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
                &format!(
                    "UPDATE user_tokens SET token_hash = $3, prefix = $4, rotated_at = $5, \
                     last_used_at = NULL WHERE user_id = $1 AND id = $2 RETURNING {TOKEN_COLUMNS}"
                ),
                &[&user, &id, &token_hash, &prefix, &ms(when)],
            )
            .await
            .map_err(|e| conflict_or(e, || format!("token `{id}`")))?;
        let rotated = row.as_ref().map(token).transpose()?;
        if rotated.is_some() {
            insert_audit(&tx, &audit).await?;
        }
        tx.commit().await.map_err(pg)?;
        Ok(rotated)
    }

    async fn delete_token(&self, user: &str, id: &str, audit: AuditRecord) -> Result<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let deleted = tx
            .execute(
                "DELETE FROM user_tokens WHERE user_id = $1 AND id = $2",
                &[&user, &id],
            )
            .await
            .map_err(pg)?;
        if deleted > 0 {
            insert_audit(&tx, &audit).await?;
        }
        tx.commit().await.map_err(pg)?;
        Ok(deleted > 0)
    }

    async fn touch_token(&self, token_hash: &str, when: DateTime<Utc>) -> Result<()> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached("UPDATE user_tokens SET last_used_at = $2 WHERE token_hash = $1")
            .await
            .map_err(pg)?;
        c.execute(&stmt, &[&token_hash, &ms(when)])
            .await
            .map_err(pg)?;
        Ok(())
    }

    async fn count_users(&self) -> Result<u64> {
        let c = self.client().await?;
        let n: i64 = c
            .query_one("SELECT count(*) FROM users", &[])
            .await
            .and_then(|r| r.try_get(0))
            .map_err(pg)?;
        Ok(n as u64)
    }

    async fn create_team(&self, team: Team, audit: AuditRecord) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        tx.execute(
            "INSERT INTO teams (name, description, created_at) VALUES ($1, $2, $3)",
            &[&team.name, &team.description, &ms(team.created_at)],
        )
        .await
        .map_err(|e| conflict_or(e, || format!("team `{}`", team.name)))?;
        insert_audit(&tx, &audit).await?;
        tx.commit().await.map_err(pg)
    }

    async fn list_teams(&self) -> Result<Vec<Team>> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached("SELECT name, description, created_at FROM teams ORDER BY name")
            .await
            .map_err(pg)?;
        c.query(&stmt, &[])
            .await
            .map_err(pg)?
            .iter()
            .map(|r| {
                Ok(Team {
                    name: r.try_get(0).map_err(pg)?,
                    description: r.try_get(1).map_err(pg)?,
                    created_at: at(r.try_get(2).map_err(pg)?),
                })
            })
            .collect()
    }
}
