//! Running actions. A run is committed as `PENDING` before anyone is told it exists; workers
//! claim pending runs with a lease (renewed while they run), execute them in the plugin runtime
//! and write the outcome. Logs and progress are written as they come, in batches.
//!
//! Nothing accepted is lost: a run whose worker died keeps its lease until it expires and is
//! then failed as `interrupted`, or queued again when its action says `retry.onInterrupt` (on
//! SQLite, a single process, at once on restart). A run's changes carry their events
//! (notifications, automations on runs) into the outbox in the same transaction
//! ([`Runner::events`], [`Runner::record`]).
//!
//! The periodic scans (expired leases, approvals that waited too long, expired timers) run on
//! one replica at a time: the one holding the store's `maintenance` leadership.
//!
//! Secret inputs travel sealed with the host key ([`Payload::sealed`]); the worker opens them
//! for the plugin alone and redacts their values from the run's logs, summary and error.

use crate::actions::{ActionDefinition, Retry};
use crate::automations::Automations;
use crate::host_key::HostKey;
use crate::liveness::{Pulse, WorkerLoop};
use crate::notify::{Notifier, NotifyConfig};
use crate::payload::Payload;
use crate::run_catalog::RunCatalog;
use portico_catalog::Catalog;
use portico_runtime::{HandOff, Link, LogLevel, RunEvents, RunJob, Runtime};
use portico_store::{
    AuditRecord, JsonText, NewEvent, RunLogLine, RunRecord, RunStatus, Store, StoreError,
};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

mod wakeups;

/// The leadership of the periodic scans ([`portico_store::Coordination::lead`]).
const MAINTENANCE: &str = "maintenance";

/// How the runner runs.
#[derive(Clone, Debug)]
pub struct RunnerConfig {
    /// Plugins running at once in this process (a run's worker is free once its plugin
    /// returned, while its end is written).
    pub workers: usize,
    /// How long a claim holds without renewal.
    pub lease: Duration,
    /// How often idle workers look for runs another replica queued when the store's change
    /// feed, which wakes them at once, missed it (the fallback).
    pub poll: Duration,
    /// Pending runs beyond which new runs are refused with 503.
    pub max_queue: u64,
    /// Seals secret inputs and signs run tokens; replicas sharing a database share it.
    pub key: HostKey,
    /// The address clients reach this API at, e.g. `https://portico.example.com`: external
    /// systems a run is handed to report there.
    pub public_url: String,
    /// How run notifications are signed and retried.
    pub notify: NotifyConfig,
    /// How long the worker loop may go without a turn before this replica says it is not
    /// ready (`/readyz`); never less than 3 × `poll`, the longest the loop sleeps.
    pub stuck_after: Duration,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            workers: 256,
            lease: Duration::from_secs(30),
            poll: Duration::from_secs(1),
            max_queue: 10_000,
            key: HostKey::random(),
            public_url: "http://127.0.0.1:8080".into(),
            notify: NotifyConfig::default(),
            stuck_after: Duration::from_secs(10),
        }
    }
}

/// The runner of one process: queues, claims and executes runs, and records their end.
/// Cheap to clone.
#[derive(Clone)]
pub struct Runner {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    catalog: Arc<Catalog>,
    runtime: Runtime,
    config: Arc<RunnerConfig>,
    worker: String,
    notifier: Notifier,
    automations: Arc<Automations>,
    /// Plugin versions by name (all of them, newest first), to resolve a run's plugin.
    plugins: crate::ttl_cache::TtlCache<(), Arc<Vec<portico_store::PluginVersion>>>,
    running: Mutex<HashMap<String, CancellationToken>>,
    /// One permit per worker, held from a run's reservation or claim until its plugin returned
    /// (the end is written after): `workers` bounds plugins running at once.
    workers: Arc<Semaphore>,
    queue: Arc<QueueSignal>,
    /// Wakes this replica's outbox consumer.
    outbox: Arc<Notify>,
    /// Each turn of the worker loop, for readiness.
    pulse: Pulse,
}

/// Tells the worker loop when runs may be waiting in the queue.
#[derive(Default)]
struct QueueSignal {
    /// Set when a run is queued here (or may have been), cleared by a claim that left workers
    /// free. Idle workers poll for runs queued elsewhere.
    queued: AtomicBool,
    wake: Notify,
}

