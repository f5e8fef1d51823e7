//! SqliteStore: the [`crate::UserDirectory`] methods.

use super::*;

#[async_trait::async_trait]
impl crate::UserDirectory for SqliteStore {
    async fn create_user(
        &self,
        u: User,
        t: ApiToken,
        token_hash: String,
        audit: AuditRecord,
    ) -> Result<()> {
        self.write(move |c| {
            c.execute(
                "INSERT INTO users (identifier, email, role, teams, disabled, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    u.identifier,
                    u.email,
                    u.role.as_str(),
                    serde_json::to_string(&u.teams).map_err(db)?,
                    u.disabled,
                    ms(u.created_at)
                ],
            )
            .map_err(|e| conflict_or(e, || format!("user `{}`", u.identifier)))?;
            insert_token(c, &t, &token_hash).map_err(|e| match e {
                StoreError::Conflict(_) => StoreError::Conflict(format!("user `{}`", u.identifier)),
                other => other,
            })?;
            insert_audit(c, &audit)
        })
        .await
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        self.read(|c| {
            let mut stmt = c
                .prepare_cached(&format!(
                    "SELECT {USER_COLUMNS} FROM users ORDER BY identifier"
                ))
                .map_err(db)?;
            let rows = stmt.query_map([], user).map_err(db)?;
            rows.collect::<rusqlite::Result<_>>().map_err(db)
        })
        .await
    }

    async fn get_user(&self, identifier: &str) -> Result<Option<User>> {
        let id = identifier.to_owned();
        self.read(move |c| {
            c.query_row(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE identifier = ?1"),
                [id],
                user,
            )
            .optional()
            .map_err(db)
        })
        .await
    }

    async fn authenticate(&self, token_hash: &str) -> Result<Option<Credential>> {
        let hash = token_hash.to_owned();
        self.read(move |c| {
            c.prepare_cached(
                "SELECT u.identifier, u.email, u.role, u.teams, u.created_at, u.disabled, \
                 t.id, t.last_used_at \
                 FROM user_tokens t JOIN users u ON u.identifier = t.user_id \
                 WHERE t.token_hash = ?1 AND u.disabled = 0",
            )
            .map_err(db)?
            .query_row([hash], |row| {
                Ok(Credential {
                    user: user(row)?,
                    token_id: row.get(6)?,
                    last_used_at: row.get::<_, Option<i64>>(7)?.map(at),
                })
            })
            .optional()
            .map_err(db)
        })
        .await
    }

    async fn update_user(&self, u: User, audit: AuditRecord) -> Result<bool> {
        self.write(move |c| {
            if u.role != Role::Admin || u.disabled {
                keep_an_admin(c, &u.identifier)?;
            }
            let updated = c
                .execute(
                    "UPDATE users SET role = ?2, teams = ?3, disabled = ?4 WHERE identifier = ?1",
                    params![
                        u.identifier,
                        u.role.as_str(),
                        serde_json::to_string(&u.teams).map_err(db)?,
                        u.disabled
                    ],
                )
                .map_err(db)?;
            if updated > 0 {
                insert_audit(c, &audit)?;
            }
            Ok(updated > 0)
        })
        .await
    }

    async fn delete_user(&self, identifier: &str, audit: AuditRecord) -> Result<bool> {
        let id = identifier.to_owned();
        self.write(move |c| {
            keep_an_admin(c, &id)?;
            let deleted = c
                .execute("DELETE FROM users WHERE identifier = ?1", [&id])
                .map_err(db)?;
            if deleted > 0 {
                c.execute("DELETE FROM user_tokens WHERE user_id = ?1", [&id])
                    .map_err(db)?;
                insert_audit(c, &audit)?;
            }
            Ok(deleted > 0)
        })
        .await
    }

    async fn create_token(
        &self,
        t: ApiToken,
        token_hash: String,
        audit: AuditRecord,
    ) -> Result<()> {
        self.write(move |c| {
            insert_token(c, &t, &token_hash)?;
            insert_audit(c, &audit)
        })
        .await
    }

    async fn list_tokens(&self, user: &str) -> Result<Vec<ApiToken>> {
        let user = user.to_owned();
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(&format!(
                    "SELECT {TOKEN_COLUMNS} FROM user_tokens WHERE user_id = ?1 \
                     ORDER BY created_at, id"
                ))
                .map_err(db)?;
            let rows = stmt.query_map([user], token).map_err(db)?;
            rows.collect::<rusqlite::Result<_>>().map_err(db)
        })
        .await
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
        let (user, id) = (user.to_owned(), id.to_owned());
        self.write(move |c| {
            let rotated = c
                .query_row(
                    &format!(
                        "UPDATE user_tokens SET token_hash = ?3, prefix = ?4, rotated_at = ?5, \
                         last_used_at = NULL WHERE user_id = ?1 AND id = ?2 \
                         RETURNING {TOKEN_COLUMNS}"
                    ),
                    params![user, id, token_hash, prefix, ms(when)],
                    token,
                )
                .optional()
                .map_err(|e| conflict_or(e, || format!("token `{id}`")))?;
            if rotated.is_some() {
                insert_audit(c, &audit)?;
            }
            Ok(rotated)
        })
        .await
    }

    async fn delete_token(&self, user: &str, id: &str, audit: AuditRecord) -> Result<bool> {
        let (user, id) = (user.to_owned(), id.to_owned());
        self.write(move |c| {
            let deleted = c
                .execute(
                    "DELETE FROM user_tokens WHERE user_id = ?1 AND id = ?2",
                    [&user, &id],
                )
                .map_err(db)?;
            if deleted > 0 {
                insert_audit(c, &audit)?;
            }
            Ok(deleted > 0)
        })
        .await
    }

    async fn touch_token(&self, token_hash: &str, when: DateTime<Utc>) -> Result<()> {
        let hash = token_hash.to_owned();
        self.write(move |c| {
            c.prepare_cached("UPDATE user_tokens SET last_used_at = ?2 WHERE token_hash = ?1")
                .map_err(db)?
                .execute(params![hash, ms(when)])
                .map_err(db)?;
            Ok(())
        })
        .await
    }

    async fn count_users(&self) -> Result<u64> {
        self.read(|c| {
            c.query_row("SELECT count(*) FROM users", [], |r| r.get::<_, i64>(0))
                .map(|n| n as u64)
                .map_err(db)
        })
        .await
    }

    async fn create_team(&self, team: Team, audit: AuditRecord) -> Result<()> {
        self.write(move |c| {
            c.execute(
                "INSERT INTO teams (name, description, created_at) VALUES (?1, ?2, ?3)",
                params![team.name, team.description, ms(team.created_at)],
            )
            .map_err(|e| conflict_or(e, || format!("team `{}`", team.name)))?;
            insert_audit(c, &audit)
        })
        .await
    }

    async fn list_teams(&self) -> Result<Vec<Team>> {
        self.read(|c| {
            let mut stmt = c
                .prepare_cached("SELECT name, description, created_at FROM teams ORDER BY name")
                .map_err(db)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(Team {
                        name: r.get(0)?,
                        description: r.get(1)?,
                        created_at: at(r.get(2)?),
                    })
                })
                .map_err(db)?;
            rows.collect::<rusqlite::Result<_>>().map_err(db)
        })
        .await
    }
}
