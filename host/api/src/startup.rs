//! What `portico serve` does before it listens, kept here so tests can do the same.

use crate::AppState;
use portico_store::{AuditRecord, PluginVersion};
use std::path::Path;

/// The fewest characters `PORTICO_ADMIN_TOKEN` may have: a token an operator chose must be as
/// hard to guess as the generated ones are (those have 43 random characters).
pub const MIN_ADMIN_TOKEN_CHARS: usize = 32;

/// Refuses an admin token (`PORTICO_ADMIN_TOKEN`) shorter than [`MIN_ADMIN_TOKEN_CHARS`], saying
/// how to make one. `portico serve` checks it before it opens the database.
pub fn check_admin_token(token: &str) -> Result<(), String> {
    let chars = token.chars().count();
    if chars < MIN_ADMIN_TOKEN_CHARS {
        return Err(format!(
            "PORTICO_ADMIN_TOKEN has {chars} characters; it must have at least \
             {MIN_ADMIN_TOKEN_CHARS} (e.g. `openssl rand -base64 32`), or leave it unset and \
             Portico generates one"
        ));
    }
    Ok(())
}

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
        let mut audit = AuditRecord::success("portico", "plugins-dir", "UPLOAD", "plugin", &name);
        audit.after = Some(serde_json::to_value(&version).unwrap_or_default());
        let added = state
            .store
            .put_plugin(version, bytes, audit)
            .await
            .map_err(|e| e.to_string())?;
        state.runner.plugins_changed();
        loaded.push(LoadedPlugin {
            name,
            digest: plugin.digest().to_owned(),
            added,
        });
    }
    Ok(loaded)
}

/// The embedded default's examples (`examples/*.yaml`, built in): blueprints `team`, `service`
/// and `environment`, the `platform` team, and actions wired to the example plugins (when those
/// plugins are loaded). Idempotent: anything that exists is left alone, so an operator's changes
/// survive restarts.
pub async fn seed_examples(state: &AppState) -> Result<Vec<String>, String> {
    use portico_catalog::{Actor, BlueprintInput};
    use portico_manifest::Kind;
    let actor = Actor {
        identifier: "portico".into(),
        admin: true,
        teams: Vec::new(),
        origin: "examples".into(),
        run_id: None,
    };
    let plugins: Vec<String> = state
        .store
        .list_plugins()
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|p| p.name)
        .collect();
    let teams = state.store.list_teams().await.map_err(|e| e.to_string())?;
    let mut created = Vec::new();
    for doc in portico_manifest::examples() {
        let id = doc.id.clone();
        let exists = match doc.kind {
            Kind::Blueprint => state.store.get_blueprint(&id).await.map(|b| b.is_some()),
            Kind::Action => state.store.get_action(&id).await.map(|a| a.is_some()),
            Kind::Team => Ok(teams.iter().any(|t| t.name == id)),
            Kind::Plugin => Ok(true),
        }
        .map_err(|e| e.to_string())?;
        if exists {
            continue;
        }
        match doc.kind {
            Kind::Blueprint => {
                let input: BlueprintInput =
                    serde_json::from_value(doc.body).map_err(|e| format!("{}: {e}", doc.source))?;
                state
                    .catalog
                    .create_blueprint(&actor, input)
                    .await
                    .map_err(|e| format!("blueprint {id}: {e}"))?;
            }
            Kind::Team => {
                let team = portico_store::Team {
                    name: id.clone(),
                    description: doc.body["description"].as_str().map(str::to_owned),
                    created_at: portico_store::now(),
                };
                let audit = AuditRecord::success("portico", "examples", "CREATE", "team", &id);
                state
                    .store
                    .create_team(team, audit)
                    .await
                    .map_err(|e| format!("team {id}: {e}"))?;
            }
            Kind::Action => {
                let plugin = doc.body["invocationMethod"]["plugin"]
                    .as_str()
                    .unwrap_or_default();
                if !plugins.iter().any(|name| name == plugin) {
                    continue;
                }
                if !seed_action(state, &id, &doc.body).await? {
                    continue;
                }
            }
            Kind::Plugin => continue,
        }
        created.push(format!("{} {id}", doc.kind));
    }
    Ok(created)
}

/// Creates one example action; `false` when the host's settings refuse it (e.g. a secret the
/// operator has not allowed it), which is logged and does not stop the host.
async fn seed_action(
    state: &AppState,
    id: &str,
    action: &serde_json::Value,
) -> Result<bool, String> {
    let registry = portico_runs::registry::ActionRegistry {
        store: state.store.as_ref(),
        runtime: &state.runtime,
        intake: &state.intake,
        runner: &state.runner,
    };
    let checked = match registry.check(action).await {
        Ok(checked) => checked,
        Err(e @ portico_runs::registry::RegistryError::Invalid(_)) => {
            tracing::warn!("example action {id} not created: {e:?}");
            return Ok(false);
        }
        Err(e) => return Err(format!("example action {id}: {e}")),
    };
    let author = portico_runs::registry::Author {
        actor: "portico",
        origin: "examples",
    };
    registry
        .write(author, &checked, portico_store::Write::Create)
        .await
        .map_err(|e| format!("example action {id}: {e}"))?;
    Ok(true)
}