impl QueueSignal {
    /// Runs may be queued: the worker loop claims on its next turn.
    fn nudge(&self) {
        self.queued.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// A worker was freed: worth a claim only if runs wait for one.
    fn worker_freed(&self) {
        if self.queued.load(Ordering::Acquire) {
            self.wake.notify_one();
        }
    }
}

/// A worker kept for a run this process is accepting ([`Runner::reserve`]); given back when
/// dropped unused.
pub struct Reservation {
    worker: OwnedSemaphorePermit,
}

impl Runner {
    /// A runner over the store, catalog and runtime; call [`Runner::start`] to run workers.
    pub fn new(
        store: Arc<dyn Store>,
        catalog: Arc<Catalog>,
        runtime: Runtime,
        config: RunnerConfig,
    ) -> Self {
        let worker = format!(
            "w_{}_{}",
            std::process::id(),
            portico_store::now().timestamp_millis()
        );
        let notifier = Notifier::new(store.clone(), config.notify.clone());
        Self {
            inner: Arc::new(Inner {
                notifier,
                automations: Arc::new(Automations::new(
                    store.clone(),
                    catalog.clone(),
                    config.key.clone(),
                )),
                plugins: crate::ttl_cache::TtlCache::new(Duration::from_secs(1)),
                store,
                catalog,
                runtime,
                workers: Arc::new(Semaphore::new(config.workers)),
                config: Arc::new(config),
                worker,
                running: Mutex::default(),
                queue: Arc::new(QueueSignal {
                    queued: AtomicBool::new(true),
                    wake: Notify::new(),
                }),
                outbox: Arc::default(),
                pulse: Pulse::new(),
            }),
        }
    }

    /// The secret input values of a run still going (a run handed to an external system keeps
    /// them sealed until it ends), to redact what is reported about it.
    pub async fn secret_values(&self, run: &RunRecord) -> SecretValues {
        self.inner.secret_values(run).await
    }

    /// The events `run`'s change publishes, to write with it: the notifications its action
    /// asks for on reaching its status (and `RUN_CREATED` when `created`), and the run itself
    /// when automations watch runs. Without `action` (its payload could not be read), only
    /// the run itself.
    pub fn events(
        &self,
        run: &RunRecord,
        action: Option<&ActionDefinition>,
        created: bool,
    ) -> Vec<NewEvent> {
        self.inner.events(run, action, created)
    }

    /// Writes a run's change ([`portico_store::RunQueue::update_run`]), with its
    /// [`Runner::events`] when the change ends it (a report that only relabels a run announces
    /// nothing); whether it was written (not when the run had ended meanwhile).
    pub async fn record(
        &self,
        run: &RunRecord,
        audit: Option<AuditRecord>,
    ) -> Result<bool, StoreError> {
        self.inner.record(run, audit).await
    }

    /// Tells the outbox consumer this replica wrote events.
    pub fn events_written(&self) {
        self.inner.outbox.notify_one();
    }

    /// The runner's settings.
    pub fn config(&self) -> &RunnerConfig {
        &self.inner.config
    }

    /// Whether the worker loop turns: stuck when it has not for
    /// [`RunnerConfig::stuck_after`] (at least 3 × `poll`).
    pub fn worker_loop(&self) -> WorkerLoop {
        let config = &self.inner.config;
        self.inner
            .pulse
            .state(config.stuck_after.max(config.poll * 3))
    }

    /// Starts the worker loop (and the lease heartbeat) and the outbox consumer until `stop` is
    /// cancelled.
    pub fn start(&self, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
        let inner = self.inner.clone();
        // Subscribed before the first claim: a run queued after it wakes the workers.
        let wakeups = inner
            .clone()
            .follow_changes(inner.store.changes(), stop.clone());
        let consumer = crate::outbox::Consumer {
            store: inner.store.clone(),
            automations: inner.automations.clone(),
            notifier: inner.notifier.clone(),
            wake: inner.outbox.clone(),
            poll: inner.config.poll,
            lease: inner.config.lease,
        };
        let queue = inner.queue.clone();
        let events = consumer.run(stop.clone(), move || queue.nudge());
        inner.pulse.beat();
        tokio::spawn(async move {
            if let Err(e) = inner.automations.refresh().await {
                tracing::error!("cannot load automations: {e}");
            }
            let events = tokio::spawn(events);
            let wakeups = tokio::spawn(wakeups);
            inner.clone().work(stop).await;
            inner.pulse.stop();
            events.abort();
            wakeups.abort();
        })
    }

    /// Forgets which plugin versions exist (after an upload or delete on this replica).
    pub fn plugins_changed(&self) {
        self.inner.plugins.clear();
    }

    /// Reloads automations after an action changed.
    pub async fn refresh_automations(&self) {
        if let Err(e) = self.inner.automations.refresh().await {
            tracing::error!("cannot load automations: {e}");
        }
    }

    /// Whether an automation reacts to run events.
    pub fn watches_runs(&self) -> bool {
        self.inner.automations.watches_runs()
    }

    /// Tells idle workers a run was queued.
    pub fn wake(&self) {
        self.inner.queue.nudge();
    }

