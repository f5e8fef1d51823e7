//! `portico plugin test FILE.wasm --action action.json`: one run of a built plugin, locally, in
//! the server's sandbox.
//!
//! What the server does, this does with the same code: the action is checked by
//! `portico_runs::action_check` (as on write), its grant and limits become the runtime's
//! `Grants` through `Runtime::grants` (as the runner does), the inputs are validated by
//! `portico_runs::inputs::validate` (as on a run request) and the plugin runs in
//! `portico_runtime::Runtime`. Only the surroundings are local: an in-memory catalog loaded
//! from a fixture, secrets from `--secret`, and no users, teams, permissions, quotas or approval.

use super::{EXIT_CANCELLED, EXIT_FAILURE};
use crate::error::CliError;
use clap::Args;
use portico_runs::action_check::{self, Known};
use portico_runs::compiled::Action;
use portico_runs::inputs::{self, InputContext, InputLookup};
use portico_runtime::capabilities::secrets::SecretAccess;
use portico_runtime::{
    CallOutcome, CallTarget, CapabilityCall, CatalogStore, Entity, EntityChange, FailureKind, Link,
    LoadedFrom, LogLevel, MemoryCatalog, Operation, Plugin, RunEvents, RunJob, RunReport,
    RunRequest, Runtime, RuntimeConfig, SecretsProvider, User,
};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

/// `plugin test` arguments.
#[derive(Args)]
pub struct TestArgs {
    /// The plugin's component, e.g. target/wasm32-wasip2/release/NAME.wasm.
    file: PathBuf,
    /// The action (Port's JSON shape) whose invocationMethod grant and limits the run gets and
    /// whose userInputs the inputs are checked against.
    #[arg(long)]
    action: PathBuf,
    /// The run's inputs: a JSON object, as the `properties` of a run request [default: {}].
    #[arg(long, conflicts_with = "inputs_file")]
    inputs: Option<String>,
    /// Reads the inputs from this file (`-`: standard input).
    #[arg(long)]
    inputs_file: Option<PathBuf>,
    /// The entities the in-memory catalog starts with: `{"entities": [...]}` or a plain array of
    /// `{blueprint, identifier, title?, team?, properties?, relations?}` [default: empty].
    #[arg(long)]
    catalog: Option<PathBuf>,
    /// For a DAY-2 or DELETE action: the identifier of the entity the run acts on (of the
    /// action's blueprint, from --catalog).
    #[arg(long)]
    entity: Option<String>,
    /// A secret for the grant's `{{ .secrets.NAME }}` headers, as NAME=VALUE, or NAME to read
    /// PORTICO_SECRET_<NAME> from the environment; repeatable. Its value is never printed.
    #[arg(long = "secret", value_name = "NAME=VALUE", value_parser = secret)]
    secrets: Vec<(String, String)>,
    /// The identifier of the user the plugin is told triggered the run.
    #[arg(long, default_value = "plugin-author")]
    user: String,
}

/// Parses `--secret NAME=VALUE` (or `NAME`, read from the environment, so the value stays out
/// of the shell's history and the process list).
fn secret(text: &str) -> Result<(String, String), String> {
    let (name, value) = match text.split_once('=') {
        Some((name, value)) => (name, value.to_owned()),
        None => {
            let var = format!("PORTICO_SECRET_{}", text.to_ascii_uppercase());
            let value = std::env::var(&var)
                .map_err(|_| format!("no `=VALUE` after `{text}`, and {var} is not set"))?;
            (text, value)
        }
    };
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !valid {
        return Err(format!(
            "`{name}` is not a secret name: letters, digits, `_` and `-` (as in \
             {{{{ .secrets.NAME }}}})"
        ));
    }
    if value.is_empty() {
        return Err(format!("secret `{name}` has an empty value"));
    }
    Ok((name.to_owned(), value))
}

