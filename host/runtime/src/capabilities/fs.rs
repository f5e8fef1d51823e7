//! `filesystem: "scratch"`: a fresh, empty folder mounted at `/scratch` for one run and removed
//! when the run ends. Without the grant the plugin has no folder at all. wasmtime-wasi opens the
//! folder with cap-std, so paths cannot leave it (`..`, absolute paths and symlinks pointing out
//! are refused).
//!
//! The folder has a quota (`limits.scratchMiB`, `limits.scratchFiles`, `limits.openFiles`):
//! [`quota`] counts, [`host`] enforces it on every `wasi:filesystem` call that grows the folder.

pub(crate) mod host;
pub(crate) mod quota;

use crate::capabilities::sink::LogSink;
use crate::limits::Limits;
use quota::{Quota, QuotaLimits};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;
use tempfile::TempDir;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

pub(crate) use host::{ScratchFs, ScratchView};

/// The filesystem grant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Filesystem {
    /// A fresh per-run folder mounted at `/scratch`.
    Scratch,
}

/// Where the plugin sees its scratch folder.
pub(crate) const GUEST_PATH: &str = "/scratch";

/// A run's scratch folder: removed when dropped.
pub(crate) struct Scratch {
    /// The folder; removed when this drops.
    _dir: TempDir,
    /// The folder's quota, shared with the run's filesystem calls and write streams.
    pub(crate) quota: Arc<Quota>,
}

/// Creates the run's folder under `root` and preopens it, with a quota from `limits`; the
/// folder is removed when the returned guard drops.
pub(crate) fn mount_scratch(
    builder: &mut WasiCtxBuilder,
    root: &Path,
    limits: &Limits,
    log: Arc<LogSink>,
) -> std::io::Result<Scratch> {
    std::fs::create_dir_all(root)?;
    let dir = tempfile::Builder::new().prefix("run-").tempdir_in(root)?;
    builder
        .preopened_dir(dir.path(), GUEST_PATH, FsPerms::ReadWrite)
        .map_err(|e| std::io::Error::other(format!("{e:#}")))?;
    let limits = QuotaLimits {
        bytes: u64::from(limits.scratch_mib) << 20,
        entries: limits.scratch_files.into(),
        open: limits.open_files,
    };
    Ok(Scratch {
        quota: Arc::new(Quota::new(dir.path().to_owned(), limits, Some(log))),
        _dir: dir,
    })
}