    /// A worker for a run about to be accepted here, when one is free. The run is then stored
    /// already claimed ([`Runner::claim`] with [`portico_store::RunQueue::create_claimed_run`])
    /// and handed over with [`Runner::dispatch`]: one write less than queueing it and claiming
    /// it back, and no wait for a worker to poll.
    ///
    /// When all are busy it waits up to `patience` for one (in turn with other callers): a
    /// short wait keeps runs on this path under load, and slows clients to the pace the
    /// workers keep. Runs already queued go first: then a new run queues behind them.
    pub async fn reserve(&self, patience: Duration) -> Option<Reservation> {
        if self.inner.queue.queued.load(Ordering::Acquire) {
            return None;
        }
        let workers = self.inner.workers.clone();
        let worker = match workers.clone().try_acquire_owned() {
            Ok(worker) => worker,
            Err(_) => tokio::time::timeout(patience, workers.acquire_owned())
                .await
                .ok()?
                .ok()?,
        };
        Some(Reservation { worker })
    }

    /// The claim a reserved run is stored with: this process's worker id and the lease's end.
    pub fn claim(&self) -> (&str, chrono::DateTime<chrono::Utc>) {
        (
            &self.inner.worker,
            portico_store::now() + self.inner.lease(),
        )
    }

    /// Executes a run stored with [`Runner::claim`], using the worker `reservation` kept.
    /// `run.payload` may be left out (`null`): `payload` is what the worker reads.
    pub fn dispatch(&self, reservation: Reservation, run: RunRecord, payload: Payload) {
        self.inner
            .clone()
            .spawn(run, Some(payload), Some(reservation.worker));
    }

    /// Whether a run is executing in this process.
    pub fn is_running(&self, run_id: &str) -> bool {
        self.inner.lock_running().contains_key(run_id)
    }

    /// Cancels a run executing in this process; `false` when it is not running here.
    pub fn cancel(&self, run_id: &str) -> bool {
        match self.inner.lock_running().get(run_id) {
            Some(token) => {
                token.cancel();
                true
            }
            None => false,
        }
    }
}

impl Inner {
    fn lock_running(&self) -> std::sync::MutexGuard<'_, HashMap<String, CancellationToken>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn events(
        &self,
        run: &RunRecord,
        action: Option<&ActionDefinition>,
        created: bool,
    ) -> Vec<NewEvent> {
        let mut events = Vec::new();
        if self.automations.watches_runs() {
            // A run serializes without its payload (`#[serde(skip)]`).
            events.push(NewEvent {
                topic: NewEvent::RUN,
                body: json!({ "created": created, "run": run }),
            });
        }
        let Some(action) = action else {
            return events;
        };
        if action.notifications.is_empty() && action.approval_notification.is_none() {
            return events;
        }
        // IN_PROGRESS is announced by the worker that starts the plugin, also for a run stored
        // already claimed: its creation announces only RUN_CREATED (and WAITING_FOR_APPROVAL).
        let status = crate::notify::event_of(run.status)
            .filter(|_| !(created && run.status == RunStatus::InProgress));
        let names = created.then_some("RUN_CREATED").into_iter().chain(status);
        for name in names {
            events.extend(Notifier::events(action, run, name));
        }
        events
    }

    async fn record(
        &self,
        run: &RunRecord,
        audit: Option<AuditRecord>,
    ) -> Result<bool, StoreError> {
        let events = match run.is_final() {
            true => match Payload::open(self.store.as_ref(), &run.payload).await {
                Ok(payload) => self.events(run, Some(&payload.action), false),
                Err(e) => {
                    tracing::error!(run_id = %run.id, "cannot read the run's action: {e}");
                    self.events(run, None, false)
                }
            },
            false => Vec::new(),
        };
        let wake = !events.is_empty();
        let written = self.store.update_run_with(run, audit, events).await?;
        if written {
            crate::metrics::run_ended(run);
        }
        if written && wake {
            self.outbox.notify_one();
        }
        Ok(written)
    }

    /// Writes events no other write carries, and wakes the outbox consumer.
    async fn emit(&self, events: Vec<NewEvent>) {
        if events.is_empty() {
            return;
        }
        match self.store.emit(events).await {
            Ok(()) => self.outbox.notify_one(),
            Err(e) => tracing::error!("cannot write a run's events: {e}"),
        }
    }

