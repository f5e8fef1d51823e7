//! The embedded default: SQLite through rusqlite, in WAL mode. One writer thread owns the only
//! writable connection and commits whatever writes are queued in one transaction (group commit);
//! when one of them fails, the batch is rolled back and each write is run again in a transaction
//! of its own, so a failing write never takes the others with it (cheaper than a savepoint per
//! write, which journals every page it touches). Callers hear back only after the commit, so an
//! answered write survives a crash. Reads use a small pool of read-only connections on blocking
//! threads.

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
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, params, params_from_iter};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};
use tokio::sync::{Semaphore, mpsc, oneshot};

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/sqlite/0001_catalog.sql")),
    (2, include_str!("../../migrations/sqlite/0002_plugins.sql")),
    (3, include_str!("../../migrations/sqlite/0003_actions.sql")),
    (4, include_str!("../../migrations/sqlite/0004_runs.sql")),
    (5, include_str!("../../migrations/sqlite/0005_approvals.sql")),
    (6, include_str!("../../migrations/sqlite/0006_tokens.sql")),
];
/// Writes committed together at most.
const MAX_BATCH: usize = 512;
/// A batch this large means writers are queueing: the next batch waits [`COMMIT_DELAY`].
const BUSY_BATCH: usize = 8;
/// How long a batch waits for more writes under load (PostgreSQL's `commit_delay`, in effect).
const COMMIT_DELAY: std::time::Duration = std::time::Duration::from_micros(500);
const READERS: usize = 4;

/// A queued write: run (again, after a rolled-back batch) until committed, then answered.
trait Job: Send {
    /// Runs the write in the open transaction; `false` when it failed.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Answers the caller once the transaction ended (`Err`: the commit failed).
    fn finish(self: Box<Self>, commit: std::result::Result<(), String>);
}

struct Queued<F, R> {
    write: F,
    result: Option<Result<R>>,
    reply: oneshot::Sender<Result<R>>,
}

impl<F, R> Job for Queued<F, R>
where
    F: FnMut(&Connection) -> Result<R> + Send,
    R: Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let result = (self.write)(conn);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, commit: std::result::Result<(), String>) {
        let result = match (commit, self.result) {
            (Ok(()), Some(result)) => result,
            (Err(e), _) => Err(StoreError::Database(e)),
            (Ok(()), None) => Err(db("the write never ran")),
        };
        let _ = self.reply.send(result);
    }
}

pub(crate) struct SqliteStore {
    jobs: mpsc::Sender<Box<dyn Job>>,
    readers: Arc<Mutex<Vec<Connection>>>,
    permits: Arc<Semaphore>,
}

fn db(e: impl std::fmt::Display) -> StoreError {
    StoreError::Database(e.to_string())
}

fn ms(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

fn at(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

fn json(text: String) -> Value {
    serde_json::from_str(&text).unwrap_or(Value::Null)
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
            readers: Arc::new(Mutex::new(readers)),
            permits: Arc::new(Semaphore::new(READERS)),
        })
    }

    /// Runs `f` in the writer's next batch; resolves after the batch commits. `f` may run twice
    /// (after a batch rolled back because another write failed), so it must not consume what it
    /// writes. Prepare parameters before calling: the writer thread is the bottleneck.
    async fn write<R: Send + 'static>(
        &self,
        f: impl FnMut(&Connection) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let (reply, answer) = oneshot::channel::<Result<R>>();
        let job = Box::new(Queued {
            write: f,
            result: None,
            reply,
        });
        self.jobs
            .send(job)
            .await
            .map_err(|_| db("the SQLite writer thread stopped"))?;
        answer
            .await
            .map_err(|_| db("the SQLite writer thread stopped"))?
    }

    /// Inserts a run and its audit record, leased to `lease` (worker, until in ms) when given.
    async fn insert_run(
        &self,
        r: RunRecord,
        audit: AuditRecord,
        lease: Option<(String, i64)>,
    ) -> Result<()> {
        use rusqlite::types::Value as V;
        let text = |v: Option<String>| v.map_or(V::Null, V::Text);
        let (owner, until) = lease.map_or((None, None), |(w, u)| (Some(w), Some(u)));
        let row: [V; 22] = [
            V::Text(r.id.clone()),
            V::Text(r.action),
            text(r.blueprint),
            text(r.entity),
            V::Text(r.properties.to_string()),
            V::Text(r.status.as_str().into()),
            text(r.status_label),
            V::Text(serde_json::to_string(&r.link).map_err(db)?),
            text(r.summary),
            text(r.progress.as_ref().map(Value::to_string)),
            text(r.error.as_ref().map(Value::to_string)),
            V::Text(r.affected_entities.to_string()),
            text(r.output.as_ref().map(Value::to_string)),
            V::Text(r.source),
            V::Text(r.created_by),
            V::Integer(ms(r.created_at)),
            V::Integer(ms(r.updated_at)),
            r.ended_at.map_or(V::Null, |t| V::Integer(ms(t))),
            V::Integer(r.attempts.into()),
            V::Text(r.payload.as_str().to_owned()),
            text(owner),
            until.map_or(V::Null, V::Integer),
        ];
        let id = r.id;
        self.write(move |c| {
            c.prepare_cached(&INSERT_RUN)
                .map_err(db)?
                .execute(params_from_iter(row.iter()))
                .map_err(|e| conflict_or(e, || format!("run `{id}`")))?;
            insert_audit(c, &audit)
        })
        .await
    }

    /// Runs `f` on a read-only connection on a blocking thread.
    async fn read<R: Send + 'static>(
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

