//! Running actions. A run is committed as `PENDING` before anyone is told it exists; workers
//! claim pending runs with a lease (renewed while they run), execute them in the plugin runtime
//! and write the outcome. Logs and progress are written as they come, in batches.
//!
//! Nothing accepted is lost: a run whose worker died keeps its lease until it expires and is
//! then failed as `interrupted` (on SQLite, a single process, at once on restart).

use crate::actions::ActionDefinition;
use crate::bridge::RunCatalog;
use portico_catalog::Catalog;
use portico_runtime::{Link, LogLevel, RunEvents, RunJob, RunRequest, Runtime};
use portico_store::{RunLogLine, RunRecord, Store};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How the engine runs.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Runs executing at once in this process.
    pub workers: usize,
    /// How long a claim holds without renewal.
    pub lease: Duration,
    /// How often idle workers look for runs another replica queued.
    pub poll: Duration,
    /// Pending runs beyond which new runs are refused with 503.
    pub max_queue: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            workers: 64,
            lease: Duration::from_secs(30),
            poll: Duration::from_secs(1),
            max_queue: 10_000,
        }
    }
}

/// What a worker needs to execute a run, kept with the run (`RunRecord::payload`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Payload {
    /// The action as it was when the run was accepted.
    pub action: ActionDefinition,
    /// The request the plugin receives.
    pub request: RunRequest,
}

/// The run engine of one process. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    catalog: Arc<Catalog>,
    runtime: Runtime,
    config: EngineConfig,
    worker: String,
    wake: Notify,
    running: Mutex<HashMap<String, CancellationToken>>,
}

impl Engine {
    /// An engine over the store, catalog and runtime; call [`Engine::start`] to run workers.
    pub fn new(
        store: Arc<dyn Store>,
        catalog: Arc<Catalog>,
        runtime: Runtime,
        config: EngineConfig,
    ) -> Self {
        let worker = format!(
            "w_{}_{}",
            std::process::id(),
            portico_store::now().timestamp_millis()
        );
        Self {
            inner: Arc::new(Inner {
                store,
                catalog,
                runtime,
                config,
                worker,
                wake: Notify::new(),
                running: Mutex::default(),
            }),
        }
    }

    /// The engine's settings.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// Starts the worker loop (and the lease heartbeat) until `stop` is cancelled.
    pub fn start(&self, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
        let inner = self.inner.clone();
        tokio::spawn(async move { inner.work(stop).await })
    }

    /// Tells idle workers a run was queued.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
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

    async fn work(self: Arc<Self>, stop: CancellationToken) {
        // SQLite is one process: whatever was in progress belongs to a process that is gone.
        let orphans_now = self.store.backend() == "sqlite";
        let mut first = true;
        let mut heartbeat = tokio::time::interval(self.config.lease / 3);
        loop {
            let horizon = if first && orphans_now {
                portico_store::now() + chrono::Duration::days(36_500)
            } else {
                portico_store::now()
            };
            first = false;
            if let Err(e) = self.recover(horizon).await {
                tracing::error!("cannot recover interrupted runs: {e}");
            }
            let free = self
                .config
                .workers
                .saturating_sub(self.lock_running().len());
            if free > 0 {
                let until = portico_store::now() + self.lease();
                match self.store.claim_runs(&self.worker, free, until).await {
                    Ok(runs) => {
                        for run in runs {
                            let me = self.clone();
                            let token = CancellationToken::new();
                            self.lock_running().insert(run.id.clone(), token.clone());
                            tokio::spawn(async move {
                                let id = run.id.clone();
                                me.execute(run, token).await;
                                me.lock_running().remove(&id);
                                me.wake.notify_one();
                            });
                        }
                    }
                    Err(e) => tracing::error!("cannot claim runs: {e}"),
                }
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.wake.notified() => {}
                _ = heartbeat.tick() => self.renew().await,
                () = tokio::time::sleep(self.config.poll) => {}
            }
        }
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
        if let Err(e) = self.store.renew_leases(&self.worker, &ids, until).await {
            tracing::error!("cannot renew run leases: {e}");
        }
    }

    /// Fails runs whose worker stopped renewing their lease before `horizon`.
    async fn recover(&self, horizon: chrono::DateTime<chrono::Utc>) -> portico_store::Result<()> {
        for mut run in self.store.expired_runs(horizon).await? {
            if self.lock_running().contains_key(&run.id) {
                continue;
            }
            tracing::warn!(run_id = %run.id, "run interrupted: its worker stopped");
            let now = portico_store::now();
            run.status = "FAILURE".into();
            run.error = Some(json!({
                "kind": "interrupted",
                "message": "the run was interrupted: the host stopped while it was in progress",
            }));
            run.updated_at = now;
            run.ended_at = Some(now);
            self.store.update_run(&run, None).await?;
        }
        Ok(())
    }