    /// Periodic work, at most once per poll interval: fail or retry runs whose worker died,
    /// decline runs that waited too long for approval, fire expired timers. Only the replica
    /// that leads `maintenance` does it (SQLite is one process: it always does); a term lasts
    /// [`Inner::term`], renewed every turn, so another replica takes over within a term when
    /// the leader stops.
    async fn maintain(&self, horizon: chrono::DateTime<chrono::Utc>) {
        if let Err(e) = self.automations.refresh().await {
            tracing::error!("cannot load automations: {e}");
        }
        let now = portico_store::now();
        let leads = self.store.backend() == "sqlite"
            || match self
                .store
                .lead(MAINTENANCE, &self.worker, now, now + self.term())
                .await
            {
                Ok(leads) => leads,
                Err(e) => {
                    tracing::error!("cannot take the maintenance leadership: {e}");
                    false
                }
            };
        if !leads {
            return;
        }
        if self.automations.expire_timers().await > 0 {
            self.queue.nudge();
        }
        if let Err(e) = self.recover(horizon).await {
            tracing::error!("cannot recover interrupted runs: {e}");
        }
        let events =
            |run: &RunRecord, action: &ActionDefinition| self.events(run, Some(action), false);
        match crate::approval::expire(self.store.as_ref(), &events).await {
            Ok(expired) if expired > 0 => self.outbox.notify_one(),
            Ok(_) => {}
            Err(e) => tracing::error!("cannot expire approvals: {e}"),
        }
    }

    /// How long a maintenance leadership lasts without renewal: a few poll intervals.
    fn term(&self) -> chrono::Duration {
        let term = (self.config.poll * 5).clamp(Duration::from_secs(2), Duration::from_secs(30));
        chrono::Duration::from_std(term).unwrap_or(chrono::Duration::seconds(10))
    }

    async fn work(self: Arc<Self>, stop: CancellationToken) {
        // SQLite is one process: whatever was in progress belongs to a process that is gone.
        let orphans_now = self.store.backend() == "sqlite";
        let mut first = true;
        let mut maintained = std::time::Instant::now();
        let mut claimed = std::time::Instant::now();
        let mut counted: Option<std::time::Instant> = None;
        // The heartbeat also notices runs ended elsewhere (cancelled through another replica).
        let mut heartbeat = tokio::time::interval((self.config.lease / 3).min(HEARTBEAT));
        loop {
            self.pulse.beat();
            if counted.is_none_or(|at| at.elapsed() >= QUEUE_DEPTH_EVERY) {
                counted = Some(std::time::Instant::now());
                match self.store.count_runs(RunStatus::Pending).await {
                    Ok(pending) => crate::metrics::queue_depth(pending),
                    Err(e) => tracing::warn!("cannot count pending runs: {e}"),
                }
            }
            let horizon = if first && orphans_now {
                portico_store::now() + chrono::Duration::days(36_500)
            } else {
                portico_store::now()
            };
            if first || maintained.elapsed() >= self.config.poll {
                self.maintain(horizon).await;
                maintained = std::time::Instant::now();
            }
            first = false;
            // Claim when runs were queued here, and every poll for those queued elsewhere.
            if self.queue.queued.swap(false, Ordering::AcqRel)
                || claimed.elapsed() >= self.config.poll
            {
                let free = self.workers.available_permits();
                let mut taken = 0;
                if free > 0 {
                    claimed = std::time::Instant::now();
                    let until = portico_store::now() + self.lease();
                    let claim = self.store.claim_runs(&self.worker, free, until);
                    match crate::metrics::store("claim_runs", claim).await {
                        Ok(runs) => {
                            taken = runs.len();
                            for run in runs {
                                // A permit taken meanwhile by a request makes this run wait
                                // for the next free worker.
                                let worker = self.workers.clone().try_acquire_owned().ok();
                                self.clone().spawn(run, None, worker);
                            }
                        }
                        Err(e) => tracing::error!("cannot claim runs: {e}"),
                    }
                }
                if taken == free {
                    // Every worker is busy now: more may wait, for the next one freed.
                    self.queue.queued.store(true, Ordering::Release);
                }
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.queue.wake.notified() => {}
                _ = heartbeat.tick() => self.renew().await,
                () = tokio::time::sleep(self.config.poll) => {}
            }
        }
    }

    /// Executes a claimed run in a task of its own, with its `worker` permit (waited for when
    /// none); `payload` when the caller has it already (else it is read from `run.payload`).
    fn spawn(
        self: Arc<Self>,
        run: RunRecord,
        payload: Option<Payload>,
        worker: Option<OwnedSemaphorePermit>,
    ) {
        let token = CancellationToken::new();
        self.lock_running().insert(run.id.clone(), token.clone());
        tokio::spawn(async move {
            let worker = match worker {
                Some(worker) => Some(worker),
                None => self.workers.clone().acquire_owned().await.ok(),
            };
            let id = run.id.clone();
            self.execute(run, payload, worker, token).await;
            self.lock_running().remove(&id);
        });
    }

