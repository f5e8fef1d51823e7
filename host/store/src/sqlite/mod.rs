//! The embedded default: SQLite through rusqlite, in WAL mode. One writer thread owns the only
//! writable connection and commits queued writes together ([`writer`]); reads use a small pool of
//! read-only connections on blocking threads. The statements are [`crate::sql`]'s, with `?n`
//! placeholders; each area's methods are in the file named after it.

mod actions;
mod audit;
mod catalog;
mod directory;
mod outbox;
mod plugins;
mod runs;
mod writer;

use crate::changes::{Change, Changes, Feed};
use crate::query::Param;
use crate::rows::Columns;
use crate::sql::Statement;
use crate::{Result, RunStatus, StoreError, db};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Params, Row};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::{Semaphore, mpsc};
use writer::{Job, write_loop};

/// A file of `migrations/sqlite`.
macro_rules! migration {
    ($file:literal) => {
        include_str!(concat!("../../migrations/sqlite/", $file))
    };
}

const MIGRATIONS: &[(i64, &str)] = &[
    (1, migration!("0001_catalog.sql")),
    (2, migration!("0002_plugins.sql")),
    (3, migration!("0003_actions.sql")),
    (4, migration!("0004_runs.sql")),
    (5, migration!("0005_approvals.sql")),
    (6, migration!("0006_tokens.sql")),
    (7, migration!("0007_entity_order.sql")),
    (8, migration!("0008_outbox.sql")),
    (9, migration!("0009_action_versions.sql")),
];
const READERS: usize = 4;
/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 128;

pub(crate) struct SqliteStore {
    jobs: mpsc::Sender<Box<dyn Job>>,
    /// Run changes, sent once the writer committed them (one process: nobody else writes).
    feed: Feed,
    readers: Arc<Mutex<Vec<Connection>>>,
    permits: Arc<Semaphore>,
    /// The action versions committed, not written again.
    versions: crate::versions::StoredVersions,
}

impl SqliteStore {
    pub(crate) async fn open(path: &Path) -> Result<Self> {
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || Self::open_blocking(path))
            .await
            .map_err(db)?
    }

    fn open_blocking(path: PathBuf) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(db)?;
        }
        let writer = Connection::open(&path).map_err(db)?;
        writer
            .execute_batch(
                "PRAGMA busy_timeout = 5000; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
            )
            .map_err(db)?;
        wal_mode(&writer)?;
        migrate(&writer)?;
        // More distinct statements than rusqlite's default 16 run on each connection.
        writer.set_prepared_statement_cache_capacity(STATEMENT_CACHE);

        let mut readers = Vec::new();
        for _ in 0..READERS {
            // Read-write handles kept read-only by `query_only`: a SQLITE_OPEN_READ_ONLY handle
            // cannot rebuild the WAL index after a crash and then fails every read.
            let reader = Connection::open_with_flags(
                &path,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(db)?;
            reader
                .execute_batch("PRAGMA busy_timeout = 5000; PRAGMA query_only = ON;")
                .map_err(db)?;
            reader.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
            readers.push(reader);
        }

        let (jobs, queue) = mpsc::channel::<Box<dyn Job>>(4096);
        std::thread::Builder::new()
            .name("portico-sqlite-writer".into())
            .spawn(move || write_loop(writer, queue))
            .map_err(db)?;
        Ok(Self {
            jobs,
            feed: Feed::new(),
            readers: Arc::new(Mutex::new(readers)),
            permits: Arc::new(Semaphore::new(READERS)),
            versions: Default::default(),
        })
    }

    /// Runs `f` on a read-only connection on a blocking thread.
    pub(super) async fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let _permit = self.permits.clone().acquire_owned().await.map_err(db)?;
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let conn = readers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop()
                .ok_or_else(|| db("no reader connection free"))?;
            let result = f(&conn);
            readers.lock().unwrap_or_else(|e| e.into_inner()).push(conn);
            result
        })
        .await
        .map_err(db)?
    }

    /// Every row a read statement returns, each read into the model with `read`.
    async fn all<T: Send + 'static>(
        &self,
        stmt: &'static Statement,
        params: impl Params + Send + 'static,
        read: fn(&Row) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(stmt.sqlite()).map_err(db)?;
            let rows = stmt.query_map(params, read).map_err(db)?;
            rows.collect::<rusqlite::Result<_>>().map_err(db)
        })
        .await
    }

    /// The row a read statement returns, if any, read into the model with `read`.
    async fn one<T: Send + 'static>(
        &self,
        stmt: &'static Statement,
        params: impl Params + Send + 'static,
        read: fn(&Row) -> rusqlite::Result<T>,
    ) -> Result<Option<T>> {
        self.read(move |c| {
            c.prepare_cached(stmt.sqlite())
                .map_err(db)?
                .query_row(params, read)
                .optional()
                .map_err(db)
        })
        .await
    }

    /// The number a `count(*)` statement returns.
    async fn count(
        &self,
        stmt: &'static Statement,
        params: impl Params + Send + 'static,
    ) -> Result<u64> {
        let n = self.one(stmt, params, |r| r.get::<_, i64>(0)).await?;
        Ok(n.unwrap_or(0) as u64)
    }
}

