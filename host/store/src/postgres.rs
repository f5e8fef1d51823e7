//! The shared backend: Postgres through tokio-postgres, with a deadpool connection pool, for
//! several replicas that share one database. It behaves like the SQLite backend in every way
//! callers can see: the same results, orderings, conflicts and messages.
//!
//! Every mutation runs in one transaction together with its audit record. Migrations run when
//! the store opens, in one transaction that first takes a transaction-scoped advisory lock, so
//! replicas starting together apply them once, one after the other. Text keys are declared
//! `COLLATE "C"` in the schema so that sorting and `<`/`>` compare bytes, as SQLite does.

use crate::model::*;
use crate::query::{self, Dialect, Param, Query};
use crate::{Result, Store, StoreError, Write};
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
    (1, include_str!("../migrations/postgres/0001_catalog.sql")),
    (2, include_str!("../migrations/postgres/0002_plugins.sql")),
    (3, include_str!("../migrations/postgres/0003_actions.sql")),
    (4, include_str!("../migrations/postgres/0004_runs.sql")),
    (5, include_str!("../migrations/postgres/0005_approvals.sql")),
    (6, include_str!("../migrations/postgres/0006_tokens.sql")),
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
impl Store for PostgresStore {
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

    async fn list_blueprints(&self) -> Result<Vec<Blueprint>> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached("SELECT data FROM blueprints ORDER BY identifier")
            .await
            .map_err(pg)?;
        c.query(&stmt, &[])
            .await
            .map_err(pg)?
            .iter()
            .map(|r| serde_json::from_value(r.try_get(0).map_err(pg)?).map_err(db))
            .collect()
    }

    async fn get_blueprint(&self, identifier: &str) -> Result<Option<Blueprint>> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached("SELECT data FROM blueprints WHERE identifier = $1")
            .await
            .map_err(pg)?;
        c.query_opt(&stmt, &[&identifier])
            .await
            .map_err(pg)?
            .map(|r| serde_json::from_value(r.try_get(0).map_err(pg)?).map_err(db))
            .transpose()
    }

    async fn put_blueprint(&self, bp: Blueprint, write: Write, audit: AuditRecord) -> Result<()> {
        let data = serde_json::to_value(&bp).map_err(db)?;
        let sql = match write {
            Write::Create => "INSERT INTO blueprints (identifier, data) VALUES ($1, $2)",
            Write::Replace => {
                "INSERT INTO blueprints (identifier, data) VALUES ($1, $2) \
                 ON CONFLICT (identifier) DO UPDATE SET data = EXCLUDED.data"
            }
        };
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let stmt = tx.prepare_cached(sql).await.map_err(pg)?;
        tx.execute(&stmt, &[&bp.identifier, &data])
            .await
            .map_err(|e| conflict_or(e, || format!("blueprint `{}`", bp.identifier)))?;
        insert_audit(&tx, &audit).await?;
        tx.commit().await.map_err(pg)
    }

    async fn delete_blueprint(
        &self,
        identifier: &str,
        with_entities: bool,
        audit: AuditRecord,
    ) -> Result<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let count: i64 = tx
            .query_one(
                "SELECT count(*) FROM entities WHERE blueprint = $1",
                &[&identifier],
            )
            .await
            .and_then(|r| r.try_get(0))
            .map_err(pg)?;
        if count > 0 && !with_entities {
            return Err(StoreError::InUse(format!(
                "blueprint `{identifier}` has {count} entities; delete them first or pass \
                 ?delete_entities=true"
            )));
        }
        tx.execute(
            "DELETE FROM entity_relations WHERE blueprint = $1",
            &[&identifier],
        )
        .await
        .map_err(pg)?;
        tx.execute("DELETE FROM entities WHERE blueprint = $1", &[&identifier])
            .await
            .map_err(pg)?;
        let deleted = tx
            .execute(
                "DELETE FROM blueprints WHERE identifier = $1",
                &[&identifier],
            )
            .await
            .map_err(pg)?;
        if deleted > 0 {
            insert_audit(&tx, &audit).await?;
        }
        tx.commit().await.map_err(pg)?;
        Ok(deleted > 0)
    }

    async fn get_entity(&self, blueprint: &str, identifier: &str) -> Result<Option<Entity>> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(&format!(
                "SELECT {ENTITY_COLUMNS} FROM entities e \
                 WHERE e.blueprint = $1 AND e.identifier = $2"
            ))
            .await
            .map_err(pg)?;
        c.query_opt(&stmt, &[&blueprint, &identifier])
            .await
            .map_err(pg)?
            .as_ref()
            .map(entity)
            .transpose()
    }

    async fn put_entity(
        &self,
        e: Entity,
        relations: Vec<Relation>,
        write: Write,
        audit: AuditRecord,
    ) -> Result<()> {
        let on_conflict = match write {
            Write::Create => "",
            Write::Replace => {
                " ON CONFLICT (blueprint, identifier) DO UPDATE SET title = EXCLUDED.title, \
                 icon = EXCLUDED.icon, team = EXCLUDED.team, properties = EXCLUDED.properties, \
                 relations = EXCLUDED.relations, created_at = EXCLUDED.created_at, \
                 created_by = EXCLUDED.created_by, updated_at = EXCLUDED.updated_at, \
                 updated_by = EXCLUDED.updated_by"
            }
        };
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let insert = tx
            .prepare_cached(&format!(
                "INSERT INTO entities (blueprint, identifier, title, icon, team, properties, \
                 relations, created_at, created_by, updated_at, updated_by) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11){on_conflict}"
            ))
            .await
            .map_err(pg)?;
        tx.execute(
            &insert,
            &[
                &e.blueprint,
                &e.identifier,
                &e.title,
                &e.icon,
                &Json(&e.team),
                &e.properties,
                &e.relations,
                &ms(e.created_at),
                &e.created_by,
                &ms(e.updated_at),
                &e.updated_by,
            ],
        )
        .await
        .map_err(|err| {
            conflict_or(err, || {
                format!("entity `{}` of blueprint `{}`", e.identifier, e.blueprint)
            })
        })?;
        let clear = tx
            .prepare_cached("DELETE FROM entity_relations WHERE blueprint = $1 AND identifier = $2")
            .await
            .map_err(pg)?;
        tx.execute(&clear, &[&e.blueprint, &e.identifier])
            .await
            .map_err(pg)?;
        let edge = tx
            .prepare_cached(
                "INSERT INTO entity_relations (blueprint, identifier, relation, \
                 target_blueprint, target_identifier) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT DO NOTHING",
            )
            .await
            .map_err(pg)?;
        for r in &relations {
            tx.execute(
                &edge,
                &[
                    &e.blueprint,
                    &e.identifier,
                    &r.name,
                    &r.target.blueprint,
                    &r.target.identifier,
                ],
            )
            .await
            .map_err(pg)?;
        }
        insert_audit(&tx, &audit).await?;
        tx.commit().await.map_err(pg)
    }

    async fn delete_entities(
        &self,
        entities: Vec<EntityRef>,
        audit: Vec<AuditRecord>,
    ) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let edges = tx
            .prepare_cached("DELETE FROM entity_relations WHERE blueprint = $1 AND identifier = $2")
            .await
            .map_err(pg)?;
        let rows = tx
            .prepare_cached("DELETE FROM entities WHERE blueprint = $1 AND identifier = $2")
            .await
            .map_err(pg)?;
        for e in &entities {
            tx.execute(&edges, &[&e.blueprint, &e.identifier])
                .await
                .map_err(pg)?;
            tx.execute(&rows, &[&e.blueprint, &e.identifier])
                .await
                .map_err(pg)?;
        }
        for a in &audit {
            insert_audit(&tx, a).await?;
        }
        tx.commit().await.map_err(pg)
    }

    async fn dependents(&self, target: &EntityRef) -> Result<Vec<EntityRef>> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(
                "SELECT DISTINCT blueprint, identifier FROM entity_relations \
                 WHERE target_blueprint = $1 AND target_identifier = $2 ORDER BY 1, 2",
            )
            .await
            .map_err(pg)?;
        c.query(&stmt, &[&target.blueprint, &target.identifier])
            .await
            .map_err(pg)?
            .iter()
            .map(|r| {
                Ok(EntityRef {
                    blueprint: r.try_get(0).map_err(pg)?,
                    identifier: r.try_get(1).map_err(pg)?,
                })
            })
            .collect()
    }

    async fn search(
        &self,
        q: &Query,
        limit: usize,
        after: Option<EntityRef>,
    ) -> Result<Vec<Entity>> {
        let mut sql = query::compile(q, Dialect::Postgres)?;
        if let Some(after) = after {
            let n = sql.params.len();
            sql.text = format!(
                "({}) AND (e.blueprint, e.identifier) > (${}, ${})",
                sql.text,
                n + 1,
                n + 2
            );
            sql.params.push(Param::Text(after.blueprint));
            sql.params.push(Param::Text(after.identifier));
        }
        // Not a cached prepared statement: every query has its own text, and the pool's
        // statement caches never forget one.
        let text = format!(
            "SELECT {ENTITY_COLUMNS} FROM entities e WHERE {} \
             ORDER BY e.blueprint, e.identifier LIMIT {}",
            sql.text,
            sql_limit(limit)
        );
        let params: Vec<_> = sql.params.iter().map(bind).collect();
        let c = self.client().await?;
        c.query_typed(&text, &params)
            .await
            .map_err(pg)?
            .iter()
            .map(entity)
            .collect()
    }

    async fn count_entities(&self, blueprint: &str) -> Result<u64> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached("SELECT count(*) FROM entities WHERE blueprint = $1")
            .await
            .map_err(pg)?;
        let n: i64 = c
            .query_one(&stmt, &[&blueprint])
            .await
            .and_then(|r| r.try_get(0))
            .map_err(pg)?;
        Ok(n as u64)
    }

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

    async fn put_plugin(
        &self,
        v: PluginVersion,
        bytes: Vec<u8>,
        audit: AuditRecord,
    ) -> Result<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let added = tx
            .execute(
                "INSERT INTO plugins (name, digest, size, bytes, created_at, created_by) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                &[
                    &v.name,
                    &v.digest,
                    &(v.size as i64),
                    &bytes,
                    &ms(v.created_at),
                    &v.created_by,
                ],
            )
            .await
            .map_err(pg)?;
        if added > 0 {
            insert_audit(&tx, &audit).await?;
        }
        tx.commit().await.map_err(pg)?;
        Ok(added > 0)
    }

    async fn list_plugins(&self) -> Result<Vec<PluginVersion>> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(
                "SELECT name, digest, size, created_at, created_by FROM plugins \
                 ORDER BY name, created_at DESC, digest",
            )
            .await
            .map_err(pg)?;
        c.query(&stmt, &[])
            .await
            .map_err(pg)?
            .iter()
            .map(|r| {
                Ok(PluginVersion {
                    name: r.try_get(0).map_err(pg)?,
                    digest: r.try_get(1).map_err(pg)?,
                    size: r.try_get::<_, i64>(2).map_err(pg)? as u64,
                    created_at: at(r.try_get(3).map_err(pg)?),
                    created_by: r.try_get(4).map_err(pg)?,
                })
            })
            .collect()
    }

    async fn plugin_bytes(&self, name: &str, digest: &str) -> Result<Option<Vec<u8>>> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                "SELECT bytes FROM plugins WHERE name = $1 AND digest = $2",
                &[&name, &digest],
            )
            .await
            .map_err(pg)?;
        row.map(|r| r.try_get(0).map_err(pg)).transpose()
    }

    async fn delete_plugin(&self, name: &str, audit: AuditRecord) -> Result<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let users: i64 = tx
            .query_one("SELECT count(*) FROM actions WHERE plugin = $1", &[&name])
            .await
            .and_then(|r| r.try_get(0))
            .map_err(pg)?;
        if users > 0 {
            return Err(StoreError::InUse(format!(
                "plugin `{name}` is used by {users} action(s); change or delete them first"
            )));
        }
        let deleted = tx
            .execute("DELETE FROM plugins WHERE name = $1", &[&name])
            .await
            .map_err(pg)?;
        if deleted > 0 {
            insert_audit(&tx, &audit).await?;
        }
        tx.commit().await.map_err(pg)?;
        Ok(deleted > 0)
    }

    async fn put_action(&self, a: ActionRecord, write: Write, audit: AuditRecord) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let sql = match write {
            Write::Create => {
                "INSERT INTO actions (identifier, plugin, data, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5)"
            }
            Write::Replace => {
                "INSERT INTO actions (identifier, plugin, data, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (identifier) DO UPDATE SET \
                 plugin = EXCLUDED.plugin, data = EXCLUDED.data, updated_at = EXCLUDED.updated_at"
            }
        };
        tx.execute(
            sql,
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
        let c = self.client().await?;
        let row = c
            .query_opt(
                "SELECT identifier, plugin, data, created_at, updated_at FROM actions WHERE identifier = $1",
                &[&identifier],
            )
            .await
            .map_err(pg)?;
        row.as_ref().map(action).transpose()
    }

    async fn list_actions(&self) -> Result<Vec<ActionRecord>> {
        let c = self.client().await?;
        c.query(
            "SELECT identifier, plugin, data, created_at, updated_at FROM actions ORDER BY identifier",
            &[],
        )
        .await
        .map_err(pg)?
        .iter()
        .map(action)
        .collect()
    }

    async fn delete_action(&self, identifier: &str, audit: AuditRecord) -> Result<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let deleted = tx
            .execute("DELETE FROM actions WHERE identifier = $1", &[&identifier])
            .await
            .map_err(pg)?;
        if deleted > 0 {
            insert_audit(&tx, &audit).await?;
        }
        tx.commit().await.map_err(pg)?;
        Ok(deleted > 0)
    }

    async fn create_run(&self, r: RunRecord, audit: AuditRecord) -> Result<()> {
        self.insert_run(r, audit, None).await
    }

    async fn create_claimed_run(
        &self,
        r: RunRecord,
        audit: AuditRecord,
        worker: &str,
        lease_until: DateTime<Utc>,
    ) -> Result<()> {
        self.insert_run(r, audit, Some((worker, ms(lease_until))))
            .await
    }

    async fn get_run(&self, id: &str) -> Result<Option<RunRecord>> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(&format!("SELECT {RUN_SELECT} FROM runs WHERE id = $1"))
            .await
            .map_err(pg)?;
        c.query_opt(&stmt, &[&id])
            .await
            .map_err(pg)?
            .as_ref()
            .map(run)
            .transpose()
    }

    async fn list_runs(&self, f: &RunFilter) -> Result<Vec<RunRecord>> {
        let mut conditions = vec!["1=1".to_owned()];
        let mut params: Vec<Param> = Vec::new();
        let mut add = |condition: &str, value: Param| {
            params.push(value);
            conditions.push(condition.replace('?', &format!("${}", params.len())));
        };
        if let Some(v) = &f.action {
            add("action = ?", Param::Text(v.clone()));
        }
        if let Some(v) = &f.status {
            add("status = ?", Param::Text(v.as_str().into()));
        }
        if let Some(v) = &f.created_by {
            add("created_by = ?", Param::Text(v.clone()));
        }
        if let Some(v) = &f.entity {
            add("entity = ?", Param::Text(v.clone()));
        }
        if let Some(v) = &f.before {
            add(
                "(created_at, id) < (SELECT created_at, id FROM runs WHERE id = ?)",
                Param::Text(v.clone()),
            );
        }
        let sql = format!(
            "SELECT {RUN_SELECT} FROM runs WHERE {} ORDER BY created_at DESC, id DESC LIMIT {}",
            conditions.join(" AND "),
            sql_limit(f.limit)
        );
        let params: Vec<_> = params.iter().map(bind).collect();
        let c = self.client().await?;
        c.query_typed(&sql, &params)
            .await
            .map_err(pg)?
            .iter()
            .map(run)
            .collect()
    }

    async fn claim_runs(
        &self,
        worker: &str,
        limit: usize,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<RunRecord>> {
        // One statement: rows another claimer has locked are skipped, and a row it took
        // meanwhile is re-checked against `status = 'PENDING'` once its lock is released.
        let c = self.client().await?;
        let stmt = c.prepare_cached(&CLAIM_RUNS).await.map_err(pg)?;
        let mut claimed = c
            .query(&stmt, &[&sql_limit(limit), &worker, &ms(lease_until)])
            .await
            .map_err(pg)?
            .iter()
            .map(run)
            .collect::<Result<Vec<_>>>()?;
        claimed.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(claimed)
    }

    async fn renew_leases(
        &self,
        worker: &str,
        run_ids: &[String],
        lease_until: DateTime<Utc>,
    ) -> Result<u64> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(
                "UPDATE runs SET lease_until = $3 \
                 WHERE id = ANY($1) AND lease_owner = $2 AND status = 'IN_PROGRESS'",
            )
            .await
            .map_err(pg)?;
        c.execute(&stmt, &[&run_ids, &worker, &ms(lease_until)])
            .await
            .map_err(pg)
    }

    async fn update_run(&self, r: &RunRecord, audit: Option<AuditRecord>) -> Result<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let stmt = tx.prepare_cached(&UPDATE_RUN).await.map_err(pg)?;
        let updated = tx
            .execute(
                &stmt,
                &[
                    &r.id,
                    &r.status.as_str(),
                    &r.status_label,
                    &Json(&r.link),
                    &r.summary,
                    &r.progress,
                    &r.error,
                    &r.affected_entities,
                    &r.output,
                    &ms(r.updated_at),
                    &r.ended_at.map(ms),
                    &r.is_final(),
                ],
            )
            .await
            .map_err(pg)?;
        if updated > 0
            && let Some(audit) = &audit
        {
            insert_audit(&tx, audit).await?;
        }
        tx.commit().await.map_err(pg)?;
        Ok(updated > 0)
    }

    async fn expired_runs(&self, now: DateTime<Utc>) -> Result<Vec<RunRecord>> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(&format!(
                "SELECT {RUN_SELECT} FROM runs WHERE status = 'IN_PROGRESS' \
                 AND (lease_until IS NULL OR lease_until < $1) ORDER BY created_at, id"
            ))
            .await
            .map_err(pg)?;
        c.query(&stmt, &[&ms(now)])
            .await
            .map_err(pg)?
            .iter()
            .map(run)
            .collect()
    }

    async fn requeue_run(&self, id: &str) -> Result<bool> {
        let c = self.client().await?;
        let n = c
            .execute(
                "UPDATE runs SET status = 'PENDING', lease_owner = NULL, lease_until = NULL \
                 WHERE id = $1 AND status = 'IN_PROGRESS'",
                &[&id],
            )
            .await
            .map_err(pg)?;
        Ok(n > 0)
    }

    async fn hand_off_run(&self, id: &str, worker: &str, deadline: DateTime<Utc>) -> Result<bool> {
        let c = self.client().await?;
        let n = c
            .execute(
                "UPDATE runs SET lease_owner = 'external', lease_until = $3 \
                 WHERE id = $1 AND lease_owner = $2 AND status = 'IN_PROGRESS'",
                &[&id, &worker, &ms(deadline)],
            )
            .await
            .map_err(pg)?;
        Ok(n > 0)
    }

    async fn decide_run(&self, d: Approval, audit: AuditRecord) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        tx.execute(
            "INSERT INTO run_approvals (run_id, approver, decision, description, at) \
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &d.run_id,
                &d.approver,
                &d.decision,
                &d.description,
                &ms(d.at),
            ],
        )
        .await
        .map_err(|e| conflict_or(e, || format!("decision of `{}`", d.approver)))?;
        insert_audit(&tx, &audit).await?;
        tx.commit().await.map_err(pg)
    }

    async fn approvals(&self, run_id: &str) -> Result<Vec<Approval>> {
        let c = self.client().await?;
        c.query(
            "SELECT run_id, approver, decision, description, at FROM run_approvals \
             WHERE run_id = $1 ORDER BY at, approver",
            &[&run_id],
        )
        .await
        .map_err(pg)?
        .iter()
        .map(|r| {
            Ok(Approval {
                run_id: r.try_get(0).map_err(pg)?,
                approver: r.try_get(1).map_err(pg)?,
                decision: r.try_get(2).map_err(pg)?,
                description: r.try_get(3).map_err(pg)?,
                at: at(r.try_get(4).map_err(pg)?),
            })
        })
        .collect()
    }

    async fn count_runs(&self, status: RunStatus) -> Result<u64> {
        let c = self.client().await?;
        let n: i64 = c
            .query_one(
                "SELECT count(*) FROM runs WHERE status = $1",
                &[&status.as_str()],
            )
            .await
            .and_then(|r| r.try_get(0))
            .map_err(pg)?;
        Ok(n as u64)
    }

    async fn append_run_logs(&self, lines: Vec<RunLogLine>) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let stmt = tx
            .prepare_cached(
                "INSERT INTO run_logs (run_id, seq, at, level, message) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .await
            .map_err(pg)?;
        for l in &lines {
            tx.execute(&stmt, &[&l.run_id, &l.seq, &ms(l.at), &l.level, &l.message])
                .await
                .map_err(|e| {
                    conflict_or(e, || format!("log line {} of run `{}`", l.seq, l.run_id))
                })?;
        }
        tx.commit().await.map_err(pg)
    }

    async fn last_log_seq(&self, run_id: &str) -> Result<i64> {
        let c = self.client().await?;
        c.query_one(
            "SELECT coalesce(max(seq), 0)::int8 FROM run_logs WHERE run_id = $1",
            &[&run_id],
        )
        .await
        .and_then(|r| r.try_get(0))
        .map_err(pg)
    }

    async fn run_logs(&self, run_id: &str, after: i64, limit: usize) -> Result<Vec<RunLogLine>> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(
                "SELECT run_id, seq, at, level, message FROM run_logs \
                 WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            )
            .await
            .map_err(pg)?;
        c.query(&stmt, &[&run_id, &after, &sql_limit(limit)])
            .await
            .map_err(pg)?
            .iter()
            .map(|r| {
                Ok(RunLogLine {
                    run_id: r.try_get(0).map_err(pg)?,
                    seq: r.try_get(1).map_err(pg)?,
                    at: at(r.try_get(2).map_err(pg)?),
                    level: r.try_get(3).map_err(pg)?,
                    message: r.try_get(4).map_err(pg)?,
                })
            })
            .collect()
    }

    async fn record(&self, audit: AuditRecord) -> Result<()> {
        // One statement: it is its own transaction.
        insert_audit(&self.client().await?, &audit).await
    }

    async fn audit_log(&self, f: &AuditFilter) -> Result<Vec<AuditRecord>> {
        let mut conditions = vec!["1=1".to_owned()];
        let mut params: Vec<Param> = Vec::new();
        let mut add = |condition: &str, value: Param| {
            params.push(value);
            conditions.push(condition.replace('?', &format!("${}", params.len())));
        };
        if let Some(v) = &f.resource_type {
            add("resource_type = ?", Param::Text(v.clone()));
        }
        if let Some(v) = &f.resource_id {
            add("resource_id = ?", Param::Text(v.clone()));
        }
        if let Some(v) = &f.actor {
            add("actor = ?", Param::Text(v.clone()));
        }
        if let Some(v) = &f.run_id {
            add("run_id = ?", Param::Text(v.clone()));
        }
        if let Some(v) = f.from {
            add("at >= ?", Param::Int(ms(v)));
        }
        if let Some(v) = f.to {
            add("at < ?", Param::Int(ms(v)));
        }
        if let Some(v) = f.before_id {
            add("id < ?", Param::Int(v));
        }
        if let Some(v) = &f.visible_to {
            add(
                "(resource_type IN ('blueprint', 'entity') OR actor = ?)",
                Param::Text(v.clone()),
            );
        }
        let sql = format!(
            "SELECT id, at, actor, operation, resource_type, resource_id, blueprint, run_id, \
             before, after, status, reason, origin FROM audit_log WHERE {} \
             ORDER BY id DESC LIMIT {}",
            conditions.join(" AND "),
            sql_limit(f.limit)
        );
        let params: Vec<_> = params.iter().map(bind).collect();
        let c = self.client().await?;
        c.query_typed(&sql, &params)
            .await
            .map_err(pg)?
            .iter()
            .map(audit_record)
            .collect()
    }
}