    fn lease(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.config.lease).unwrap_or(chrono::Duration::seconds(30))
    }

    async fn renew(&self) {
        let ids: Vec<String> = self.lock_running().keys().cloned().collect();
        if ids.is_empty() {
            return;
        }
        let until = portico_store::now() + self.lease();
        match self.store.renew_leases(&self.worker, &ids, until).await {
            Ok(renewed) if (renewed as usize) < ids.len() => self.stop_ended_elsewhere(&ids).await,
            Ok(_) => {}
            Err(e) => tracing::error!("cannot renew run leases: {e}"),
        }
    }

    /// Cancels the plugins of runs that reached a final status outside this worker (a cancel
    /// or an external report received by another replica).
    async fn stop_ended_elsewhere(&self, ids: &[String]) {
        for id in ids {
            if let Ok(Some(run)) = self.store.get_run(id).await
                && run.is_final()
                && let Some(token) = self.lock_running().get(id)
            {
                token.cancel();
            }
        }
    }

    /// Fails runs whose worker stopped renewing their lease before `horizon`.
    async fn recover(&self, horizon: chrono::DateTime<chrono::Utc>) -> portico_store::Result<()> {
        for mut run in self.store.expired_runs(horizon).await? {
            if self.lock_running().contains_key(&run.id) {
                continue;
            }
            let retry = Payload::open(self.store.as_ref(), &run.payload)
                .await
                .ok()
                .and_then(|p| p.action.retry)
                .unwrap_or_default();
            let error = if run.external {
                tracing::warn!(run_id = %run.id, "run handed off: no report before its deadline");
                json!({
                    "kind": "timeout",
                    "message": "the external system the run was handed to did not report \
                                a final status before the deadline",
                })
            } else if retry.on_interrupt && run.attempts < Retry::MAX_ATTEMPTS {
                tracing::warn!(run_id = %run.id, attempt = run.attempts, "run interrupted: queued again");
                self.store.requeue_run(&run.id).await?;
                self.queue.nudge();
                continue;
            } else {
                tracing::warn!(run_id = %run.id, "run interrupted: its worker stopped");
                let message = if retry.on_interrupt {
                    format!(
                        "the run was interrupted {} times: the host stopped while it was in progress",
                        run.attempts
                    )
                } else {
                    "the run was interrupted: the host stopped while it was in progress".into()
                };
                json!({ "kind": "interrupted", "message": message })
            };
            let now = portico_store::now();
            run.status = RunStatus::Failure;
            run.error = Some(error);
            run.updated_at = now;
            run.ended_at = Some(now);
            self.record(&run, None).await?;
        }
        Ok(())
    }

    async fn execute(
        &self,
        mut run: RunRecord,
        payload: Option<Payload>,
        worker: Option<OwnedSemaphorePermit>,
        cancel: CancellationToken,
    ) {
        let payload = match payload {
            Some(payload) => Ok(payload),
            None => Payload::open(self.store.as_ref(), &run.payload)
                .await
                .map_err(|e| e.to_string()),
        };
        let action = payload.as_ref().ok().map(|p| p.action.clone());
        crate::metrics::run_started(&run.action);
        self.emit(self.events(&run, action.as_deref(), false)).await;
        let started = match payload {
            Ok(payload) => self.execute_inner(&mut run, payload, cancel).await,
            Err(message) => Err(message),
        };
        // The plugin has returned: its worker may take the next run while the end is written
        // (worth a claim only if runs wait for one).
        drop(worker);
        self.queue.worker_freed();
        let (mut hand_off, mut lines, mut events) = (None, Vec::new(), None);
        match started {
            Ok((deadline, ran)) => {
                hand_off = deadline;
                lines = ran.take_pending();
                events = Some(ran);
            }
            Err(message) => {
                tracing::error!(run_id = %run.id, "run could not start: {message}");
                let now = portico_store::now();
                run.status = RunStatus::Failure;
                run.error = Some(json!({ "kind": "internal", "message": message }));
                run.updated_at = now;
                run.ended_at = Some(now);
            }
        }
        // The last log lines and the end in one commit; if an external system took some of
        // the lines' numbers meanwhile, the lines are renumbered and written on their own.
        // The store does not write the payload back: do not copy it there.
        let payload = std::mem::take(&mut run.payload);
        let published = match hand_off {
            None => self.events(&run, action.as_deref(), false),
            Some(_) => Vec::new(),
        };
        let wake = !published.is_empty();
        let finish = self
            .store
            .finish_run(&run, lines.clone(), published.clone());
        let mut ended = crate::metrics::store("finish_run", finish).await;
        if let (Err(StoreError::Conflict(_)), Some(events)) = (&ended, &events) {
            if let Err(e) = events.append(self.store.as_ref(), lines).await {
                tracing::error!(run_id = %run.id, "cannot write run logs: {e}");
            }
            ended = self.store.update_run_with(&run, None, published).await;
        }
        run.payload = payload;
        match ended {
            Ok(true) => {
                crate::metrics::run_ended(&run);
                if wake {
                    self.outbox.notify_one();
                }
            }
            Ok(false) => {}
            Err(e) => tracing::error!(run_id = %run.id, "cannot record the run's end: {e}"),
        }
        if let Some(deadline) = hand_off
            && let Err(e) = self
                .store
                .hand_off_run(&run.id, &self.worker, deadline)
                .await
        {
            tracing::error!(run_id = %run.id, "cannot hand the run off: {e}");
        }
    }

    /// Runs the plugin and fills in `run`; answers the hand-off deadline when the plugin handed
    /// the run to an external system.
    async fn execute_inner(
        &self,
        run: &mut RunRecord,
        mut payload: Payload,
        cancel: CancellationToken,
    ) -> Result<(Option<chrono::DateTime<chrono::Utc>>, Arc<StoreEvents>), String> {
        let secrets = self.open_secrets(&mut payload, &run.id)?;
        let plugin = self.plugin(&payload.action).await?;
        let method = &payload.action.invocation_method;
        let grants = self
            .runtime
            .grants(&method.capabilities, method.limits)
            .map_err(|e| format!("the action's grant is no longer valid: {e}"))?;

        let events = Arc::new(StoreEvents {
            run_id: run.id.clone(),
            secrets,
            settings: self.config.clone(),
            state: Mutex::default(),
            flush_soon: Notify::new(),
            lines_waiting: Notify::new(),
        });
        let job = RunJob {
            request: payload.request,
            grants: Arc::new(grants),
            catalog: Arc::new(RunCatalog::new(self.catalog.clone())),
            events: events.clone(),
            cancel,
        };
        // Events are written every 200 ms while the plugin runs (most runs end before), log
        // lines within LIVE_LINES of the first one waiting (so they reach event streams on
        // every replica soon), or sooner when many wait; the plugin is paused while they are
        // written.
        let mut progress_run: Option<RunRecord> = None;
        let began = std::time::Instant::now();
        let running = self.runtime.run(&plugin, job);
        tokio::pin!(running);
        let mut lines_due: Option<tokio::time::Instant> = None;
        let report = loop {
            tokio::select! {
                report = &mut running => break report,
                () = tokio::time::sleep(Duration::from_millis(200)) => {}
                () = events.flush_soon.notified() => {}
                () = events.lines_waiting.notified(), if lines_due.is_none() => {
                    lines_due = Some(tokio::time::Instant::now() + LIVE_LINES);
                    continue;
                }
                () = tokio::time::sleep_until(lines_due.unwrap_or_else(tokio::time::Instant::now)),
                    if lines_due.is_some() => {}
            }
            lines_due = None;
            let progress = progress_run.get_or_insert_with(|| RunRecord {
                payload: JsonText::default(),
                ..run.clone()
            });
            events.flush(self.store.as_ref(), progress).await;
        };
        crate::metrics::run_duration(&run.action, began.elapsed());

        let now = portico_store::now();
        run.updated_at = now;
        run.ended_at = Some(now);
        run.progress = events.progress().or(run.progress.take());
        run.affected_entities =
            serde_json::to_value(&report.affected_entities).unwrap_or(json!([]));
        let mut hand_off = None;
        match report.result {
            Ok(outcome) => {
                if events.handed_off() {
                    let wait = method
                        .capabilities
                        .hand_off
                        .map_or(0, |g| g.timeout_seconds);
                    hand_off = Some(now + chrono::Duration::seconds(wait.into()));
                    run.ended_at = None;
                    run.status_label = Some("Waiting for the external system's report".into());
                } else {
                    run.status = RunStatus::Success;
                }
                run.summary = outcome.summary.map(|s| events.redact(&s));
                run.link = outcome
                    .links
                    .iter()
                    .map(|l| json!({ "title": events.redact(&l.title), "url": events.redact(&l.url) }))
                    .collect();
                run.output = outcome.output.map(|mut o| {
                    events.redact_json(&mut o);
                    o
                });
            }
            Err(failure) => {
                run.status = if failure.kind == portico_runtime::FailureKind::Cancelled {
                    RunStatus::Cancelled
                } else {
                    RunStatus::Failure
                };
                run.link = events.links();
                let message = events.redact(&failure.message);
                run.error = Some(json!({ "kind": failure.kind, "message": message }));
            }
        }
        Ok((hand_off, events))
    }

    async fn secret_values(&self, run: &RunRecord) -> SecretValues {
        Payload::open(self.store.as_ref(), &run.payload)
            .await
            .ok()
            .and_then(|mut payload| self.open_secrets(&mut payload, &run.id).ok())
            .unwrap_or_default()
    }

    /// Puts the run's secret inputs back into its request; answers their values, to redact.
    fn open_secrets(&self, payload: &mut Payload, run_id: &str) -> Result<SecretValues, String> {
        let Some(sealed) = payload.sealed.take() else {
            return Ok(SecretValues::default());
        };
        let Some(Value::Object(secrets)) = self.config.key.open(&sealed, run_id) else {
            return Err("the run's secret inputs cannot be decrypted: \
                        the host key is not the one they were sealed with"
                .into());
        };
        let mut values = Vec::new();
        for (name, value) in secrets {
            let text = match &value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if text.len() >= MIN_REDACTED_LEN {
                values.push(text);
            }
            if let Some(inputs) = payload.request.inputs.as_object_mut() {
                inputs.insert(name, value);
            }
        }
        Ok(SecretValues(values))
    }

    /// The plugin version the action names: `name@sha256:...`, or the newest of `name`.
    async fn plugin(
        &self,
        action: &ActionDefinition,
    ) -> Result<Arc<portico_runtime::Plugin>, String> {
        let name = action.plugin_name().to_owned();
        let wanted = action
            .invocation_method
            .plugin
            .split_once('@')
            .map(|(_, d)| d.to_owned());
        let versions = match self.plugins.get(&()) {
            Some(versions) => versions,
            None => {
                let listed = self.store.list_plugins().await.map_err(|e| e.to_string())?;
                let listed = Arc::new(listed);
                self.plugins.put((), listed.clone());
                listed
            }
        };
        let version = versions
            .iter()
            .find(|v| v.name == name && wanted.as_deref().is_none_or(|d| d == v.digest))
            .ok_or_else(|| {
                format!(
                    "plugin `{}` is no longer available",
                    action.invocation_method.plugin
                )
            })?;
        if let Some(loaded) = self.runtime.loaded(&version.digest) {
            return Ok(loaded);
        }
        let bytes = self
            .store
            .plugin_bytes(&version.name, &version.digest)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("plugin `{name}` has no stored bytes"))?;
        let runtime = self.runtime.clone();
        tokio::task::spawn_blocking(move || runtime.load_plugin(&bytes))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }
}