/// Runs a write statement in the writer's transaction and, when it changed a row, appends
/// `audit`; whether it changed one.
fn change(
    c: &Connection,
    stmt: &Statement,
    params: impl Params,
    audit: &crate::AuditRecord,
) -> Result<bool> {
    let changed = c.execute(stmt.sqlite(), params).map_err(db)?;
    if changed > 0 {
        audit::insert_audit(c, audit)?;
    }
    Ok(changed > 0)
}

/// Puts the file in WAL mode. A new file is switched exclusively, and SQLite answers "database
/// is locked" at once, without waiting, while another connection opens it too (a server and a
/// tool started together): try again for as long as `busy_timeout`.
fn wal_mode(conn: &Connection) -> Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let switched = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0));
        match switched {
            Ok(_) => return Ok(()),
            Err(e)
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(e) => return Err(db(format!("switching to WAL mode: {e}"))),
        }
    }
}

/// Applies the migrations the file lacks, in one IMMEDIATE transaction: a second process
/// opening the same file at once waits for it (`busy_timeout`), then finds them applied.
fn migrate(conn: &Connection) -> Result<()> {
    conn.execute_batch("BEGIN IMMEDIATE")
        .map_err(|e| db(format!("migrating: {e}")))?;
    let applied = (|| {
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(db)?;
        for (number, sql) in MIGRATIONS.iter().filter(|(n, _)| *n > version) {
            conn.execute_batch(&format!("{sql}; PRAGMA user_version = {number};"))
                .map_err(|e| db(format!("migration {number}: {e}")))?;
        }
        Ok(())
    })();
    match applied {
        Ok(()) => conn.execute_batch("COMMIT").map_err(db),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// A search or filter parameter as a SQLite value.
fn bind(param: &Param) -> rusqlite::types::Value {
    use rusqlite::types::Value as V;
    match param {
        Param::Text(s) => V::Text(s.clone()),
        Param::Int(i) => V::Integer(*i),
        Param::Real(f) => V::Real(*f),
        Param::Json(v) => V::Text(v.to_string()),
    }
}

/// A JSON text column; unreadable JSON reads as `null`.
fn json(text: String) -> Value {
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// SQLite keeps JSON as text and booleans as integers.
impl Columns for Row<'_> {
    type Error = rusqlite::Error;

    fn text(&self, i: usize) -> rusqlite::Result<String> {
        self.get(i)
    }

    fn opt_text(&self, i: usize) -> rusqlite::Result<Option<String>> {
        self.get(i)
    }

    fn int(&self, i: usize) -> rusqlite::Result<i64> {
        self.get(i)
    }

    fn opt_int(&self, i: usize) -> rusqlite::Result<Option<i64>> {
        self.get(i)
    }

    fn int32(&self, i: usize) -> rusqlite::Result<i32> {
        self.get(i)
    }

    fn flag(&self, i: usize) -> rusqlite::Result<bool> {
        self.get(i)
    }

    fn json(&self, i: usize) -> rusqlite::Result<Value> {
        Ok(json(self.get(i)?))
    }

    fn opt_json(&self, i: usize) -> rusqlite::Result<Option<Value>> {
        Ok(self.get::<_, Option<String>>(i)?.map(json))
    }

    fn decoded<T: DeserializeOwned + Default>(&self, i: usize) -> rusqlite::Result<T> {
        Ok(serde_json::from_str(&self.get::<_, String>(i)?).unwrap_or_default())
    }

    fn status(&self, i: usize) -> rusqlite::Result<RunStatus> {
        self.get(i)
    }
}

impl rusqlite::types::ToSql for RunStatus {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

impl rusqlite::types::FromSql for RunStatus {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        value
            .as_str()?
            .parse()
            .map_err(|e| rusqlite::types::FromSqlError::Other(Box::new(e)))
    }
}

/// [`StoreError::Conflict`] naming `what` for a constraint violation, else a database error.
fn conflict_or(e: rusqlite::Error, what: impl FnOnce() -> String) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            StoreError::Conflict(what())
        }
        other => db(other),
    }
}

#[async_trait::async_trait]
impl crate::Health for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<()> {
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(db))
            .await
    }
}

/// Sent by the run methods once their write committed ([`runs`]).
impl Changes for SqliteStore {
    fn changes(&self) -> tokio::sync::broadcast::Receiver<Change> {
        self.feed.subscribe()
    }
}
