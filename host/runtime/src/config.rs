//! How the runtime is sized: set once per process by the operator.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Sizes the engine's pooling allocator and says where the runtime keeps files.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Runs that execute at once. The pooling allocator reserves this many instance slots up
    /// front; further runs wait for a free slot instead of failing.
    pub max_concurrent_runs: u32,
    /// The largest `memoryMiB` an action may ask for; each pooled memory slot reserves this much
    /// address space (not resident memory).
    pub max_memory_mib: u32,
    /// Compiled plugins, keyed by the engine's compatibility hash and the component's digest.
    pub cache_dir: PathBuf,
    /// Parent of the per-run `/scratch` folders.
    pub scratch_dir: PathBuf,
    /// How often the epoch ticker runs; timeouts and cancellation are checked this often.
    pub epoch_tick: Duration,
}

impl RuntimeConfig {
    /// The defaults, keeping files under `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            max_concurrent_runs: 1024,
            max_memory_mib: 256,
            cache_dir: data_dir.join("cache"),
            scratch_dir: data_dir.join("scratch"),
            epoch_tick: Duration::from_millis(10),
        }
    }
}