/// How often the worker loop counts the runs waiting, for the queue-depth gauge.
const QUEUE_DEPTH_EVERY: Duration = Duration::from_secs(5);

/// How often running runs' leases are renewed, at most; it also bounds how long a plugin whose
/// run was cancelled through another replica keeps running while the store's change feed,
/// which stops it at once ([`wakeups`]), is down.
const HEARTBEAT: Duration = Duration::from_millis(500);

/// Secret values shorter than this are not searched for in logs: redacting every `a` or `42`
/// would garble the log without protecting anything.
const MIN_REDACTED_LEN: usize = 4;

/// Collects a run's events in memory; the runner writes them out in batches.
struct StoreEvents {
    run_id: String,
    /// Secret input values, replaced by `[REDACTED]` wherever the plugin writes them.
    secrets: SecretValues,
    /// The public URL and key a hand-off is made with.
    settings: Arc<RunnerConfig>,
    state: Mutex<EventState>,
    /// Wakes the writer before its 200 ms tick when many lines wait.
    flush_soon: Notify,
    /// Wakes the writer when a line waits where none did: it writes within [`LIVE_LINES`].
    lines_waiting: Notify,
}

/// How long a log line waits, at most, for others to be written with it while the plugin runs:
/// short enough that a line reaches a live stream on any replica within tens of milliseconds,
/// long enough that a chatty plugin costs at most one write per run every 10 ms (both stores
/// commit many runs' writes together). A run that ends sooner writes its lines with its end,
/// in one commit.
const LIVE_LINES: Duration = Duration::from_millis(10);

