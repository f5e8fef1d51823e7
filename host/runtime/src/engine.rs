//! The process-wide runtime: one wasmtime `Engine` (pooling allocator, epoch ticker), one
//! `Linker`, the loaded plugins and the slots that bound concurrent runs.

use crate::capabilities::http::check_secret_access;
use crate::capabilities::secrets::SecretsProvider;
use crate::config::RuntimeConfig;
use crate::grant::{Capabilities, Grants};
use crate::limiter::MAX_TABLE_ELEMENTS;
use crate::limits::{GrantError, Limits};
use crate::plugin::{Plugin, PluginError, Plugins};
use crate::run::{self, RunHost, RunJob, RunReport};
use crate::state;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use tokio::sync::Semaphore;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Why the runtime could not start.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The engine rejected its configuration (e.g. the pool does not fit in memory).
    #[error("cannot configure the WebAssembly engine: {0}")]
    Engine(String),
    /// The plugin cache folder could not be created.
    #[error("cannot create the plugin cache folder {path}: {source}")]
    Cache {
        /// The folder.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Runs plugins. Cheap to clone; clones share the engine, the plugins and the run slots.
#[derive(Clone)]
pub struct Runtime {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) engine: Engine,
    config: RuntimeConfig,
    secrets: Arc<dyn SecretsProvider>,
    plugins: Plugins,
    slots: Semaphore,
}

impl Runtime {
    /// Builds the engine and starts its epoch ticker (which stops when the last clone drops).
    pub fn new(
        config: RuntimeConfig,
        secrets: Arc<dyn SecretsProvider>,
    ) -> Result<Self, RuntimeError> {
        let engine = Engine::new(&engine_config(&config))
            .map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        let linker = state::linker(&engine).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;

        let mut hasher = std::hash::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let artifacts = config.cache_dir.join(format!("{:016x}", hasher.finish()));
        std::fs::create_dir_all(&artifacts).map_err(|source| RuntimeError::Cache {
            path: artifacts.clone(),
            source,
        })?;

        spawn_epoch_ticker(&engine, config.epoch_tick);
        Ok(Self {
            inner: Arc::new(Inner {
                plugins: Plugins::new(engine.clone(), linker, artifacts, config.artifact_key),
                engine,
                slots: Semaphore::new(config.max_concurrent_runs as usize),
                config,
                secrets,
            }),
        })
    }

    /// The configuration the runtime was built with.
    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    /// Checks an action's capabilities and limits against this runtime's bounds.
    pub fn grants(
        &self,
        capabilities: &Capabilities,
        limits: Limits,
    ) -> Result<Grants, GrantError> {
        Grants::new(capabilities, limits, &self.inner.config)
    }

    /// Checks that every secret an action's checked grant names may be used by that action
    /// (and sent to that origin), as the operator allows it. A secret not configured yet is let
    /// through: its runs are denied naming it until it is.
    pub fn check_secret_access(&self, action: &str, grants: &Grants) -> Result<(), GrantError> {
        check_secret_access(&grants.http, &*self.inner.secrets, action)
    }

    /// Checks a component and prepares it to run: compiled once per digest (or loaded from the
    /// disk cache), linked once. CPU-heavy on first sight of a digest: call it off the request
    /// path (`spawn_blocking`).
    pub fn load_plugin(&self, bytes: &[u8]) -> Result<Arc<Plugin>, PluginError> {
        self.inner.plugins.load(bytes)
    }

    /// A plugin this process already loaded, by digest (`sha256:<hex>`): lets callers skip
    /// fetching and hashing the bytes again for every run.
    pub fn loaded(&self, digest: &str) -> Option<Arc<Plugin>> {
        self.inner.plugins.loaded(digest)
    }

    /// Where a plugin version (`sha256:<hex>`) stands in this process: ready, compiling, failed
    /// or not loaded yet.
    pub fn plugin_status(&self, digest: &str) -> crate::PluginStatus {
        self.inner.plugins.status(digest)
    }

    /// Runs a plugin once. Waits for a free slot when `max_concurrent_runs` are executing;
    /// never panics and never fails without a report.
    pub async fn run(&self, plugin: &Plugin, job: RunJob) -> RunReport {
        // The semaphore is never closed, so acquiring only waits.
        let _slot = self.inner.slots.acquire().await;
        let host = RunHost {
            engine: &self.inner.engine,
            scratch_dir: &self.inner.config.scratch_dir,
            secrets: &self.inner.secrets,
        };
        run::execute(host, plugin, job).await
    }
}

/// Core instances one run may create: a Python component needs 15.
const CORE_INSTANCES_PER_RUN: u32 = 16;

/// The tuned pooling configuration measured in DESIGN.md ("Performance").
fn engine_config(config: &RuntimeConfig) -> Config {
    let runs = config.max_concurrent_runs.max(1);
    let max_memory = u64::from(config.max_memory_mib) << 20;
    let mut pool = PoolingAllocationConfig::new();
    // A Rust component is 3 core instances, 1 memory and 2 tables; a JavaScript one (jco) 4
    // core instances, 1 memory, 2 tables; a Python one (componentize-py, an interpreter linked
    // from 14 modules) 15 core instances, 1 memory and up to 4 tables. Every slot may hold a
    // Python run. Core instance and table slots are address space, not resident memory.
    pool.total_component_instances(runs)
        .total_core_instances(runs * CORE_INSTANCES_PER_RUN)
        .total_memories(runs * 2)
        .total_tables(runs * 4)
        .total_stacks(runs)
        .max_core_instances_per_component(CORE_INSTANCES_PER_RUN)
        .max_memories_per_component(2)
        .max_tables_per_component(8)
        .table_elements(MAX_TABLE_ELEMENTS)
        .max_memory_size(max_memory as usize)
        .linear_memory_keep_resident(2 << 20)
        .table_keep_resident(64 << 10)
        .async_stack_keep_resident(256 << 10)
        .pagemap_scan(Enabled::Auto);

    let mut engine = Config::new();
    engine
        .epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .memory_reservation(max_memory)
        .memory_guard_size(64 << 10)
        .memory_reservation_for_growth(0);
    engine
}

/// Advances the epoch every `tick` until the engine is dropped.
fn spawn_epoch_ticker(engine: &Engine, tick: std::time::Duration) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("portico-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(tick);
            }
        })
        .unwrap_or_else(|e| panic!("cannot start the epoch ticker thread: {e}"));
}