    async fn execute(&self, mut run: RunRecord, cancel: CancellationToken) {
        let started = self.execute_inner(&mut run, cancel).await;
        if let Err(message) = started {
            tracing::error!(run_id = %run.id, "run could not start: {message}");
            let now = portico_store::now();
            run.status = "FAILURE".into();
            run.error = Some(json!({ "kind": "internal", "message": message }));
            run.updated_at = now;
            run.ended_at = Some(now);
        }
        if let Err(e) = self.store.update_run(&run, None).await {
            tracing::error!(run_id = %run.id, "cannot record the run's end: {e}");
        }
    }

    async fn execute_inner(
        &self,
        run: &mut RunRecord,
        cancel: CancellationToken,
    ) -> Result<(), String> {
        let payload: Payload = serde_json::from_value(run.payload.clone())
            .map_err(|e| format!("the run's stored request is unreadable: {e}"))?;
        let plugin = self.plugin(&payload.action).await?;
        let method = &payload.action.invocation_method;
        let grants = self
            .runtime
            .grants(&method.capabilities, method.limits)
            .map_err(|e| format!("the action's grant is no longer valid: {e}"))?;

        let events = Arc::new(StoreEvents::new(run.id.clone()));
        let flusher = {
            let (events, store) = (events.clone(), self.store.clone());
            let mut progress_run = run.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    events.flush(store.as_ref(), &mut progress_run).await;
                }
            })
        };
        let job = RunJob {
            request: payload.request,
            grants: Arc::new(grants),
            catalog: Arc::new(RunCatalog::new(self.catalog.clone())),
            events: events.clone(),
            cancel,
        };
        let report = self.runtime.run(&plugin, job).await;
        flusher.abort();
        events.flush(self.store.as_ref(), &mut run.clone()).await;

        let now = portico_store::now();
        run.updated_at = now;
        run.ended_at = Some(now);
        run.progress = events.progress().or(run.progress.take());
        run.affected_entities =
            serde_json::to_value(&report.affected_entities).unwrap_or(json!([]));
        match report.result {
            Ok(outcome) => {
                run.status = "SUCCESS".into();
                run.summary = outcome.summary;
                run.link = outcome
                    .links
                    .iter()
                    .map(|l| json!({ "title": l.title, "url": l.url }))
                    .collect();
                run.output = outcome.output;
            }
            Err(failure) => {
                run.status = if failure.kind == portico_runtime::FailureKind::Cancelled {
                    "CANCELLED".into()
                } else {
                    "FAILURE".into()
                };
                run.link = events.links();
                run.error = Some(json!({ "kind": failure.kind, "message": failure.message }));
            }
        }
        Ok(())
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
        let versions = self.store.list_plugins().await.map_err(|e| e.to_string())?;
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

/// Collects a run's events in memory; the engine writes them out in batches.
struct StoreEvents {
    run_id: String,
    state: Mutex<EventState>,
}

#[derive(Default)]
struct EventState {
    next_seq: i64,
    pending: Vec<RunLogLine>,
    progress: Option<Value>,
    progress_dirty: bool,
    links: Vec<Value>,
}

impl StoreEvents {
    fn new(run_id: String) -> Self {
        Self {
            run_id,
            state: Mutex::default(),
        }
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

    /// Writes queued log lines, and the progress if it changed.
    async fn flush(&self, store: &dyn Store, run: &mut RunRecord) {
        let (lines, progress) = {
            let mut state = self.lock();
            let progress =
                std::mem::take(&mut state.progress_dirty).then(|| state.progress.clone());
            (std::mem::take(&mut state.pending), progress)
        };
        if !lines.is_empty()
            && let Err(e) = store.append_run_logs(lines).await
        {
            tracing::error!(run_id = %self.run_id, "cannot write run logs: {e}");
        }
        if let Some(progress) = progress {
            run.progress = progress;
            run.updated_at = portico_store::now();
            if let Err(e) = store.update_run(run, None).await {
                tracing::error!(run_id = %self.run_id, "cannot write run progress: {e}");
            }
        }
    }
}

impl RunEvents for StoreEvents {
    fn log(&self, level: LogLevel, message: &str) {
        let mut state = self.lock();
        state.next_seq += 1;
        let line = RunLogLine {
            run_id: self.run_id.clone(),
            seq: state.next_seq,
            at: portico_store::now(),
            level: format!("{level:?}").to_uppercase(),
            message: message.to_owned(),
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
            value["label"] = json!(l);
        }
        state.progress = Some(value);
        state.progress_dirty = true;
    }

    fn link(&self, link: &Link) {
        self.lock()
            .links
            .push(json!({ "title": link.title, "url": link.url }));
    }
}