/// Runs the plugin once and prints what happens; the exit code says how the run ended.
pub(super) async fn run(args: TestArgs, json: bool) -> Result<ExitCode, CliError> {
    let secrets: BTreeMap<String, String> = args.secrets.iter().cloned().collect();
    let mut mask = Mask(secrets.values().cloned().collect());
    let bytes = std::fs::read(&args.file)
        .map_err(|e| CliError::local(format!("{}: {e}", args.file.display())))?;
    let body = read_json(&args.action)?;
    let submitted = read_inputs(&args)?;
    let catalog = Arc::new(load_fixture(args.catalog.as_deref())?);

    let runtime = local_runtime(Arc::new(GivenSecrets(secrets)))?;
    let plugin = {
        let runtime = runtime.clone();
        tokio::task::spawn_blocking(move || runtime.load_plugin(&bytes))
            .await
            .map_err(|e| CliError::local(format!("loading the plugin: {e}")))?
            .map_err(|e| CliError::invalid(format!("{}: {e}", args.file.display())))?
    };
    let action = check_action(&runtime, &body, &args.action, &plugin, &catalog)?;
    let method = &action.invocation_method;
    let grants = runtime
        .grants(&method.capabilities, method.limits)
        .map_err(|e| {
            CliError::invalid(format!("{}: invocationMethod.{e}", args.action.display()))
        })?;

    let entity = run_entity(&action, args.entity.as_deref(), &catalog, &args)?;
    let user = User {
        identifier: args.user.clone(),
        email: None,
        roles: vec!["member".into()],
        teams: Vec::new(),
    };
    let context = InputContext {
        entity: entity
            .as_ref()
            .map(|e| serde_json::to_value(e).unwrap_or_default()),
        user: serde_json::to_value(&user).unwrap_or_default(),
    };
    let validated = inputs::validate(&action.inputs, &submitted, &context, &Lookup(&catalog))
        .await
        .map_err(|problems| {
            let lines: Vec<String> = problems
                .iter()
                .map(|p| format!("  {}: {}", p.path, p.message))
                .collect();
            CliError::invalid(mask.apply(&format!(
                "the inputs do not fit the userInputs of {} (the server would answer 422):\n{}",
                args.action.display(),
                lines.join("\n")
            )))
        })?;
    // Secret inputs are redacted wherever the server shows a run; so here.
    for name in &validated.secrets {
        if let Some(value) = validated.properties.get(name) {
            let text = value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned);
            if text.len() >= 4 {
                mask.0.push(text);
            }
        }
    }

    let request = RunRequest {
        run_id: format!("r_local_{}", hex::encode(random::<6>()?)),
        action: action.identifier.clone(),
        operation: action.operation,
        inputs: validated.properties,
        entity,
        triggered_by: user,
        config: method.config.clone(),
    };
    let printer = Arc::new(Printer {
        json,
        mask,
        state: Mutex::default(),
    });
    printer.start(&args.file, &plugin, &request);

    let cancel = CancellationToken::new();
    let on_interrupt = cancel.clone();
    let interrupt = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_interrupt.cancel();
        }
    });
    let report = runtime
        .run(
            &plugin,
            RunJob {
                request,
                grants: Arc::new(grants),
                catalog: catalog.clone(),
                events: printer.clone(),
                cancel,
            },
        )
        .await;
    interrupt.abort();
    printer.end(&report, &catalog);
    Ok(match &report.result {
        Ok(_) => ExitCode::SUCCESS,
        Err(f) if f.kind == FailureKind::Cancelled => ExitCode::from(EXIT_CANCELLED),
        Err(_) => ExitCode::from(EXIT_FAILURE),
    })
}

fn read_json(path: &Path) -> Result<Value, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::local(format!("{}: {e}", path.display())))?;
    serde_json::from_str(&text)
        .map_err(|e| CliError::invalid(format!("{}: not valid JSON: {e}", path.display())))
}

/// `--inputs`, `--inputs-file` or `{}`; a JSON object.
fn read_inputs(args: &TestArgs) -> Result<Value, CliError> {
    let (text, from) = match (&args.inputs, &args.inputs_file) {
        (Some(text), _) => (text.clone(), "--inputs".to_owned()),
        (None, Some(path)) if path.as_os_str() == "-" => {
            let text = std::io::read_to_string(std::io::stdin())
                .map_err(|e| CliError::local(format!("--inputs-file -: {e}")))?;
            (text, "--inputs-file - (standard input)".to_owned())
        }
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| CliError::local(format!("{}: {e}", path.display())))?;
            (text, path.display().to_string())
        }
        (None, None) => return Ok(json!({})),
    };
    match serde_json::from_str(&text) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(CliError::invalid(format!(
            "{from}: the inputs must be a JSON object, e.g. {{\"name\": \"checkout\"}}"
        ))),
        Err(e) => Err(CliError::invalid(format!("{from}: not valid JSON: {e}"))),
    }
}

