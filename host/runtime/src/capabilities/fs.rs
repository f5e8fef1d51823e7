//! `filesystem: "scratch"`: a fresh, empty folder mounted at `/scratch` for one run and removed
//! when the run ends. Without the grant the plugin has no folder at all. wasmtime-wasi opens the
//! folder with cap-std, so paths cannot leave it (`..`, absolute paths and symlinks pointing out
//! are refused).

use std::path::Path;
use tempfile::TempDir;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

/// Where the plugin sees its scratch folder.
pub(crate) const GUEST_PATH: &str = "/scratch";

/// Creates the run's folder under `root` and preopens it; the folder is removed when the
/// returned guard drops.
pub(crate) fn mount_scratch(builder: &mut WasiCtxBuilder, root: &Path) -> std::io::Result<TempDir> {
    std::fs::create_dir_all(root)?;
    let dir = tempfile::Builder::new().prefix("run-").tempdir_in(root)?;
    builder
        .preopened_dir(dir.path(), GUEST_PATH, FsPerms::ReadWrite)
        .map_err(|e| std::io::Error::other(format!("{e:#}")))?;
    Ok(dir)
}
