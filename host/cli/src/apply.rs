//! Configuration as code. `apply` reads files of teams, plugins, blueprints and actions
//! ([`portico_manifest`]) and makes the server match them: it compares each object with the
//! server's, shows what changes, and writes in dependency order (teams and plugins, then
//! blueprints, then the actions that use them). `--prune` deletes what the files no longer
//! declare, but only objects the audit log shows an apply created, so nothing made by hand is
//! ever pruned. `export` writes the server's objects as files `apply` accepts.

use crate::Global;
use crate::client::Client;
use crate::commands::{list, push_plugin};
use crate::error::CliError;
use crate::output::{Format, to_yaml};
use clap::Args;
use portico_manifest::{Document, Kind};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// `portico apply`.
#[derive(Args)]
pub struct ApplyArgs {
    /// Files or folders (every `.yaml`, `.yml` and `.json` in them) to apply. Repeatable.
    #[arg(long = "file", short = 'f', required = true, value_name = "PATH")]
    pub files: Vec<PathBuf>,
    /// Shows what would change without changing anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Also deletes actions, blueprints and plugins an earlier apply created that the files no
    /// longer declare (never objects made any other way).
    #[arg(long)]
    pub prune: bool,
}

/// `portico export`.
#[derive(Args)]
pub struct ExportArgs {
    /// The folder to write `teams.yaml`, `plugins.yaml`, `blueprints.yaml` and `actions.yaml`
    /// into (created if missing).
    #[arg(long, short = 'd', default_value = "portico-config")]
    pub dir: PathBuf,
}

/// What applying one object does.
#[derive(Debug, PartialEq)]
enum Change {
    Create,
    Update(Vec<String>),
    Unchanged,
    Delete,
}

impl Change {
    /// As `--output json` names it.
    fn label(&self) -> &'static str {
        match self {
            Change::Create => "create",
            Change::Update(_) => "update",
            Change::Unchanged => "unchanged",
            Change::Delete => "delete",
        }
    }
}

struct Step {
    kind: Kind,
    id: String,
    change: Change,
    /// The body to write (none for deletes).
    doc: Option<Document>,
}

/// Applies the files.
pub async fn apply(args: ApplyArgs, global: &Global) -> Result<(), CliError> {
    let docs = load(&args.files)?;
    for doc in &docs {
        for note in &doc.notes {
            eprintln!("note: {} {} ({}): {note}", doc.kind, doc.id, doc.source);
        }
    }
    let client = global.client()?.for_apply();
    let server = Server::read(&client).await?;
    let mut steps = Vec::new();
    for doc in docs {
        let change = server.compare(&client, &doc).await?;
        steps.push(Step {
            kind: doc.kind,
            id: doc.id.clone(),
            change,
            doc: Some(doc),
        });
    }
    order(&mut steps);
    if args.prune {
        let declared: BTreeSet<(Kind, String)> =
            steps.iter().map(|s| (s.kind, s.id.clone())).collect();
        let owned = applied_objects(&client).await?;
        // Actions first: a blueprint or plugin an action uses cannot go before it.
        for kind in [Kind::Action, Kind::Blueprint, Kind::Plugin] {
            for id in server.ids(kind) {
                if owned.contains(&(kind, id.clone())) && !declared.contains(&(kind, id.clone())) {
                    steps.push(Step {
                        kind,
                        id,
                        change: Change::Delete,
                        doc: None,
                    });
                }
            }
        }
    }

    let json = global.output != Format::Table;
    let mut report = Vec::new();
    let mut deferred = Vec::new();
    let mut created_blueprints = BTreeSet::new();
    for step in &steps {
        if !json {
            print_step(step, args.dry_run);
        }
        report.push(
            json!({ "kind": step.kind.name(), "id": step.id, "change": step.change.label() }),
        );
        if args.dry_run {
            continue;
        }
        write(&client, &server, &created_blueprints, step, &mut deferred)
            .await
            .map_err(|e| at(step, e))?;
        if step.kind == Kind::Blueprint && step.change == Change::Create {
            created_blueprints.insert(step.id.clone());
        }
    }
    // Blueprints created without their relations (a cycle) get them now.
    for doc in deferred {
        client
            .call(
                Method::PUT,
                &format!("/v1/blueprints/{}", doc.id),
                Some(&doc.body),
            )
            .await
            .map_err(|e| in_doc(&doc, e))?;
    }

    let count = |f: fn(&Change) -> bool| steps.iter().filter(|s| f(&s.change)).count();
    let created = count(|c| *c == Change::Create);
    let updated = count(|c| matches!(c, Change::Update(_)));
    let deleted = count(|c| *c == Change::Delete);
    let unchanged = count(|c| *c == Change::Unchanged);
    if json {
        let summary = json!({ "dryRun": args.dry_run, "created": created, "updated": updated,
            "deleted": deleted, "unchanged": unchanged, "objects": report });
        global.out().value(&summary);
    } else if created + updated + deleted == 0 {
        println!("No changes: the server matches the files ({unchanged} objects).");
    } else if args.dry_run {
        println!(
            "Dry run: {created} to create, {updated} to update, {deleted} to delete, {unchanged} \
             unchanged. Nothing was changed."
        );
    } else {
        println!(
            "Applied: {created} created, {updated} updated, {deleted} deleted, {unchanged} unchanged."
        );
    }
    Ok(())
}