/// The catalog the run starts with: `{"entities": [...]}` or a plain array of entities.
fn load_fixture(path: Option<&Path>) -> Result<MemoryCatalog, CliError> {
    let catalog = MemoryCatalog::new();
    let Some(path) = path else {
        return Ok(catalog);
    };
    let shown = path.display();
    let bad = |message: String| CliError::local(format!("{shown}: {message}"));
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let value: Value =
        serde_json::from_str(&text).map_err(|e| bad(format!("not valid JSON: {e}")))?;
    let (list, prefix) = match value {
        Value::Array(list) => (list, ""),
        Value::Object(mut fields) => match fields.remove("entities") {
            Some(Value::Array(list)) => (list, "entities"),
            _ => {
                return Err(bad(
                    "expected {\"entities\": [...]} or an array of entities".into(),
                ));
            }
        },
        _ => {
            return Err(bad(
                "expected {\"entities\": [...]} or an array of entities".into(),
            ));
        }
    };
    for (i, item) in list.into_iter().enumerate() {
        let entity: Entity = serde_json::from_value(item).map_err(|e| {
            bad(format!(
                "{prefix}[{i}]: {e} (an entity is {{blueprint, identifier, title?, team?, \
                 properties?, relations?}})"
            ))
        })?;
        for (field, value) in [
            ("properties", &entity.properties),
            ("relations", &entity.relations),
        ] {
            if !value.is_object() {
                return Err(bad(format!("{prefix}[{i}].{field}: must be a JSON object")));
            }
        }
        catalog.insert(entity);
    }
    Ok(catalog)
}

/// A runtime for one local run, caching compiled plugins between `plugin test` runs.
fn local_runtime(secrets: Arc<dyn SecretsProvider>) -> Result<Runtime, CliError> {
    let dir = cache_dir()?;
    create_private_dir(&dir)?;
    let mut config = RuntimeConfig::new(&dir);
    config.max_concurrent_runs = 1;
    // The server's key file and subkey: made once per cache folder (0600), so the cache
    // serves the next `plugin test` too.
    let key = portico_runs::host_key::HostKey::load_or_create(&dir.join("host-key"))
        .map_err(|e| CliError::local(e.to_string()))?;
    config.artifact_key = key.artifact_key();
    Runtime::new(config, secrets).map_err(|e| CliError::local(e.to_string()))
}

/// `PORTICO_CACHE_DIR`, else `$XDG_CACHE_HOME/portico`, else `~/.cache/portico`.
pub(super) fn cache_dir() -> Result<PathBuf, CliError> {
    let var = |name: &str| {
        std::env::var_os(name)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    if let Some(dir) = var("PORTICO_CACHE_DIR") {
        return Ok(dir);
    }
    if let Some(dir) = var("XDG_CACHE_HOME") {
        return Ok(dir.join("portico"));
    }
    var("HOME")
        .map(|home| home.join(".cache").join("portico"))
        .ok_or_else(|| {
            CliError::local("no cache folder for compiled plugins: set PORTICO_CACHE_DIR or HOME")
        })
}

fn create_private_dir(dir: &Path) -> Result<(), CliError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| CliError::local(format!("{}: {e}", dir.display())))
}

fn random<const N: usize>() -> Result<[u8; N], CliError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)
        .map_err(|e| CliError::local(format!("the OS random source failed: {e}")))?;
    Ok(bytes)
}

/// The `--secret` values: usable by the action under test and sent to any origin its grant
/// names. (The server asks the operator which actions and origins may use a secret; here the
/// author is the operator.)
struct GivenSecrets(BTreeMap<String, String>);

impl SecretsProvider for GivenSecrets {
    fn secret(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }

    fn access(&self, _name: &str) -> SecretAccess {
        SecretAccess {
            actions: vec!["*".into()],
            origins: Vec::new(),
        }
    }
}

