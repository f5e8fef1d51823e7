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

/// The embedded default's examples: blueprints `team`, `service` and `environment`, and actions
/// wired to the example plugins (when those plugins are loaded). Idempotent: anything that
/// exists is left alone, so an operator's changes survive restarts.
pub async fn seed_examples(state: &AppState) -> Result<Vec<String>, String> {
    use portico_catalog::{Actor, BlueprintInput};
    use serde_json::json;
    let actor = Actor {
        identifier: "portico".into(),
        admin: true,
        teams: Vec::new(),
        origin: "examples".into(),
        run_id: None,
    };
    let mut created = Vec::new();
    let blueprints = [
        json!({ "identifier": "team", "title": "Team", "icon": "Team" }),
        json!({ "identifier": "service", "title": "Service", "icon": "Microservice",
            "schema": { "properties": {
                "language": { "type": "string", "enum": ["go", "rust", "python", "typescript"] },
                "description": { "type": "string" },
                "repository": { "type": "string", "format": "url" },
                "replicas": { "type": "number", "minimum": 0 } } },
            "relations": { "owner": { "target": "team", "title": "Owner" } } }),
        json!({ "identifier": "environment", "title": "Environment", "icon": "Environment",
            "schema": { "properties": {
                "kind": { "type": "string", "enum": ["production", "staging", "development"] },
                "expires": { "type": "string", "format": "timer" } } } }),
    ];
    for bp in blueprints {
        let input: BlueprintInput = serde_json::from_value(bp).map_err(|e| e.to_string())?;
        let id = input.identifier.clone();
        if state
            .store
            .get_blueprint(&id)
            .await
            .map_err(|e| e.to_string())?
            .is_none()
        {
            state
                .catalog
                .create_blueprint(&actor, input)
                .await
                .map_err(|e| format!("blueprint {id}: {e}"))?;
            created.push(format!("blueprint {id}"));
        }
    }

    let teams = state.store.list_teams().await.map_err(|e| e.to_string())?;
    if !teams.iter().any(|t| t.name == "platform") {
        let team = portico_store::Team {
            name: "platform".into(),
            description: Some("Approves long-lived dev environments".into()),
            created_at: portico_store::now(),
        };
        let audit = AuditRecord::success("portico", "examples", "CREATE", "team", "platform");
        state
            .store
            .create_team(team, audit)
            .await
            .map_err(|e| format!("team platform: {e}"))?;
        created.push("team platform".into());
    }

    let plugins: Vec<(String, String)> = state
        .store
        .list_plugins()
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|p| (p.name, p.digest))
        .collect();
    let actions = [
        json!({ "identifier": "scaffold_service", "title": "Scaffold a service", "icon": "Microservice",
            "trigger": { "type": "self-service", "operation": "CREATE", "blueprintIdentifier": "service",
                "userInputs": { "properties": {
                    "name": { "type": "string", "title": "Name", "pattern": "^[a-z][a-z0-9-]{1,62}$" },
                    "language": { "type": "string", "enum": ["go", "rust", "python", "typescript"], "default": "go" },
                    "description": { "type": "string", "format": "multi-line" } },
                  "required": ["name"], "order": ["name", "language", "description"] } },
            "invocationMethod": { "type": "WASM", "plugin": "scaffold-service", "config": { "org": "acme", "paceMs": 700 },
                "capabilities": { "catalog": { "write": ["service"] } },
                "limits": { "timeoutSeconds": 30, "memoryMiB": 64 } } }),
        json!({ "identifier": "change_replicas", "title": "Change replicas", "icon": "Scale",
            "trigger": { "type": "self-service", "operation": "DAY-2", "blueprintIdentifier": "service",
                "userInputs": { "properties": {
                    "replicas": { "type": "number", "title": "Replicas", "minimum": 0, "maximum": 100 } },
                  "required": ["replicas"] } },
            "invocationMethod": { "type": "WASM", "plugin": "change-replicas",
                "capabilities": { "catalog": { "write": ["service"] } } } }),
        json!({ "identifier": "call_webhook", "title": "Call the deploy webhook", "icon": "Webhook",
            "trigger": { "type": "self-service", "operation": "CREATE",
                "userInputs": { "properties": { "tag": { "type": "string", "title": "Image tag" } }, "required": ["tag"] } },
            "invocationMethod": { "type": "WASM", "plugin": "webhook",
                "config": { "url": "http://127.0.0.1:8088/deploy" },
                "capabilities": { "http": [ { "url": "http://127.0.0.1:8088",
                    "headers": { "Authorization": "Bearer {{ .secrets.webhook_token }}" } } ] } } }),
        // Every guardrail at once: approval by the platform team (or an admin) for TTLs over
        // 24 hours, at most 3 live environments per team, a TTL on what the run creates, and
        // the automation below that tears an environment down when its TTL passes.
        json!({ "identifier": "provision_dev_environment", "title": "Provision a temporary dev environment",
            "icon": "Environment",
            "trigger": { "type": "self-service", "operation": "CREATE", "blueprintIdentifier": "environment",
                "userInputs": { "properties": {
                    "name": { "type": "string", "title": "Name", "pattern": "^[a-z][a-z0-9-]{1,62}$" },
                    "ttl": { "type": "string", "title": "Time to live", "pattern": "^[0-9]+h$", "default": "8h",
                        "description": "e.g. 8h; over 24h needs the platform team's approval" } },
                  "required": ["name"] } },
            "invocationMethod": { "type": "WASM", "plugin": "dev-environment",
                "capabilities": { "catalog": { "write": ["environment"] } } },
            "requiredApproval": { "type": "ANY", "when": "(.inputs.ttl | rtrimstr(\"h\") | tonumber) > 24" },
            "approvalTimeout": "24h",
            "quotas": { "maxActiveEntitiesPerTeam": 3 },
            "permissions": { "approve": { "roles": ["admin"], "teams": ["platform"] } } }),
        json!({ "identifier": "teardown_expired_environment", "title": "Tear down an expired environment",
            "icon": "Environment",
            "trigger": { "type": "automation",
                "event": { "type": "TIMER_PROPERTY_EXPIRED", "blueprintIdentifier": "environment",
                    "propertyIdentifier": "expires" } },
            "invocationMethod": { "type": "WASM", "plugin": "teardown",
                "capabilities": { "catalog": { "write": ["environment"] } } } }),
    ];
    for action in actions {
        let id = action["identifier"].as_str().unwrap_or_default().to_owned();
        let plugin = action["invocationMethod"]["plugin"]
            .as_str()
            .unwrap_or_default();
        if !plugins.iter().any(|(name, _)| name == plugin)
            || state
                .store
                .get_action(&id)
                .await
                .map_err(|e| e.to_string())?
                .is_some()
        {
            continue;
        }
        let registry = portico_runs::registry::ActionRegistry {
            store: state.store.as_ref(),
            runtime: &state.runtime,
            intake: &state.intake,
            runner: &state.runner,
        };
        // An example the host's settings refuse (e.g. a secret the operator has not allowed
        // it) is left out with a warning; the host still starts.
        let checked = match registry.check(&action).await {
            Ok(checked) => checked,
            Err(e @ portico_runs::registry::RegistryError::Invalid(_)) => {
                tracing::warn!("example action {id} not created: {e:?}");
                continue;
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
        created.push(format!("action {id}"));
    }
    Ok(created)
}
