//! How the runtime is sized: set once per process by the operator.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Sizes the engine's pooling allocator and says where the runtime keeps files.
#[derive(Clone)]
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
    /// Authenticates the compiled plugins in `cache_dir` (HMAC-SHA256): an artifact is native
    /// code, so one this key did not write is recompiled, never loaded. The server derives it
    /// from the host key; the default is random, so a cache outlives the process only when the
    /// key is set.
    pub artifact_key: [u8; 32],
}

impl std::fmt::Debug for RuntimeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeConfig")
            .field("max_concurrent_runs", &self.max_concurrent_runs)
            .field("max_memory_mib", &self.max_memory_mib)
            .field("cache_dir", &self.cache_dir)
            .field("scratch_dir", &self.scratch_dir)
            .field("epoch_tick", &self.epoch_tick)
            .field("artifact_key", &"..")
            .finish()
    }
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
            artifact_key: random_key(),
        }
    }
}

fn random_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).unwrap_or_else(|e| panic!("the OS random source failed: {e}"));
    key
}