/// A run's mutable fields (see [`Store::update_run`]) as SQLite columns, serialized by the
/// caller so the writer thread only writes.
struct RunUpdate {
    id: String,
    status: RunStatus,
    status_label: Option<String>,
    link: String,
    summary: Option<String>,
    progress: Option<String>,
    error: Option<String>,
    affected_entities: String,
    output: Option<String>,
    updated_at: i64,
    ended_at: Option<i64>,
    is_final: bool,
}

impl RunUpdate {
    fn of(r: &RunRecord) -> Result<Self> {
        Ok(Self {
            id: r.id.clone(),
            status: r.status,
            status_label: r.status_label.clone(),
            link: serde_json::to_string(&r.link).map_err(db)?,
            summary: r.summary.clone(),
            progress: r.progress.as_ref().map(Value::to_string),
            error: r.error.as_ref().map(Value::to_string),
            affected_entities: r.affected_entities.to_string(),
            output: r.output.as_ref().map(Value::to_string),
            updated_at: ms(r.updated_at),
            ended_at: r.ended_at.map(ms),
            is_final: r.is_final(),
        })
    }
}

/// [`update_run_row`]'s statement, built once: it runs for every run, in the writer thread.
static UPDATE_RUN: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE runs SET status = ?2, status_label = ?3, link = ?4, summary = ?5, \
         progress = ?6, error = ?7, affected_entities = ?8, output = ?9, \
         updated_at = ?10, ended_at = ?11, \
         lease_owner = CASE WHEN ?12 THEN NULL ELSE lease_owner END, \
         lease_until = CASE WHEN ?12 THEN NULL ELSE lease_until END, \
         payload = CASE WHEN ?12 AND instr(payload, '\"sealed\"') > 0 \
             THEN json_remove(payload, '$.sealed') ELSE payload END \
         WHERE id = ?1 AND status NOT IN {}",
        final_statuses()
    )
});

/// Writes a run's mutable fields (see [`Store::update_run`]) in the writer's transaction. A
/// final status drops the lease and the payload's sealed secrets (the payload is only
/// rewritten when it holds some).
fn update_run_row(c: &Connection, r: &RunUpdate, audit: Option<&AuditRecord>) -> Result<bool> {
    let updated = c
        .prepare_cached(&UPDATE_RUN)
        .map_err(db)?
        .execute(params![
            r.id,
            r.status,
            r.status_label,
            r.link,
            r.summary,
            r.progress,
            r.error,
            r.affected_entities,
            r.output,
            r.updated_at,
            r.ended_at,
            r.is_final,
        ])
        .map_err(db)?;
    if updated > 0
        && let Some(audit) = audit
    {
        insert_audit(c, audit)?;
    }
    Ok(updated > 0)
}