/// Checks the action as the server checks it on write, and compiles it as the run intake does.
/// Locally there is no list of blueprints or plugins: the blueprints the action and the fixture
/// name count as existing, and the action's plugin is the file under test.
fn check_action(
    runtime: &Runtime,
    body: &Value,
    path: &Path,
    plugin: &Plugin,
    catalog: &MemoryCatalog,
) -> Result<Action, CliError> {
    let mut blueprints: BTreeSet<String> = catalog
        .entities()
        .into_iter()
        .map(|e| e.blueprint)
        .collect();
    for pointer in [
        "/trigger/blueprintIdentifier",
        "/trigger/event/blueprintIdentifier",
    ] {
        if let Some(bp) = body.pointer(pointer).and_then(Value::as_str) {
            blueprints.insert(bp.to_owned());
        }
    }
    for list in ["read", "write"] {
        let pointer = format!("/invocationMethod/capabilities/catalog/{list}");
        let names = body.pointer(&pointer).and_then(Value::as_array);
        blueprints.extend(
            names
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_owned)),
        );
    }
    let named = body
        .pointer("/invocationMethod/plugin")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let (name, pinned) = match named.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (named, None),
    };
    let plugins = [(
        name.to_owned(),
        pinned.unwrap_or(plugin.digest()).to_owned(),
    )];
    let blueprints: Vec<String> = blueprints.into_iter().collect();
    let known = Known {
        blueprints: &blueprints,
        plugins: &plugins,
        runtime,
    };
    let definition = action_check::check(body, &known).map_err(|problems| {
        let lines: Vec<String> = problems
            .iter()
            .map(|p| format!("  {}: {}", p.path, p.message))
            .collect();
        CliError::invalid(format!(
            "{}: the server would refuse this action (422):\n{}",
            path.display(),
            lines.join("\n")
        ))
    })?;
    if let Some(pinned) = pinned
        && pinned != plugin.digest()
    {
        eprintln!(
            "note: {} pins plugin {name}@{pinned}; running the file given, {}",
            path.display(),
            plugin.digest()
        );
    }
    Action::compile(definition).map_err(|e| CliError::invalid(format!("{}: {e}", path.display())))
}

/// The entity a run acts on, found as the run intake finds it.
fn run_entity(
    action: &Action,
    id: Option<&str>,
    catalog: &MemoryCatalog,
    args: &TestArgs,
) -> Result<Option<Entity>, CliError> {
    let blueprint = action.trigger.blueprint_identifier.as_deref();
    match (id, action.operation, blueprint) {
        (None, Operation::Create, _) => Ok(None),
        (None, operation, blueprint) => Err(CliError::invalid(format!(
            "--entity: required: {} is a {} action and runs on an entity of blueprint `{}` \
             (give its identifier; the entity comes from --catalog)",
            args.action.display(),
            operation.as_str(),
            blueprint.unwrap_or("?")
        ))),
        (Some(id), _, Some(blueprint)) => catalog
            .entities()
            .into_iter()
            .find(|e| e.blueprint == blueprint && e.identifier == id)
            .map(Some)
            .ok_or_else(|| {
                let source = args.catalog.as_ref().map_or_else(
                    || "the catalog is empty (no --catalog given)".to_owned(),
                    |p| format!("it is not in {}", p.display()),
                );
                CliError::invalid(format!(
                    "--entity: entity `{id}` of blueprint `{blueprint}` does not exist: {source}"
                ))
            }),
        (Some(_), _, None) => Err(CliError::invalid(format!(
            "--entity: {} has no trigger.blueprintIdentifier to find the entity in",
            args.action.display()
        ))),
    }
}

/// What input validation asks the catalog and the directory: the catalog is the fixture; there
/// is no directory, so every user and team exists.
struct Lookup<'a>(&'a MemoryCatalog);

