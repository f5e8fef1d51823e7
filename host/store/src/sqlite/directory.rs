//! [`UserDirectory`] on SQLite.

use super::audit::insert_audit;
use super::conflict_or;
use super::{SqliteStore, change};
use crate::rows::{self, ms};
use crate::sql;
use crate::{
    ApiToken, AuditRecord, Credential, Result, Role, StoreError, Team, User, UserDirectory, db,
};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

fn insert_token(conn: &Connection, t: &ApiToken, token_hash: &str) -> Result<()> {
    conn.execute(
        sql::INSERT_TOKEN.sqlite(),
        params![
            t.id,
            t.user,
            t.name,
            t.prefix,
            token_hash,
            ms(t.created_at),
            t.rotated_at.map(ms),
            t.last_used_at.map(ms)
        ],
    )
    .map_err(|e| conflict_or(e, || format!("token `{}`", t.id)))?;
    Ok(())
}

/// [`StoreError::InUse`] when `identifier` is an enabled admin and no other enabled admin
/// exists: changing or deleting it would lock everyone out of user management. (The writer
/// thread runs one write at a time, so counting is enough; Postgres locks the rows instead.)
fn keep_an_admin(conn: &Connection, identifier: &str) -> Result<()> {
    let is_admin: bool = conn
        .query_row(
            "SELECT count(*) FROM users WHERE identifier = ?1 AND role = 'admin' AND disabled = 0",
            [identifier],
            |r| r.get::<_, i64>(0),
        )
        .map_err(db)?
        > 0;
    let others: i64 = conn
        .query_row(
            "SELECT count(*) FROM users WHERE identifier <> ?1 AND role = 'admin' AND disabled = 0",
            [identifier],
            |r| r.get(0),
        )
        .map_err(db)?;
    if is_admin && others == 0 {
        return Err(StoreError::InUse(crate::last_admin(identifier)));
    }
    Ok(())
}

#[async_trait::async_trait]
impl UserDirectory for SqliteStore {
    async fn create_user(
        &self,
        u: User,
        t: ApiToken,
        token_hash: String,
        audit: AuditRecord,
    ) -> Result<()> {
        self.write(move |c| {
            c.execute(
                sql::INSERT_USER.sqlite(),
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
        self.all(&sql::LIST_USERS, [], |r| rows::user(r)).await
    }

    async fn get_user(&self, identifier: &str) -> Result<Option<User>> {
        self.one(&sql::GET_USER, [identifier.to_owned()], |r| rows::user(r))
            .await
    }

    async fn authenticate(&self, token_hash: &str) -> Result<Option<Credential>> {
        self.one(&sql::AUTHENTICATE, [token_hash.to_owned()], |r| {
            rows::credential(r)
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
                    sql::UPDATE_USER.sqlite(),
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
            let deleted = c.execute(sql::DELETE_USER.sqlite(), [&id]).map_err(db)?;
            if deleted > 0 {
                c.execute(sql::DELETE_USER_TOKENS.sqlite(), [&id])
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
        self.all(&sql::LIST_TOKENS, [user.to_owned()], |r| rows::token(r))
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
                    sql::ROTATE_TOKEN.sqlite(),
                    params![user, id, token_hash, prefix, ms(when)],
                    |r| rows::token(r),
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
        self.write(move |c| change(c, &sql::DELETE_TOKEN, [&user, &id], &audit))
            .await
    }

    async fn touch_token(&self, token_hash: &str, when: DateTime<Utc>) -> Result<()> {
        let hash = token_hash.to_owned();
        self.write(move |c| {
            c.prepare_cached(sql::TOUCH_TOKEN.sqlite())
                .map_err(db)?
                .execute(params![hash, ms(when)])
                .map_err(db)?;
            Ok(())
        })
        .await
    }

    async fn count_users(&self) -> Result<u64> {
        self.count(&sql::COUNT_USERS, []).await
    }

    async fn create_team(&self, team: Team, audit: AuditRecord) -> Result<()> {
        self.write(move |c| {
            c.execute(
                sql::INSERT_TEAM.sqlite(),
                params![team.name, team.description, ms(team.created_at)],
            )
            .map_err(|e| conflict_or(e, || format!("team `{}`", team.name)))?;
            insert_audit(c, &audit)
        })
        .await
    }

    async fn list_teams(&self) -> Result<Vec<Team>> {
        self.all(&sql::LIST_TEAMS, [], |r| rows::team(r)).await
    }
}