fn at(step: &Step, e: CliError) -> CliError {
    match &step.doc {
        Some(doc) => in_doc(doc, e),
        None => prefix(&format!("deleting {} {}", step.kind, step.id), e),
    }
}

fn in_doc(doc: &Document, e: CliError) -> CliError {
    prefix(&format!("{} {} ({})", doc.kind, doc.id, doc.source), e)
}

fn prefix(what: &str, e: CliError) -> CliError {
    match e {
        CliError::Refused {
            status,
            message,
            details,
        } => CliError::Refused {
            status,
            message: format!("{what}: {message}"),
            details,
        },
        CliError::Local(message) => CliError::Local(format!("{what}: {message}")),
        other => other,
    }
}

fn print_step(step: &Step, dry_run: bool) {
    let (sign, done, would) = match &step.change {
        Change::Create => ("+", "created", "would be created"),
        Change::Update(_) => ("~", "updated", "would be updated"),
        Change::Delete => ("-", "deleted (pruned)", "would be deleted (pruned)"),
        Change::Unchanged => return,
    };
    println!(
        "{sign} {} {}: {}",
        step.kind,
        step.id,
        if dry_run { would } else { done }
    );
    if let Change::Update(lines) = &step.change {
        for line in lines {
            println!("    {line}");
        }
    }
}

async fn write(
    client: &Client,
    server: &Server,
    created_blueprints: &BTreeSet<String>,
    step: &Step,
    deferred: &mut Vec<Document>,
) -> Result<(), CliError> {
    let path = |kind: Kind, id: &str| match kind {
        Kind::Team => format!("/v1/teams/{id}"),
        Kind::Plugin => format!("/v1/plugins/{id}"),
        Kind::Blueprint => format!("/v1/blueprints/{id}"),
        Kind::Action => format!("/v1/actions/{id}"),
    };
    let Some(doc) = &step.doc else {
        client
            .call(Method::DELETE, &path(step.kind, &step.id), None)
            .await?;
        return Ok(());
    };
    match (&step.change, doc.kind) {
        (Change::Unchanged | Change::Delete, _) => {}
        (Change::Create, Kind::Team) => {
            client
                .call(Method::POST, "/v1/teams", Some(&doc.body))
                .await?;
        }
        (Change::Update(_), Kind::Team) => {
            return Err(CliError::Local(
                "a team's description cannot be changed: the API has no team update".into(),
            ));
        }
        (_, Kind::Plugin) => {
            let file = doc.body["path"].as_str().unwrap_or_default();
            push_plugin(client, &doc.id, Path::new(file)).await?;
        }
        (Change::Create, Kind::Blueprint) => {
            let missing_target = targets(step).any(|t| {
                t != doc.id
                    && !server.exists(Kind::Blueprint, &t)
                    && !created_blueprints.contains(&t)
            });
            if missing_target {
                // Its targets come later (a cycle): created bare now, completed at the end.
                let mut bare = doc.body.clone();
                bare.as_object_mut().map(|b| b.remove("relations"));
                client
                    .call(Method::POST, "/v1/blueprints", Some(&bare))
                    .await?;
                deferred.push(doc.clone());
            } else {
                client
                    .call(Method::POST, "/v1/blueprints", Some(&doc.body))
                    .await?;
            }
        }
        (Change::Create, Kind::Action) => {
            client
                .call(Method::POST, "/v1/actions", Some(&doc.body))
                .await?;
        }
        (Change::Update(_), kind) => {
            client
                .call(Method::PUT, &path(kind, &doc.id), Some(&doc.body))
                .await?;
        }
    }
    Ok(())
}

