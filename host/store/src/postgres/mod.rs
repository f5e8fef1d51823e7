//! The shared backend: Postgres through tokio-postgres, with a deadpool connection pool, for
//! several replicas that share one database. It behaves like the SQLite backend in every way
//! callers can see: the same results, orderings, conflicts and messages.
//!
//! Every mutation runs in one transaction together with its audit record. Migrations run when
//! the store opens, in one transaction that first takes a transaction-scoped advisory lock, so
//! replicas starting together apply them once, one after the other. Text keys are declared
//! `COLLATE "C"` in the schema so that sorting and `<`/`>` compare bytes, as SQLite does.

mod catalog;
mod directory;
mod plugins;
mod actions;
mod runs;
mod audit;

use crate::model::*;
use crate::query::{self, Dialect, Param, Query};
use crate::{Result, StoreError, Write};
use chrono::{DateTime, TimeZone, Utc};
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod};
use serde_json::Value;
use std::sync::LazyLock;
use std::time::Duration;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{Json, ToSql, Type};
use tokio_postgres::{NoTls, Row};

/// The migrations in `migrations/postgres`, in the order they apply.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/postgres/0001_catalog.sql")),
    (2, include_str!("../../migrations/postgres/0002_plugins.sql")),
    (3, include_str!("../../migrations/postgres/0003_actions.sql")),
    (4, include_str!("../../migrations/postgres/0004_runs.sql")),
    (5, include_str!("../../migrations/postgres/0005_approvals.sql")),
    (6, include_str!("../../migrations/postgres/0006_tokens.sql")),
];
/// Connections in the pool.
const POOL_SIZE: usize = 16;
/// How long opening a connection may take when the URL does not say.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The advisory lock that serialises migrations across replicas (`portico` in ASCII).
const MIGRATION_LOCK: i64 = 0x0070_6f72_7469_636f;

/// The Postgres [`Store`].
pub(crate) struct PostgresStore {
    pool: Pool,
}

/// A failure that did not come from Postgres itself.
fn db(e: impl std::fmt::Display) -> StoreError {
    StoreError::Database(e.to_string())
}

/// A Postgres failure.
fn pg(e: tokio_postgres::Error) -> StoreError {
    StoreError::Database(describe(&e))
}

/// A Postgres failure's text, with the server's message when there is one (tokio-postgres' own
/// text for server errors is only "db error").
fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(server) = e.as_db_error() {
        return format!("{server} ({})", server.code().code());
    }
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

/// A failure to get a connection from the pool.
fn pool_error(e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => pg(e),
        other => db(other),
    }
}

/// [`StoreError::Conflict`] naming `what` for a unique violation, else a database error.
fn conflict_or(e: tokio_postgres::Error, what: impl FnOnce() -> String) -> StoreError {
    if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        StoreError::Conflict(what())
    } else {
        pg(e)
    }
}