/// Inserts log lines (see [`Store::append_run_logs`]) in the writer's transaction.
fn insert_logs(c: &Connection, lines: &[RunLogLine]) -> Result<()> {
    let mut insert = c
        .prepare_cached(
            "INSERT INTO run_logs (run_id, seq, at, level, message) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .map_err(db)?;
    for l in lines {
        insert
            .execute(params![l.run_id, l.seq, ms(l.at), l.level, l.message])
            .map_err(|e| conflict_or(e, || format!("log line {} of run `{}`", l.seq, l.run_id)))?;
    }
    Ok(())
}

/// Runs a statement kept prepared (these run several times per batch: parsing them each time
/// shows in the writer thread's profile).
fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 128;

fn write_loop(conn: Connection, mut queue: mpsc::Receiver<Box<dyn Job>>) {
    let mut busy = false;
    while let Some(first) = queue.blocking_recv() {
        let mut batch = vec![first];
        let drain = |batch: &mut Vec<Box<dyn Job>>, queue: &mut mpsc::Receiver<_>| {
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
        };
        drain(&mut batch, &mut queue);
        // Under load, wait a moment for more writes: a commit (its WAL pages and its fsync)
        // costs about the same for 1 write as for 50. Alone, a write commits at once.
        if busy && batch.len() < MAX_BATCH {
            std::thread::sleep(COMMIT_DELAY);
            drain(&mut batch, &mut queue);
        }
        busy = batch.len() >= BUSY_BATCH;
        // Together first; if a write fails, each on its own.
        let together = transaction(&conn, &mut batch);
        if together.is_err() {
            for mut job in batch {
                let alone = transaction(&conn, std::slice::from_mut(&mut job));
                let commit = match alone {
                    Err(Failed::Commit(e)) => Err(e),
                    _ => Ok(()),
                };
                job.finish(commit);
            }
            continue;
        }
        for job in batch {
            job.finish(Ok(()));
        }
    }
}

/// Why a transaction was rolled back.
enum Failed {
    /// A write failed (its own result says why).
    Write,
    /// BEGIN or COMMIT failed.
    Commit(String),
}

/// Runs `jobs` in one transaction, committed only if every one succeeds.
fn transaction(conn: &Connection, jobs: &mut [Box<dyn Job>]) -> std::result::Result<(), Failed> {
    run_cached(conn, "BEGIN IMMEDIATE").map_err(|e| Failed::Commit(e.to_string()))?;
    let mut failed = None;
    for job in jobs.iter_mut() {
        if !job.run(conn) {
            failed = Some(Failed::Write);
            break;
        }
    }
    let outcome = match failed {
        Some(f) => Err(f),
        None => run_cached(conn, "COMMIT").map_err(|e| Failed::Commit(e.to_string())),
    };
    if outcome.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    outcome
}

fn bind(param: &Param) -> rusqlite::types::Value {
    use rusqlite::types::Value as V;
    match param {
        Param::Text(s) => V::Text(s.clone()),
        Param::Int(i) => V::Integer(*i),
        Param::Real(f) => V::Real(*f),
        Param::Json(v) => V::Text(v.to_string()),
    }
}

const ENTITY_COLUMNS: &str = "e.blueprint, e.identifier, e.title, e.icon, e.team, e.properties, \
    e.relations, e.created_at, e.created_by, e.updated_at, e.updated_by";

fn entity(row: &Row) -> rusqlite::Result<Entity> {
    Ok(Entity {
        blueprint: row.get(0)?,
        identifier: row.get(1)?,
        title: row.get(2)?,
        icon: row.get(3)?,
        team: serde_json::from_str(&row.get::<_, String>(4)?).unwrap_or_default(),
        properties: json(row.get(5)?),
        relations: json(row.get(6)?),
        created_at: at(row.get(7)?),
        created_by: row.get(8)?,
        updated_at: at(row.get(9)?),
        updated_by: row.get(10)?,
    })
}

fn action(row: &Row) -> rusqlite::Result<ActionRecord> {
    Ok(ActionRecord {
        identifier: row.get(0)?,
        plugin: row.get(1)?,
        data: json(row.get(2)?),
        created_at: at(row.get(3)?),
        updated_at: at(row.get(4)?),
    })
}

/// [`SqliteStore::insert_run`]'s statement, built once.
static INSERT_RUN: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO runs ({RUN_COLUMNS}, lease_owner, lease_until) VALUES (?1, ?2, ?3, ?4, ?5, \
         ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)"
    )
});