/// Dependencies first: teams, plugins, blueprints (a relation's target before the blueprint
/// that points to it, where there is no cycle), actions.
fn order(steps: &mut Vec<Step>) {
    let mut sorted = Vec::with_capacity(steps.len());
    for kind in Kind::ALL {
        let mut pending: Vec<Step> = Vec::new();
        let mut i = 0;
        while i < steps.len() {
            if steps[i].kind == kind {
                pending.push(steps.remove(i));
            } else {
                i += 1;
            }
        }
        if kind != Kind::Blueprint {
            sorted.extend(pending);
            continue;
        }
        while !pending.is_empty() {
            let waiting: BTreeSet<String> = pending.iter().map(|s| s.id.clone()).collect();
            let ready = pending
                .iter()
                .position(|s| targets(s).all(|t| t == s.id || !waiting.contains(&t)));
            // In a cycle, the first declared goes first (created without its relations).
            sorted.push(pending.remove(ready.unwrap_or(0)));
        }
    }
    *steps = sorted;
}

fn targets(step: &Step) -> impl Iterator<Item = String> + '_ {
    step.doc
        .iter()
        .flat_map(|d| d.body["relations"].as_object().into_iter().flatten())
        .filter_map(|(_, r)| r["target"].as_str().map(str::to_owned))
}

/// Reads every file (and every `.yaml`/`.yml`/`.json` in a folder), refusing an object declared
/// twice.
fn load(paths: &[PathBuf]) -> Result<Vec<Document>, CliError> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| CliError::Local(format!("{}: {e}", path.display())))?
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.extension()
                        .is_some_and(|x| x == "yaml" || x == "yml" || x == "json")
                })
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    let mut docs: Vec<Document> = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)
            .map_err(|e| CliError::Local(format!("{}: {e}", file.display())))?;
        let name = file.display().to_string();
        for mut doc in
            portico_manifest::parse(&name, &text).map_err(|e| CliError::Local(e.to_string()))?
        {
            if let Some(dup) = docs.iter().find(|d| d.kind == doc.kind && d.id == doc.id) {
                return Err(CliError::Local(format!(
                    "{} {} is declared twice: in {} and in {}",
                    doc.kind, doc.id, dup.source, doc.source
                )));
            }
            if let Some(relative) = doc.body["path"].as_str() {
                // A plugin's path is relative to the file that names it.
                let base = file.parent().unwrap_or(Path::new("."));
                doc.body["path"] = json!(base.join(relative).display().to_string());
            }
            docs.push(doc);
        }
    }
    Ok(docs)
}

/// What the server holds, by kind and id, as `apply` compares it.
struct Server {
    objects: BTreeMap<(Kind, String), Value>,
}

impl Server {
    async fn read(client: &Client) -> Result<Self, CliError> {
        let mut objects = BTreeMap::new();
        for (kind, path, field) in [
            (Kind::Team, "/v1/teams", "teams"),
            (Kind::Plugin, "/v1/plugins", "plugins"),
            (Kind::Blueprint, "/v1/blueprints", "blueprints"),
            (Kind::Action, "/v1/actions", "actions"),
        ] {
            let body = client.get(path).await?;
            for object in list(&body[field]) {
                let id = object[kind.id_field()]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                objects.insert((kind, id), object.clone());
            }
        }
        Ok(Self { objects })
    }

