//! Postgres' run writer: the writes of a run's life (its insert, its updates, its end and its
//! log lines) are queued to one task that commits whatever is queued in one transaction, as a
//! few multi-row statements pipelined on one connection ([`Batch`]; group commit, as SQLite's
//! writer does). A run used to cost two transactions of four round trips each; a batch of many
//! runs costs three round trips and one commit.
//!
//! When one write of a batch fails (a duplicate id, a log line written twice), the batch is
//! rolled back and each write is run again in a transaction of its own, so a failing write
//! never takes the others with it and its caller hears the same error as without the writer.
//! Callers hear back only after the commit.

use super::batch::Batch;
use super::runs::{insert_logs, insert_run_row, update_run_row};
use super::{listen::AbortOnDrop, outbox::insert_events, pg, pool_error};
use crate::{ActionVersion, AuditRecord, NewEvent, Result, RunLogLine, RunRecord, db};
use deadpool_postgres::{GenericClient, Pool};
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Writes committed together at most.
const MAX_BATCH: usize = 256;
/// Writes waiting for the writer at most; callers wait for room beyond it.
const QUEUE: usize = 4 * MAX_BATCH;

/// A write of a run's life that may share a transaction with other runs' writes.
pub(super) enum Write {
    /// A new run (without limits to count: those take a lock of their own), its audit record
    /// and its events; leased to `(owner, until)` when stored already claimed.
    Insert {
        run: RunRecord,
        audit: AuditRecord,
        events: Vec<NewEvent>,
        lease: Option<(String, i64)>,
        version: Option<Arc<ActionVersion>>,
    },
    /// A run's mutable fields, with its audit record and events when it was written.
    Update {
        run: RunRecord,
        audit: Option<AuditRecord>,
        events: Vec<NewEvent>,
    },
    /// A run's last log lines and its final fields, with its events when it was written.
    Finish {
        run: RunRecord,
        lines: Vec<RunLogLine>,
        events: Vec<NewEvent>,
    },
    /// Log lines, of one run or several.
    Logs(Vec<RunLogLine>),
}

impl Write {
    /// The run whose row the write changes: a batch holds one such write per run, so that
    /// pipelining cannot reorder two writes of the same run.
    fn run_id(&self) -> Option<&str> {
        match self {
            Write::Insert { run, .. } | Write::Update { run, .. } | Write::Finish { run, .. } => {
                Some(&run.id)
            }
            Write::Logs(_) => None,
        }
    }

    /// Applies the write in `tx`; whether it changed the run (always, for an insert).
    async fn apply(&self, tx: &impl GenericClient) -> Result<bool> {
        match self {
            Write::Insert {
                run,
                audit,
                events,
                lease,
                version,
            } => {
                insert_run_row(tx, run, audit, lease.as_ref(), version.as_deref()).await?;
                insert_events(tx, events).await?;
                Ok(true)
            }
            Write::Update { run, audit, events } => {
                update_run_row(tx, run, audit.as_ref(), events).await
            }
            Write::Finish { run, lines, events } => {
                insert_logs(tx, lines).await?;
                update_run_row(tx, run, None, events).await
            }
            Write::Logs(lines) => {
                insert_logs(tx, lines).await?;
                Ok(true)
            }
        }
    }
}

/// A queued write and who waits for it.
struct Job {
    write: Write,
    reply: oneshot::Sender<Result<bool>>,
}

/// The handle to the writer task; the task ends when the handle is dropped.
pub(super) struct Writer {
    jobs: mpsc::Sender<Job>,
    _task: AbortOnDrop,
}

impl Writer {
    /// Starts the writer on connections from `pool`.
    pub(super) fn start(pool: Pool) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE);
        Self {
            jobs,
            _task: AbortOnDrop(tokio::spawn(run(pool, queue))),
        }
    }

    /// Queues `write`; answers after the transaction that holds it committed.
    pub(super) async fn write(&self, write: Write) -> Result<bool> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { write, reply })
            .await
            .map_err(|_| db("the Postgres run writer stopped"))?;
        answer
            .await
            .map_err(|_| db("the Postgres run writer stopped"))?
    }
}

/// Takes what is queued, up to [`MAX_BATCH`] writes and one write per run, and commits it;
/// while a batch commits, the next one queues.
async fn run(pool: Pool, mut queue: mpsc::Receiver<Job>) {
    let mut held: Option<Job> = None;
    loop {
        let first = match held.take() {
            Some(job) => job,
            None => match queue.recv().await {
                Some(job) => job,
                None => return,
            },
        };
        let mut runs: HashSet<String> = first
            .write
            .run_id()
            .map(str::to_owned)
            .into_iter()
            .collect();
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            let Ok(job) = queue.try_recv() else { break };
            if let Some(id) = job.write.run_id()
                && !runs.insert(id.to_owned())
            {
                held = Some(job);
                break;
            }
            batch.push(job);
        }
        commit(&pool, batch).await;
    }
}

/// Commits `batch` in one transaction; when that fails, each write in a transaction of its own.
async fn commit(pool: &Pool, batch: Vec<Job>) {
    if batch.len() > 1 {
        match together(pool, &batch).await {
            Ok(results) => {
                for (job, result) in batch.into_iter().zip(results) {
                    let _ = job.reply.send(Ok(result));
                }
                return;
            }
            Err(e) => tracing::debug!(
                "a batch of {} run writes failed ({e}); writing each alone",
                batch.len()
            ),
        }
    }
    for job in batch {
        let result = alone(pool, &job.write).await;
        let _ = job.reply.send(result);
    }
}

/// Every write of `batch` in one transaction, as a few multi-row statements ([`Batch`]).
async fn together(pool: &Pool, batch: &[Job]) -> Result<Vec<bool>> {
    let mut c = pool.get().await.map_err(pool_error)?;
    let tx = c.transaction().await.map_err(pg)?;
    let written = Batch::of(batch.iter().map(|job| &job.write))
        .write(&tx)
        .await?;
    tx.commit().await.map_err(pg)?;
    Ok(batch
        .iter()
        .map(|job| match &job.write {
            Write::Update { run, .. } | Write::Finish { run, .. } => written.contains(&run.id),
            Write::Insert { .. } | Write::Logs(_) => true,
        })
        .collect())
}

/// One write in its own transaction, for its own answer.
async fn alone(pool: &Pool, write: &Write) -> Result<bool> {
    let mut c = pool.get().await.map_err(pool_error)?;
    let tx = c.transaction().await.map_err(pg)?;
    let result = write.apply(&tx).await?;
    tx.commit().await.map_err(pg)?;
    Ok(result)
}