const RUN_COLUMNS: &str = "id, action, blueprint, entity, properties, status, status_label, link, \
    summary, progress, error, affected_entities, output, source, created_by, created_at, \
    updated_at, ended_at, attempts, payload";
/// [`RUN_COLUMNS`] and whether an external system holds the run (`RunRecord::external`).
const RUN_SELECT: &str = "id, action, blueprint, entity, properties, status, status_label, link, \
    summary, progress, error, affected_entities, output, source, created_by, created_at, \
    updated_at, ended_at, attempts, payload, lease_owner IS 'external'";

fn run(row: &Row) -> rusqlite::Result<RunRecord> {
    Ok(RunRecord {
        id: row.get(0)?,
        action: row.get(1)?,
        blueprint: row.get(2)?,
        entity: row.get(3)?,
        properties: json(row.get(4)?),
        status: row.get(5)?,
        status_label: row.get(6)?,
        link: serde_json::from_str(&row.get::<_, String>(7)?).unwrap_or_default(),
        summary: row.get(8)?,
        progress: row.get::<_, Option<String>>(9)?.map(json),
        error: row.get::<_, Option<String>>(10)?.map(json),
        affected_entities: json(row.get(11)?),
        output: row.get::<_, Option<String>>(12)?.map(json),
        source: row.get(13)?,
        created_by: row.get(14)?,
        created_at: at(row.get(15)?),
        updated_at: at(row.get(16)?),
        ended_at: row.get::<_, Option<i64>>(17)?.map(at),
        attempts: row.get(18)?,
        payload: JsonText::from_stored(row.get(19)?),
        external: row.get(20)?,
    })
}

/// The SQL list of the final statuses, e.g. `('SUCCESS', 'FAILURE')`.
fn final_statuses() -> String {
    let quoted: Vec<String> = RunStatus::FINAL.iter().map(|s| format!("'{s}'")).collect();
    format!("({})", quoted.join(", "))
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

/// A `LIMIT`: SQLite takes at most an INTEGER.
fn sql_limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

const USER_COLUMNS: &str = "identifier, email, role, teams, created_at, disabled";

fn user(row: &Row) -> rusqlite::Result<User> {
    Ok(User {
        identifier: row.get(0)?,
        email: row.get(1)?,
        role: Role::parse(&row.get::<_, String>(2)?).unwrap_or(Role::Member),
        teams: serde_json::from_str(&row.get::<_, String>(3)?).unwrap_or_default(),
        created_at: at(row.get(4)?),
        disabled: row.get(5)?,
    })
}

const TOKEN_COLUMNS: &str = "id, user_id, name, prefix, created_at, rotated_at, last_used_at";

fn token(row: &Row) -> rusqlite::Result<ApiToken> {
    Ok(ApiToken {
        id: row.get(0)?,
        user: row.get(1)?,
        name: row.get(2)?,
        prefix: row.get(3)?,
        created_at: at(row.get(4)?),
        rotated_at: row.get::<_, Option<i64>>(5)?.map(at),
        last_used_at: row.get::<_, Option<i64>>(6)?.map(at),
    })
}

fn insert_token(conn: &Connection, t: &ApiToken, token_hash: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO user_tokens (id, user_id, name, prefix, token_hash, created_at, rotated_at, \
         last_used_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
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
/// exists: changing or deleting it would lock everyone out of user management.
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

fn insert_audit(conn: &Connection, a: &AuditRecord) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO audit_log (at, actor, operation, resource_type, resource_id, blueprint, \
         run_id, before, after, status, reason, origin) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )
    .map_err(db)?
    .execute(params![
        ms(a.at),
        a.actor,
        a.operation,
        a.resource_type,
        a.resource_id,
        a.blueprint,
        a.run_id,
        a.before.as_ref().map(Value::to_string),
        a.after.as_ref().map(Value::to_string),
        match a.status {
            AuditStatus::Success => "SUCCESS",
            AuditStatus::Failure => "FAILURE",
        },
        a.reason,
        a.origin,
    ])
    .map_err(db)?;
    Ok(())
}

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