/// Log lines waiting for the next write, at most: a plugin that logs faster than the store
/// writes loses lines (counted, and said in the log) instead of growing the host's memory.
const MAX_PENDING_LINES: usize = 16_384;
/// Lines waiting at which the writer is woken before its tick.
const FLUSH_SOON_LINES: usize = 2_048;
/// The same bound in bytes of text.
const MAX_PENDING_BYTES: usize = 4 << 20;

#[derive(Default)]
struct EventState {
    next_seq: i64,
    pending: Vec<RunLogLine>,
    pending_bytes: usize,
    /// Lines dropped because `pending` was full, not yet reported.
    overflowed: u64,
    progress: Option<Value>,
    progress_dirty: bool,
    links: Vec<Value>,
    handed_off: bool,
}

/// The values of a run's secret inputs (`encryption`), replaced by `[REDACTED]` in everything
/// the run shows: logs, summary, output, failure, links, progress and status labels.
#[derive(Clone, Debug, Default)]
pub struct SecretValues(Vec<String>);

impl SecretValues {
    /// `text` with every secret value replaced.
    pub fn redact(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for secret in &self.0 {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), "[REDACTED]");
            }
        }
        text
    }

    /// Redacts every string (and object key) in a JSON value.
    pub fn redact_json(&self, value: &mut Value) {
        if self.0.is_empty() {
            return;
        }
        match value {
            Value::String(s) => *s = self.redact(s),
            Value::Array(items) => items.iter_mut().for_each(|v| self.redact_json(v)),
            Value::Object(map) => {
                let entries = std::mem::take(map);
                for (key, mut v) in entries {
                    self.redact_json(&mut v);
                    map.insert(self.redact(&key), v);
                }
            }
            _ => {}
        }
    }
}

