//! SQLite's writer thread: it owns the only writable connection and commits whatever writes are
//! queued in one transaction (group commit). When one of them fails, the batch is rolled back and
//! each write is run again in a transaction of its own, so a failing write never takes the others
//! with it (cheaper than a savepoint per write, which journals every page it touches). Callers
//! hear back only after the commit, so an answered write survives a crash.

use super::SqliteStore;
use crate::{Result, StoreError, db};
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

/// Writes committed together at most.
const MAX_BATCH: usize = 512;
/// A batch this large means writers are queueing: the next batch waits [`COMMIT_DELAY`].
const BUSY_BATCH: usize = 8;
/// How long a batch waits for more writes under load (PostgreSQL's `commit_delay`, in effect).
const COMMIT_DELAY: std::time::Duration = std::time::Duration::from_micros(500);

/// A queued write: run (again, after a rolled-back batch) until committed, then answered.
pub(super) trait Job: Send {
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

impl SqliteStore {
    /// Runs `f` in the writer's next batch; resolves after the batch commits. `f` may run twice
    /// (after a batch rolled back because another write failed), so it must not consume what it
    /// writes. Prepare parameters before calling: the writer thread is the bottleneck.
    pub(super) async fn write<R: Send + 'static>(
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
}

/// Runs a statement kept prepared (these run several times per batch: parsing them each time
/// shows in the writer thread's profile).
fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

pub(super) fn write_loop(conn: Connection, mut queue: mpsc::Receiver<Box<dyn Job>>) {
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
