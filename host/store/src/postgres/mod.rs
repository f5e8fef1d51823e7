//! The shared backend: Postgres through tokio-postgres, with a deadpool connection pool, for
//! several replicas that share one database. It behaves like the SQLite backend in every way
//! callers can see: the same results, orderings, conflicts and messages.
//!
//! Every mutation runs in one transaction together with its audit record. Migrations run when
//! the store opens, in one transaction that first takes a transaction-scoped advisory lock, so
//! replicas starting together apply them once, one after the other. Text keys are declared
//! `COLLATE "C"` in the schema so that sorting and `<`/`>` compare bytes, as SQLite does.
//!
//! The statements are [`crate::sql`]'s; each area's methods are in the file named after it.

mod actions;
mod audit;
mod batch;
mod catalog;
mod directory;
mod listen;
mod outbox;
mod plugins;
mod runs;
mod writer;

use crate::changes::{Change, Changes, Feed};
use crate::query::Param;
use crate::rows::Columns;
use crate::sql::Statement;
use crate::{Result, RunStatus, StoreError, UnknownStatus, db};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::time::Duration;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{NoTls, Row};

/// A file of `migrations/postgres`.
macro_rules! migration {
    ($file:literal) => {
        include_str!(concat!("../../migrations/postgres/", $file))
    };
}

/// The migrations in `migrations/postgres`, in the order they apply.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, migration!("0001_catalog.sql")),
    (2, migration!("0002_plugins.sql")),
    (3, migration!("0003_actions.sql")),
    (4, migration!("0004_runs.sql")),
    (5, migration!("0005_approvals.sql")),
    (6, migration!("0006_tokens.sql")),
    (7, migration!("0007_entity_order.sql")),
    (8, migration!("0008_outbox.sql")),
    (9, migration!("0009_search_statistics.sql")),
    (10, migration!("0010_notify.sql")),
    (11, migration!("0011_action_versions.sql")),
];
/// Connections in the pool.
const POOL_SIZE: usize = 16;
/// How long opening a connection may take when the URL does not say.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The advisory lock that serialises migrations across replicas (`portico` in ASCII).
const MIGRATION_LOCK: i64 = 0x0070_6f72_7469_636f;

/// The Postgres [`crate::Store`].
pub(crate) struct PostgresStore {
    pool: Pool,
    /// What the listener hears, for this replica's subscribers.
    feed: Feed,
    _listener: listen::AbortOnDrop,
    /// Keeps the catalog's planner statistics close behind bulk writes.
    statistics: catalog::Statistics,
    /// Commits the writes of runs' lives in batches.
    writer: writer::Writer,
    /// The action versions committed, not written again.
    versions: crate::versions::StoredVersions,
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

/// Postgres keeps jsonb and booleans; its own column types are checked on every read.
impl Columns for Row {
    type Error = StoreError;

    fn text(&self, i: usize) -> Result<String> {
        self.try_get(i).map_err(pg)
    }

    fn opt_text(&self, i: usize) -> Result<Option<String>> {
        self.try_get(i).map_err(pg)
    }

    fn int(&self, i: usize) -> Result<i64> {
        self.try_get(i).map_err(pg)
    }

    fn opt_int(&self, i: usize) -> Result<Option<i64>> {
        self.try_get(i).map_err(pg)
    }

    fn int32(&self, i: usize) -> Result<i32> {
        self.try_get(i).map_err(pg)
    }

    fn flag(&self, i: usize) -> Result<bool> {
        self.try_get(i).map_err(pg)
    }

    fn json(&self, i: usize) -> Result<Value> {
        self.try_get(i).map_err(pg)
    }

    fn opt_json(&self, i: usize) -> Result<Option<Value>> {
        self.try_get(i).map_err(pg)
    }

    /// Anything of another shape reads as the default, as on SQLite.
    fn decoded<T: DeserializeOwned + Default>(&self, i: usize) -> Result<T> {
        Ok(serde_json::from_value(self.try_get(i).map_err(pg)?).unwrap_or_default())
    }

    fn status(&self, i: usize) -> Result<RunStatus> {
        self.try_get::<_, &str>(i)
            .map_err(pg)?
            .parse()
            .map_err(|e: UnknownStatus| StoreError::Database(e.to_string()))
    }
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
            config.clone(),
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
        let feed = Feed::new();
        let listener = listen::start(config, feed.clone()).await;
        Ok(Self {
            writer: writer::Writer::start(pool.clone()),
            versions: Default::default(),
            pool,
            feed,
            _listener: listener,
            statistics: catalog::Statistics::default(),
        })
    }

    /// A connection from the pool.
    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool.get().await.map_err(pool_error)
    }

    /// Every row a read statement returns, each read into the model with `read`.
    async fn all<T>(
        &self,
        stmt: &Statement,
        params: &[&(dyn ToSql + Sync)],
        read: fn(&Row) -> Result<T>,
    ) -> Result<Vec<T>> {
        let c = self.client().await?;
        let stmt = c.prepare_cached(stmt.postgres()).await.map_err(pg)?;
        c.query(&stmt, params)
            .await
            .map_err(pg)?
            .iter()
            .map(read)
            .collect()
    }

    /// The row a read statement returns, if any, read into the model with `read`.
    async fn one<T>(
        &self,
        stmt: &Statement,
        params: &[&(dyn ToSql + Sync)],
        read: fn(&Row) -> Result<T>,
    ) -> Result<Option<T>> {
        let c = self.client().await?;
        let stmt = c.prepare_cached(stmt.postgres()).await.map_err(pg)?;
        c.query_opt(&stmt, params)
            .await
            .map_err(pg)?
            .as_ref()
            .map(read)
            .transpose()
    }

    /// The number a `count(*)` statement returns.
    async fn count(&self, stmt: &Statement, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        let n = self.one(stmt, params, |r| r.int(0)).await?;
        Ok(n.unwrap_or(0) as u64)
    }

    /// Runs one write statement and, when it changed a row, appends `audit`, in one
    /// transaction; whether it changed one.
    async fn change(
        &self,
        stmt: &Statement,
        params: &[&(dyn ToSql + Sync)],
        audit: &crate::AuditRecord,
    ) -> Result<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let changed = tx.execute(stmt.postgres(), params).await.map_err(pg)?;
        if changed > 0 {
            audit::insert_audit(&tx, audit).await?;
        }
        tx.commit().await.map_err(pg)?;
        Ok(changed > 0)
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

/// What the replica's listener hears (see [`listen`]): this replica's writes and every other
/// replica's, through the triggers of migration 0010.
impl Changes for PostgresStore {
    fn changes(&self) -> tokio::sync::broadcast::Receiver<Change> {
        self.feed.subscribe()
    }
}