fn ms(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

fn at(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// A list of strings stored as a jsonb array (teams); anything else reads as empty, like SQLite.
fn strings(value: Value) -> Vec<String> {
    serde_json::from_value(value).unwrap_or_default()
}

/// A search parameter with its Postgres type. The types are given explicitly rather than
/// inferred, so every `$n` has the type the compiler meant whatever expression it appears in.
fn bind(param: &Param) -> (&(dyn ToSql + Sync), Type) {
    match param {
        Param::Text(s) => (s, Type::TEXT),
        Param::Int(i) => (i, Type::INT8),
        Param::Real(f) => (f, Type::FLOAT8),
        Param::Json(v) => (v, Type::JSONB),
    }
}

/// A `LIMIT`: Postgres takes at most a BIGINT.
fn sql_limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

const ENTITY_COLUMNS: &str = "e.blueprint, e.identifier, e.title, e.icon, e.team, e.properties, \
    e.relations, e.created_at, e.created_by, e.updated_at, e.updated_by";

fn entity(row: &Row) -> Result<Entity> {
    Ok(Entity {
        blueprint: row.try_get(0).map_err(pg)?,
        identifier: row.try_get(1).map_err(pg)?,
        title: row.try_get(2).map_err(pg)?,
        icon: row.try_get(3).map_err(pg)?,
        team: strings(row.try_get(4).map_err(pg)?),
        properties: row.try_get(5).map_err(pg)?,
        relations: row.try_get(6).map_err(pg)?,
        created_at: at(row.try_get(7).map_err(pg)?),
        created_by: row.try_get(8).map_err(pg)?,
        updated_at: at(row.try_get(9).map_err(pg)?),
        updated_by: row.try_get(10).map_err(pg)?,
    })
}

const USER_COLUMNS: &str = "identifier, email, role, teams, created_at, disabled";

fn user(row: &Row) -> Result<User> {
    Ok(User {
        identifier: row.try_get(0).map_err(pg)?,
        email: row.try_get(1).map_err(pg)?,
        role: Role::parse(row.try_get(2).map_err(pg)?).unwrap_or(Role::Member),
        teams: strings(row.try_get(3).map_err(pg)?),
        created_at: at(row.try_get(4).map_err(pg)?),
        disabled: row.try_get(5).map_err(pg)?,
    })
}

const TOKEN_COLUMNS: &str = "id, user_id, name, prefix, created_at, rotated_at, last_used_at";

fn token(row: &Row) -> Result<ApiToken> {
    Ok(ApiToken {
        id: row.try_get(0).map_err(pg)?,
        user: row.try_get(1).map_err(pg)?,
        name: row.try_get(2).map_err(pg)?,
        prefix: row.try_get(3).map_err(pg)?,
        created_at: at(row.try_get(4).map_err(pg)?),
        rotated_at: row.try_get::<_, Option<i64>>(5).map_err(pg)?.map(at),
        last_used_at: row.try_get::<_, Option<i64>>(6).map_err(pg)?.map(at),
    })
}

async fn insert_token(c: &impl GenericClient, t: &ApiToken, token_hash: &str) -> Result<()> {
    c.execute(
        "INSERT INTO user_tokens (id, user_id, name, prefix, token_hash, created_at, rotated_at, \
         last_used_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
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

fn audit_record(row: &Row) -> Result<AuditRecord> {
    Ok(AuditRecord {
        id: row.try_get(0).map_err(pg)?,
        at: at(row.try_get(1).map_err(pg)?),
        actor: row.try_get(2).map_err(pg)?,
        operation: row.try_get(3).map_err(pg)?,
        resource_type: row.try_get(4).map_err(pg)?,
        resource_id: row.try_get(5).map_err(pg)?,
        blueprint: row.try_get(6).map_err(pg)?,
        run_id: row.try_get(7).map_err(pg)?,
        before: row.try_get(8).map_err(pg)?,
        after: row.try_get(9).map_err(pg)?,
        status: if row.try_get::<_, &str>(10).map_err(pg)? == "SUCCESS" {
            AuditStatus::Success
        } else {
            AuditStatus::Failure
        },
        reason: row.try_get(11).map_err(pg)?,
        origin: row.try_get(12).map_err(pg)?,
    })
}

/// Appends an audit record, on a connection or inside the caller's transaction.
fn action(r: &Row) -> Result<ActionRecord> {
    Ok(ActionRecord {
        identifier: r.try_get(0).map_err(pg)?,
        plugin: r.try_get(1).map_err(pg)?,
        data: r.try_get(2).map_err(pg)?,
        created_at: at(r.try_get(3).map_err(pg)?),
        updated_at: at(r.try_get(4).map_err(pg)?),
    })
}

const RUN_COLUMNS: &str = "id, action, blueprint, entity, properties, status, status_label, link, \
    summary, progress, error, affected_entities, output, source, created_by, created_at, \
    updated_at, ended_at, attempts, payload";
/// [`RUN_COLUMNS`] and whether an external system holds the run (`RunRecord::external`).
const RUN_SELECT: &str = "id, action, blueprint, entity, properties, status, status_label, link, \
    summary, progress, error, affected_entities, output, source, created_by, created_at, \
    updated_at, ended_at, attempts, payload::text, COALESCE(lease_owner = 'external', false)";

/// [`PostgresStore::insert_run`]'s statement, built once: it runs for every run.
static INSERT_RUN: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO runs ({RUN_COLUMNS}, lease_owner, lease_until) VALUES ($1, $2, $3, $4, $5, \
         $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20::text::jsonb, $21, \
         $22)"
    )
});

/// [`Store::update_run`]'s statement, built once: it runs for every run.
static UPDATE_RUN: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE runs SET status = $2, status_label = $3, link = $4, summary = $5, \
         progress = $6, error = $7, affected_entities = $8, output = $9, \
         updated_at = $10, ended_at = $11, \
         lease_owner = CASE WHEN $12 THEN NULL ELSE lease_owner END, \
         lease_until = CASE WHEN $12 THEN NULL ELSE lease_until END, \
         payload = CASE WHEN $12 AND jsonb_typeof(payload) = 'object' \
             THEN payload - 'sealed' ELSE payload END \
         WHERE id = $1 AND status NOT IN {}",
        final_statuses()
    )
});

/// [`Store::claim_runs`]'s statement, built once.
static CLAIM_RUNS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH picked AS (SELECT id FROM runs WHERE status = 'PENDING' \
         ORDER BY created_at, id LIMIT $1 FOR UPDATE SKIP LOCKED) \
         UPDATE runs SET status = 'IN_PROGRESS', lease_owner = $2, lease_until = $3, \
         attempts = runs.attempts + 1 FROM picked \
         WHERE runs.id = picked.id AND runs.status = 'PENDING' \
         RETURNING {}, false",
        RUN_COLUMNS
            .split(", ")
            .map(|column| match column.trim() {
                // Read as text, as RUN_SELECT reads it (`JsonText`).
                "payload" => "runs.payload::text".to_owned(),
                column => format!("runs.{column}"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    )
});