    fn exists(&self, kind: Kind, id: &str) -> bool {
        self.objects.contains_key(&(kind, id.to_owned()))
    }

    fn ids(&self, kind: Kind) -> Vec<String> {
        self.objects
            .keys()
            .filter(|(k, _)| *k == kind)
            .map(|(_, id)| id.clone())
            .collect()
    }

    async fn compare(&self, client: &Client, doc: &Document) -> Result<Change, CliError> {
        let Some(current) = self.objects.get(&(doc.kind, doc.id.clone())) else {
            if let Some(digest) = doc.body["digest"].as_str() {
                return Err(CliError::Local(format!(
                    "plugin {} ({}): the server has no plugin `{}` with digest {digest}; \
                     declare its `path` instead, or push it (`portico plugins push`)",
                    doc.id, doc.source, doc.id
                )));
            }
            return Ok(Change::Create);
        };
        if doc.kind == Kind::Plugin {
            return plugin_change(doc, current);
        }
        let mut declared = doc.body.clone();
        if doc.kind == Kind::Action {
            // The server fills in defaults (limits, permissions, ...): ask it what it would
            // store. A file that refers to what this apply creates cannot be checked yet; its
            // write will be.
            let path = format!("/v1/actions/{}?dryRun=true", doc.id);
            match client.call(Method::PUT, &path, Some(&doc.body)).await {
                Ok(answer) => declared = answer["action"].clone(),
                Err(CliError::Refused { status: 422, .. }) => {}
                Err(e) => return Err(in_doc(doc, e)),
            }
        }
        let lines = diff(&comparable(current), &comparable(&declared));
        Ok(if lines.is_empty() {
            Change::Unchanged
        } else {
            Change::Update(lines)
        })
    }
}

/// A plugin is unchanged when its newest version is the file's (or the named digest is on the
/// server).
fn plugin_change(doc: &Document, current: &Value) -> Result<Change, CliError> {
    let newest = current["digest"].as_str().unwrap_or_default();
    if let Some(digest) = doc.body["digest"].as_str() {
        let known = newest == digest
            || list(&current["versions"]).any(|v| v["digest"].as_str() == Some(digest));
        return if known {
            Ok(Change::Unchanged)
        } else {
            Err(CliError::Local(format!(
                "plugin {} ({}): the server has no version {digest}; declare its `path` \
                 instead, or push it (`portico plugins push`)",
                doc.id, doc.source
            )))
        };
    }
    let file = doc.body["path"].as_str().unwrap_or_default();
    let bytes = std::fs::read(file)
        .map_err(|e| CliError::Local(format!("plugin {} ({}): {file}: {e}", doc.id, doc.source)))?;
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
    Ok(if digest == newest {
        Change::Unchanged
    } else {
        Change::Update(vec![format!("~ digest: {newest} -> {digest}")])
    })
}

/// An object without what the server keeps about it (times, authors) and without empty
/// values, which mean the same as absent ones.
fn comparable(value: &Value) -> Value {
    let mut value = value.clone();
    if let Some(object) = value.as_object_mut() {
        for key in ["createdAt", "updatedAt", "createdBy", "updatedBy"] {
            object.remove(key);
        }
    }
    strip_empty(value)
}

fn strip_empty(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, strip_empty(v)))
                .filter(|(_, v)| !is_empty(v))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(strip_empty).collect()),
        other => other,
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// `~ path: old -> new`, `+ path: new`, `- path: old` for every field that differs.
fn diff(old: &Value, new: &Value) -> Vec<String> {
    let mut lines = Vec::new();
    walk("", old, new, &mut lines);
    lines
}

fn walk(path: &str, old: &Value, new: &Value, lines: &mut Vec<String>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                let here = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => walk(&here, x, y, lines),
                    (None, Some(y)) => lines.push(format!("+ {here}: {}", short(y))),
                    (Some(x), None) => lines.push(format!("- {here}: {}", short(x))),
                    (None, None) => {}
                }
            }
        }
        (a, b) if a != b => lines.push(format!("~ {path}: {} -> {}", short(a), short(b))),
        _ => {}
    }
}

fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 80 {
        format!("{}...", text.chars().take(77).collect::<String>())
    } else {
        text
    }
}

/// `(kind, id)` of every object whose creation the audit log attributes to an apply (and which
/// has not been deleted since).
async fn applied_objects(client: &Client) -> Result<BTreeSet<(Kind, String)>, CliError> {
    let mut owned = BTreeSet::new();
    for kind in [Kind::Action, Kind::Blueprint, Kind::Plugin] {
        // Newest first: a DELETE ends what older records say; the oldest creation after it
        // is who made the object that exists now.
        let mut creator: BTreeMap<String, Option<String>> = BTreeMap::new();
        let mut closed: BTreeSet<String> = BTreeSet::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut query = vec![
                ("resource", kind.resource_type().to_owned()),
                ("limit", "1000".to_owned()),
            ];
            if let Some(c) = &cursor {
                query.push(("cursor", c.clone()));
            }
            let page = client
                .send(client.request(Method::GET, "/v1/audit-log").query(&query))
                .await?;
            for entry in list(&page["audit"]) {
                let id = entry["resourceId"].as_str().unwrap_or_default().to_owned();
                if closed.contains(&id) || entry["status"] != "SUCCESS" {
                    continue;
                }
                match entry["operation"].as_str() {
                    Some("DELETE") => {
                        closed.insert(id);
                    }
                    Some("CREATE" | "UPLOAD") => {
                        creator.insert(id, entry["origin"].as_str().map(str::to_owned));
                    }
                    _ => {}
                }
            }
            match page["next"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        for (id, origin) in creator {
            if origin.as_deref() == Some("apply") {
                owned.insert((kind, id));
            }
        }
    }
    Ok(owned)
}

/// Writes the server's configuration as files.
pub async fn export(args: ExportArgs, global: &Global) -> Result<(), CliError> {
    let client = global.client()?;
    let server = Server::read(&client).await?;
    std::fs::create_dir_all(&args.dir)
        .map_err(|e| CliError::Local(format!("{}: {e}", args.dir.display())))?;
    let mut written = Vec::new();
    for kind in Kind::ALL {
        let mut docs = Vec::new();
        for ((k, _), object) in &server.objects {
            if *k != kind {
                continue;
            }
            let body = match kind {
                // The newest version, by digest: the file does not carry the bytes.
                Kind::Plugin => json!({ "name": object["name"], "digest": object["digest"] }),
                _ => comparable(object),
            };
            // `kind` first, as people write it.
            docs.push(format!("kind: {}\n{}", kind.name(), to_yaml(&body)));
        }
        if docs.is_empty() {
            continue;
        }
        let file = args.dir.join(format!("{}s.yaml", kind.resource_type()));
        std::fs::write(&file, docs.join("---\n"))
            .map_err(|e| CliError::Local(format!("{}: {e}", file.display())))?;
        let plural = if docs.len() == 1 { "" } else { "s" };
        written.push(format!(
            "{} ({} {kind}{plural})",
            file.display(),
            docs.len()
        ));
    }
    if global.output == Format::Table {
        println!("Exported {}.", written.join(", "));
    } else {
        global.out().value(&json!({ "files": written }));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diff_names_each_field_that_changes() {
        let old =
            json!({ "title": "A", "schema": { "properties": { "x": { "type": "string" } } } });
        let new =
            json!({ "title": "B", "schema": { "properties": { "y": { "type": "number" } } } });
        assert_eq!(
            diff(&old, &new),
            vec![
                "- schema.properties.x: {\"type\":\"string\"}",
                "+ schema.properties.y: {\"type\":\"number\"}",
                "~ title: \"A\" -> \"B\"",
            ]
        );
    }

    #[test]
    fn what_the_server_keeps_and_empty_values_are_not_differences() {
        let server = json!({ "identifier": "b", "createdAt": "2026-01-01T00:00:00Z",
            "relations": {}, "schema": { "properties": {}, "required": [] }, "icon": null });
        assert_eq!(comparable(&server), json!({ "identifier": "b" }));
    }
}