#[async_trait::async_trait]
impl InputLookup for Lookup<'_> {
    async fn entity(&self, blueprint: &str, identifier: &str) -> Option<Value> {
        let entity = self.0.get(blueprint, identifier).await.ok()??;
        serde_json::to_value(entity).ok()
    }

    async fn in_dataset(
        &self,
        blueprint: &str,
        identifier: &str,
        dataset: &Value,
    ) -> Result<bool, String> {
        let query = portico_runs::inputs::dataset_query(blueprint, identifier, dataset);
        match self.0.search(&query, &[blueprint.to_owned()]).await {
            Ok(found) => Ok(!found.is_empty()),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn user_exists(&self, _identifier: &str) -> bool {
        true
    }

    async fn team_exists(&self, _name: &str) -> bool {
        true
    }
}

/// Values never printed: the `--secret` values and the run's secret inputs.
struct Mask(Vec<String>);

impl Mask {
    fn apply(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for secret in &self.0 {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), "[REDACTED]");
            }
        }
        text
    }

    fn apply_json(&self, value: &mut Value) {
        match value {
            Value::String(s) => *s = self.apply(s),
            Value::Array(items) => items.iter_mut().for_each(|v| self.apply_json(v)),
            Value::Object(fields) => fields.values_mut().for_each(|v| self.apply_json(v)),
            _ => {}
        }
    }
}

/// Prints each event of the run as it happens, as a text line or a JSON line.
struct Printer {
    json: bool,
    mask: Mask,
    state: Mutex<PrinterState>,
}

#[derive(Default)]
struct PrinterState {
    /// Log lines the host announced it writes about a call just printed: shown once, as the
    /// call.
    echoes: Vec<String>,
    /// Links printed as they were added (the outcome lists them again).
    links: usize,
}

impl Printer {
    /// Prints one event: `text` for people, `event` (masked here) for scripts.
    fn print(&self, text: &str, mut event: Value) {
        if self.json {
            self.mask.apply_json(&mut event);
            println!("{event}");
        } else {
            println!("{}", self.mask.apply(text));
        }
    }