fn run(r: &Row) -> Result<RunRecord> {
    Ok(RunRecord {
        id: r.try_get(0).map_err(pg)?,
        action: r.try_get(1).map_err(pg)?,
        blueprint: r.try_get(2).map_err(pg)?,
        entity: r.try_get(3).map_err(pg)?,
        properties: r.try_get(4).map_err(pg)?,
        status: r
            .try_get::<_, &str>(5)
            .map_err(pg)?
            .parse()
            .map_err(|e: UnknownStatus| StoreError::Database(e.to_string()))?,
        status_label: r.try_get(6).map_err(pg)?,
        link: serde_json::from_value(r.try_get(7).map_err(pg)?).unwrap_or_default(),
        summary: r.try_get(8).map_err(pg)?,
        progress: r.try_get(9).map_err(pg)?,
        error: r.try_get(10).map_err(pg)?,
        affected_entities: r.try_get(11).map_err(pg)?,
        output: r.try_get(12).map_err(pg)?,
        source: r.try_get(13).map_err(pg)?,
        created_by: r.try_get(14).map_err(pg)?,
        created_at: at(r.try_get(15).map_err(pg)?),
        updated_at: at(r.try_get(16).map_err(pg)?),
        ended_at: r.try_get::<_, Option<i64>>(17).map_err(pg)?.map(at),
        attempts: r.try_get(18).map_err(pg)?,
        payload: JsonText::from_stored(r.try_get(19).map_err(pg)?),
        external: r.try_get(20).map_err(pg)?,
    })
}

/// The SQL list of the final statuses, e.g. `('SUCCESS', 'FAILURE')`.
fn final_statuses() -> String {
    let quoted: Vec<String> = RunStatus::FINAL.iter().map(|s| format!("'{s}'")).collect();
    format!("({})", quoted.join(", "))
}

async fn insert_audit(c: &impl GenericClient, a: &AuditRecord) -> Result<()> {
    let stmt = c
        .prepare_cached(
            "INSERT INTO audit_log (at, actor, operation, resource_type, resource_id, blueprint, \
             run_id, before, after, status, reason, origin) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .await
        .map_err(pg)?;
    let status = match a.status {
        AuditStatus::Success => "SUCCESS",
        AuditStatus::Failure => "FAILURE",
    };
    c.execute(
        &stmt,
        &[
            &ms(a.at),
            &a.actor,
            &a.operation,
            &a.resource_type,
            &a.resource_id,
            &a.blueprint,
            &a.run_id,
            &a.before,
            &a.after,
            &status,
            &a.reason,
            &a.origin,
        ],
    )
    .await
    .map_err(pg)?;
    Ok(())
}

/// Applies the migrations not applied yet. The advisory lock is transaction-scoped: it is
/// released by the commit or by the rollback of a failed migration, so a pooled connection can
/// never keep holding it.
async fn migrate(pool: &Pool) -> Result<()> {
    let mut client = pool.get().await.map_err(pool_error)?;
    let tx = client.transaction().await.map_err(pg)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY)")
        .await
        .map_err(pg)?;
    let applied: Vec<i64> = tx
        .query("SELECT version FROM schema_migrations", &[])
        .await
        .map_err(pg)?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<std::result::Result<_, _>>()
        .map_err(pg)?;
    for (version, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        tx.batch_execute(sql)
            .await
            .map_err(|e| db(format!("migration {version}: {}", describe(&e))))?;
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[version],
        )
        .await
        .map_err(pg)?;
    }
    tx.commit().await.map_err(pg)
}

impl PostgresStore {
    /// Connects to the database a `postgres://` URL names and applies the migrations.
    pub(crate) async fn open(url: &str) -> Result<Self> {
        let mut config: tokio_postgres::Config = url.parse().map_err(pg)?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(db)?;
        migrate(&pool).await?;
        Ok(Self { pool })
    }

    /// A connection from the pool.
    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool.get().await.map_err(pool_error)
    }

    /// Inserts a run and its audit record, leased to `lease` (worker, until in ms) when given.
    async fn insert_run(
        &self,
        r: RunRecord,
        audit: AuditRecord,
        lease: Option<(&str, i64)>,
    ) -> Result<()> {
        let (owner, until) = lease.unzip();
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let stmt = tx.prepare_cached(&INSERT_RUN).await.map_err(pg)?;
        tx.execute(
            &stmt,
            &[
                &r.id,
                &r.action,
                &r.blueprint,
                &r.entity,
                &r.properties,
                &r.status.as_str(),
                &r.status_label,
                &Json(&r.link),
                &r.summary,
                &r.progress,
                &r.error,
                &r.affected_entities,
                &r.output,
                &r.source,
                &r.created_by,
                &ms(r.created_at),
                &ms(r.updated_at),
                &r.ended_at.map(ms),
                &r.attempts,
                &r.payload.as_str(),
                &owner,
                &until,
            ],
        )
        .await
        .map_err(|e| conflict_or(e, || format!("run `{}`", r.id)))?;
        insert_audit(&tx, &audit).await?;
        tx.commit().await.map_err(pg)
    }
}

#[async_trait::async_trait]
impl crate::Health for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> Result<()> {
        self.client()
            .await?
            .simple_query("SELECT 1")
            .await
            .map_err(pg)?;
        Ok(())
    }
}
