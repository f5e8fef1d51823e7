//! What `portico serve` does before it listens, kept here so tests can do the same.

use crate::AppState;
use portico_store::{AuditRecord, AuditStatus, PluginVersion};
use std::path::Path;

/// One plugin file loaded from a folder.
#[derive(Debug, PartialEq, Eq)]
pub struct LoadedPlugin {
    /// The plugin's name: the file name without `.wasm`, `_` turned into `-`.
    pub name: String,
    /// `sha256:<hex>`.
    pub digest: String,
    /// Whether this digest was new (stored now) rather than uploaded before.
    pub added: bool,
}

/// Checks, compiles and stores every `*.wasm` in `dir` as a plugin version (a digest already
/// stored under that name is left alone). Fails on the first file that is not a valid plugin,
/// naming it.
pub async fn load_plugins_dir(state: &AppState, dir: &Path) -> Result<Vec<LoadedPlugin>, String> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
        .collect();
    files.sort();
    let mut loaded = Vec::new();
    for path in files {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().replace('_', "-"))
            .unwrap_or_default();
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let runtime = state.runtime.clone();
        let checked = bytes.clone();
        let plugin = tokio::task::spawn_blocking(move || runtime.load_plugin(&checked))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let version = PluginVersion {
            name: name.clone(),
            digest: plugin.digest().to_owned(),
            size: bytes.len() as u64,
            created_at: portico_store::now(),
            created_by: "portico".into(),
        };
        let audit = AuditRecord {
            id: 0,
            at: version.created_at,
            actor: "portico".into(),
            operation: "UPLOAD".into(),
            resource_type: "plugin".into(),
            resource_id: name.clone(),
            blueprint: None,
            run_id: None,
            before: None,
            after: Some(serde_json::to_value(&version).unwrap_or_default()),
            status: AuditStatus::Success,
            reason: None,
            origin: "plugins-dir".into(),
        };
        let added = state
            .store
            .put_plugin(version, bytes, audit)
            .await
            .map_err(|e| e.to_string())?;
        loaded.push(LoadedPlugin {
            name,
            digest: plugin.digest().to_owned(),
            added,
        });
    }
    Ok(loaded)
}