    /// Prints a line for people only (what scripts get in the events already).
    fn text(&self, line: &str) {
        if !self.json {
            println!("{}", self.mask.apply(line));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PrinterState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn start(&self, file: &Path, plugin: &Plugin, request: &RunRequest) {
        let compiled = plugin.loaded_from() == LoadedFrom::Compiled;
        let how = if compiled {
            "compiled"
        } else {
            "from the cache"
        };
        self.print(
            &format!(
                "plugin   {} {} ({} bytes, portico:action@{}, {how})",
                file.display(),
                plugin.digest(),
                plugin.size(),
                plugin.contract()
            ),
            json!({ "event": "plugin", "file": file, "digest": plugin.digest(),
                    "size": plugin.size(),
                    "contract": format!("portico:action@{}", plugin.contract()),
                    "compiled": compiled }),
        );
        let on = request
            .entity
            .as_ref()
            .map(|e| format!(" on {}/{}", e.blueprint, e.identifier))
            .unwrap_or_default();
        self.print(
            &format!(
                "run      {} of {} ({}{on}) by {}, inputs {}",
                request.run_id,
                request.action,
                request.operation.as_str(),
                request.triggered_by.identifier,
                request.inputs
            ),
            json!({ "event": "run", "runId": request.run_id, "action": request.action,
                    "operation": request.operation.as_str(),
                    "entity": request.entity, "user": request.triggered_by.identifier,
                    "inputs": request.inputs }),
        );
    }

    fn end(&self, report: &RunReport, catalog: &MemoryCatalog) {
        let millis = report.duration.as_millis();
        match &report.result {
            Ok(outcome) => {
                let summary = outcome.summary.as_deref().unwrap_or("");
                self.print(
                    &format!("SUCCESS in {millis} ms: {summary}"),
                    json!({ "event": "outcome", "status": "SUCCESS", "summary": outcome.summary,
                            "links": outcome.links, "output": outcome.output,
                            "durationMs": millis }),
                );
                let seen = self.lock().links;
                for link in outcome.links.iter().skip(seen) {
                    self.text(&format!("  link   {}: {}", link.title, link.url));
                }
                if let Some(output) = &outcome.output {
                    self.text(&format!("  output {output}"));
                }
            }
            Err(failure) => {
                let status = if failure.kind == FailureKind::Cancelled {
                    "CANCELLED"
                } else {
                    "FAILURE"
                };
                self.print(
                    &format!(
                        "{status} ({}) in {millis} ms: {}",
                        failure.kind, failure.message
                    ),
                    json!({ "event": "outcome", "status": status, "kind": failure.kind,
                            "message": failure.message, "durationMs": millis }),
                );
            }
        }
        match report.affected_entities.len() {
            0 => self.text("catalog writes: none"),
            n => self.text(&format!("catalog writes: {n}")),
        }
        let entities = catalog.entities();
        for affected in &report.affected_entities {
            let (change, entity) = match affected.change {
                EntityChange::Upserted => (
                    "upserted",
                    entities.iter().find(|e| {
                        e.blueprint == affected.blueprint && e.identifier == affected.identifier
                    }),
                ),
                EntityChange::Deleted => ("deleted", None),
            };
            let properties = entity
                .map(|e| format!(" {}", e.properties))
                .unwrap_or_default();
            self.print(
                &format!(
                    "  {change} {}/{}{properties}",
                    affected.blueprint, affected.identifier
                ),
                json!({ "event": "write", "change": change, "blueprint": affected.blueprint,
                        "identifier": affected.identifier, "entity": entity }),
            );
        }
    }
}

impl RunEvents for Printer {
    fn observes_calls(&self) -> bool {
        true
    }
    fn log(&self, level: LogLevel, message: &str) {
        {
            let mut state = self.lock();
            if let Some(i) = state.echoes.iter().position(|e| e == message) {
                state.echoes.swap_remove(i);
                return;
            }
        }
        let level = serde_json::to_value(level).unwrap_or_default();
        let name = level.as_str().unwrap_or("info");
        self.print(
            &format!("log      {name:<5} {message}"),
            json!({ "event": "log", "level": level, "message": message }),
        );
    }

    fn progress(&self, percent: Option<u8>, label: Option<&str>) {
        let shown = percent.map_or("--".to_owned(), |p| format!("{p}%"));
        self.print(
            &format!("progress {shown} {}", label.unwrap_or("")),
            json!({ "event": "progress", "percent": percent, "label": label }),
        );
    }

    fn link(&self, link: &Link) {
        self.lock().links += 1;
        self.print(
            &format!("link     {}: {}", link.title, link.url),
            json!({ "event": "link", "title": link.title, "url": link.url }),
        );
    }

    fn call(&self, call: &CapabilityCall<'_>) {
        if let Some(line) = call.logged {
            self.lock().echoes.push(line.to_owned());
        }
        let (allowed, result) = match call.outcome {
            CallOutcome::Denied(reason) => {
                let text = format!("DENIED: {reason}");
                let fields = json!({ "allowed": false, "reason": reason });
                (text, fields)
            }
            CallOutcome::Failed(error) => (
                format!("allowed, failed: {error}"),
                json!({ "allowed": true, "error": error }),
            ),
            CallOutcome::Status(status) => (
                format!("allowed, {status}"),
                json!({ "allowed": true, "status": status }),
            ),
            CallOutcome::Stored => (
                "allowed, stored".to_owned(),
                json!({ "allowed": true, "result": "stored" }),
            ),
            CallOutcome::Matched(n) => (
                format!("allowed, {n} found"),
                json!({ "allowed": true, "result": "found", "count": n }),
            ),
            CallOutcome::Found(found) => {
                let deleting = matches!(
                    call.target,
                    CallTarget::Catalog {
                        operation: "delete",
                        ..
                    }
                );
                let result = match (deleting, found) {
                    (true, true) => "deleted",
                    (true, false) => "not found, nothing deleted",
                    (false, true) => "found",
                    (false, false) => "not found",
                };
                (
                    format!("allowed, {result}"),
                    json!({ "allowed": true, "result": result }),
                )
            }
        };
        let (text, mut event) = match call.target {
            CallTarget::Catalog {
                operation,
                blueprint,
                identifier,
            } => {
                let target = match (blueprint, identifier) {
                    (Some(bp), Some(id)) => format!(" {bp}/{id}"),
                    _ => String::new(),
                };
                (
                    format!("catalog  {operation}{target}: {allowed}"),
                    json!({ "event": "catalog", "operation": operation, "blueprint": blueprint,
                            "identifier": identifier }),
                )
            }
            CallTarget::Http { method, url } => (
                format!("http     {method} {url}: {allowed}"),
                json!({ "event": "http", "method": method, "url": url }),
            ),
        };
        if let (Value::Object(event), Value::Object(result)) = (&mut event, result) {
            event.extend(result);
        }
        self.print(&text, event);
    }
}