impl StoreEvents {
    fn redact(&self, text: &str) -> String {
        self.secrets.redact(text)
    }

    fn redact_json(&self, value: &mut Value) {
        self.secrets.redact_json(value);
    }

    /// The log lines not written yet, taken out of the queue (with a line saying how many were
    /// dropped because the queue was full).
    fn take_pending(&self) -> Vec<RunLogLine> {
        let mut state = self.lock();
        if state.overflowed > 0 {
            let dropped = std::mem::take(&mut state.overflowed);
            state.next_seq += 1;
            let line = RunLogLine {
                run_id: self.run_id.clone(),
                seq: state.next_seq,
                at: portico_store::now(),
                level: "WARN".into(),
                message: format!(
                    "{dropped} log lines dropped: the plugin wrote them faster than the host \
                     could store them (at most {MAX_PENDING_LINES} lines or {MAX_PENDING_BYTES} \
                     bytes wait at once)"
                ),
            };
            state.pending.push(line);
        }
        state.pending_bytes = 0;
        std::mem::take(&mut state.pending)
    }

    fn handed_off(&self) -> bool {
        self.lock().handed_off
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, EventState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn progress(&self) -> Option<Value> {
        self.lock().progress.clone()
    }

    fn links(&self) -> Vec<Value> {
        self.lock().links.clone()
    }

    /// Appends `lines`; when an external system appended lines meanwhile (their numbers are
    /// taken), renumbers them after the last stored line and tries once more.
    async fn append(
        &self,
        store: &dyn Store,
        mut lines: Vec<RunLogLine>,
    ) -> portico_store::Result<()> {
        match crate::metrics::store("append_run_logs", store.append_run_logs(lines.clone())).await {
            Err(portico_store::StoreError::Conflict(_)) => {
                let last = store.last_log_seq(&self.run_id).await?;
                for (i, line) in lines.iter_mut().enumerate() {
                    line.seq = last + 1 + i as i64;
                }
                {
                    let mut state = self.lock();
                    state.next_seq = state.next_seq.max(last + lines.len() as i64);
                }
                store.append_run_logs(lines).await
            }
            other => other,
        }
    }

    /// Writes queued log lines, and the progress if it changed.
    async fn flush(&self, store: &dyn Store, run: &mut RunRecord) {
        let lines = self.take_pending();
        let progress = {
            let mut state = self.lock();
            std::mem::take(&mut state.progress_dirty).then(|| state.progress.clone())
        };
        if !lines.is_empty()
            && let Err(e) = self.append(store, lines).await
        {
            tracing::error!(run_id = %self.run_id, "cannot write run logs: {e}");
        }
        if let Some(progress) = progress {
            run.progress = progress;
            run.updated_at = portico_store::now();
            if let Err(e) = crate::metrics::store("update_run", store.update_run(run, None)).await {
                tracing::error!(run_id = %self.run_id, "cannot write run progress: {e}");
            }
        }
    }
}

impl RunEvents for StoreEvents {
    fn log(&self, level: LogLevel, message: &str) {
        let mut state = self.lock();
        if state.pending.len() >= MAX_PENDING_LINES
            || state.pending_bytes + message.len() > MAX_PENDING_BYTES
        {
            state.overflowed += 1;
            return;
        }
        state.pending_bytes += message.len();
        if state.pending.len() + 1 == FLUSH_SOON_LINES {
            self.flush_soon.notify_one();
        }
        if state.pending.is_empty() {
            self.lines_waiting.notify_one();
        }
        state.next_seq += 1;
        let line = RunLogLine {
            run_id: self.run_id.clone(),
            seq: state.next_seq,
            at: portico_store::now(),
            level: format!("{level:?}").to_uppercase(),
            message: self.redact(message),
        };
        state.pending.push(line);
    }

    fn progress(&self, percent: Option<u8>, label: Option<&str>) {
        let mut state = self.lock();
        let mut value = state.progress.clone().unwrap_or_else(|| json!({}));
        if let Some(p) = percent {
            value["percent"] = json!(p);
        }
        if let Some(l) = label {
            value["label"] = json!(self.redact(l));
        }
        state.progress = Some(value);
        state.progress_dirty = true;
    }

    fn link(&self, link: &Link) {
        let link = json!({ "title": self.redact(&link.title), "url": self.redact(&link.url) });
        self.lock().links.push(link);
    }

    fn hand_off(&self) -> Result<HandOff, String> {
        self.lock().handed_off = true;
        Ok(HandOff {
            url: format!(
                "{}/v1/actions/runs/{}",
                self.settings.public_url.trim_end_matches('/'),
                self.run_id
            ),
            token: self.settings.key.run_token(&self.run_id),
        })
    }
}
