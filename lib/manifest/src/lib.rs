//! Portico's configuration as files. A file holds one or many YAML or JSON documents, each a
//! team, a plugin, a blueprint or an action; blueprints and actions are Port's JSON shapes
//! unchanged, with a `kind` beside them:
//!
//! ```yaml
//! kind: Blueprint
//! identifier: service
//! title: Service
//! ---
//! kind: Plugin
//! name: webhook
//! path: ../plugins/target/wasm32-wasip2/release/webhook.wasm   # or digest: sha256:...
//! ```
//!
//! An action copied from Port without a `kind` is recognised by its `trigger` and
//! `invocationMethod`, a blueprint by its `schema`. Port's `WEBHOOK` invocation is mapped to
//! the bundled `webhook` plugin (see [`port`]); invocations Portico cannot run are refused with
//! what to do instead. `portico apply` reads these files; so does the host for `--examples`
//! ([`examples`]).

pub mod port;

use serde_json::{Map, Value};
use std::fmt;

/// What a document describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A team (`name`, `description`).
    Team,
    /// A plugin: `name` and either `path` (a `.wasm`, relative to the file) or `digest`.
    Plugin,
    /// A blueprint, as `POST /v1/blueprints` takes it.
    Blueprint,
    /// An action, as `POST /v1/actions` takes it (its `permissions` included).
    Action,
}

impl Kind {
    /// Every kind, in the order `apply` creates them: what an action refers to comes first.
    pub const ALL: [Kind; 4] = [Kind::Team, Kind::Plugin, Kind::Blueprint, Kind::Action];

    /// The name written in a document's `kind`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Team => "Team",
            Kind::Plugin => "Plugin",
            Kind::Blueprint => "Blueprint",
            Kind::Action => "Action",
        }
    }

    /// The field that names an object of this kind.
    pub fn id_field(self) -> &'static str {
        match self {
            Kind::Team | Kind::Plugin => "name",
            Kind::Blueprint | Kind::Action => "identifier",
        }
    }

    /// The audit log's `resourceType` for this kind.
    pub fn resource_type(self) -> &'static str {
        match self {
            Kind::Team => "team",
            Kind::Plugin => "plugin",
            Kind::Blueprint => "blueprint",
            Kind::Action => "action",
        }
    }

    fn parse(name: &str) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name().to_ascii_lowercase())
    }
}

/// One object declared in a file.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    /// What it is.
    pub kind: Kind,
    /// Its name or identifier.
    pub id: String,
    /// The object as the API takes it (without `kind`).
    pub body: Value,
    /// Where it was declared: `file.yaml, document 2`.
    pub source: String,
    /// What Portico runs differently from Port for this object (e.g. a mapped `WEBHOOK`).
    pub notes: Vec<String>,
}

/// A file that cannot be applied, naming the document and field at fault.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{place}: {message}")]
pub struct ManifestError {
    /// `file.yaml` or `file.yaml, document 2`.
    pub place: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// Reads every document in `text` (YAML, of which JSON is a part; `---` separates documents).
/// `name` is how errors refer to the file.
pub fn parse(name: &str, text: &str) -> Result<Vec<Document>, ManifestError> {
    let values: Vec<Value> = serde_saphyr::from_multiple_with_options(text, yaml_options())
        .map_err(|e| ManifestError {
            place: name.to_owned(),
            message: format!("not valid YAML or JSON: {e}"),
        })?;
    let several = values.len() > 1;
    values
        .into_iter()
        .enumerate()
        .filter(|(_, v)| !v.is_null())
        .map(|(i, value)| {
            let source = if several {
                format!("{name}, document {}", i + 1)
            } else {
                name.to_owned()
            };
            document(source, value)
        })
        .collect()
}

/// Reads one YAML or JSON value (an inputs file, a query) as `parse` reads documents. `name` is
/// how errors refer to it.
pub fn read_value(name: &str, text: &str) -> Result<Value, ManifestError> {
    serde_saphyr::from_str_with_options(text, yaml_options()).map_err(|e| ManifestError {
        place: name.to_owned(),
        message: format!("not valid YAML or JSON: {e}"),
    })
}

/// YAML 1.2 booleans only: `enum: [yes, no, y, n]` stays strings, as it would in JSON.
fn yaml_options() -> serde_saphyr::Options {
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    options
}

fn document(source: String, value: Value) -> Result<Document, ManifestError> {
    let fail = |message: String| ManifestError {
        place: source.clone(),
        message,
    };
    let Value::Object(mut body) = value else {
        return Err(fail("a document must be a mapping with a `kind`".into()));
    };
    let kind = match body.remove("kind") {
        Some(Value::String(name)) => Kind::parse(&name).ok_or_else(|| {
            fail(format!(
                "kind `{name}` is not one of Team, Plugin, Blueprint, Action"
            ))
        })?,
        Some(other) => return Err(fail(format!("kind must be a string, not {other}"))),
        None => infer(&body)
            .ok_or_else(|| fail("add a `kind` (Team, Plugin, Blueprint or Action)".into()))?,
    };
    let id = match body.get(kind.id_field()) {
        Some(Value::String(id)) if !id.is_empty() => id.clone(),
        _ => {
            return Err(fail(format!(
                "a {kind} needs `{}` (a non-empty string)",
                kind.id_field()
            )));
        }
    };
    let mut notes = Vec::new();
    match kind {
        Kind::Plugin => check_plugin(&body).map_err(fail)?,
        Kind::Team => check_fields(&body, &["name", "description"]).map_err(fail)?,
        Kind::Action => notes = port::map_invocation(&mut body).map_err(fail)?,
        Kind::Blueprint => {}
    }
    Ok(Document {
        kind,
        id,
        body: Value::Object(body),
        source,
        notes,
    })
}

/// Port's own JSON carries no `kind`: an action has a trigger and an invocation method, a
/// blueprint a schema.
fn infer(body: &Map<String, Value>) -> Option<Kind> {
    if body.contains_key("trigger") && body.contains_key("invocationMethod") {
        Some(Kind::Action)
    } else if body.contains_key("schema") && !body.contains_key("trigger") {
        Some(Kind::Blueprint)
    } else {
        None
    }
}

fn check_fields(body: &Map<String, Value>, allowed: &[&str]) -> Result<(), String> {
    match body.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(key) => Err(format!(
            "unknown field `{key}` (expected {})",
            allowed.join(", ")
        )),
        None => Ok(()),
    }
}

fn check_plugin(body: &Map<String, Value>) -> Result<(), String> {
    check_fields(body, &["name", "path", "digest"])?;
    match (body.get("path"), body.get("digest")) {
        (Some(Value::String(_)), None) => Ok(()),
        (None, Some(Value::String(d)))
            if d.strip_prefix("sha256:")
                .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())) =>
        {
            Ok(())
        }
        (None, Some(_)) => Err("digest must be `sha256:` and 64 hex digits".into()),
        _ => Err("a plugin needs exactly one of `path` (a .wasm file) or `digest`".into()),
    }
}

/// The embedded default's examples (`examples/*.yaml` in the repository, built into the
/// binary): the blueprints, team and actions `portico serve --examples true` creates.
pub fn examples() -> Vec<Document> {
    const FILES: [(&str, &str); 3] = [
        (
            "examples/blueprints.yaml",
            include_str!("../../../examples/blueprints.yaml"),
        ),
        (
            "examples/teams.yaml",
            include_str!("../../../examples/teams.yaml"),
        ),
        (
            "examples/actions.yaml",
            include_str!("../../../examples/actions.yaml"),
        ),
    ];
    FILES
        .iter()
        .flat_map(|(name, text)| parse(name, text).expect("the examples are valid"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_file_holds_several_documents_of_any_kind() {
        let docs = parse(
            "f.yaml",
            "kind: Team\nname: payments\n---\nkind: blueprint\nidentifier: service\n",
        )
        .unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(
            (docs[0].kind, docs[0].id.as_str()),
            (Kind::Team, "payments")
        );
        assert_eq!(docs[1].kind, Kind::Blueprint);
        assert_eq!(docs[1].body, json!({ "identifier": "service" }));
        assert_eq!(docs[1].source, "f.yaml, document 2");
    }

    #[test]
    fn yaml_1_1_booleans_stay_strings() {
        let docs = parse(
            "f.yaml",
            "kind: Blueprint\nidentifier: b\nschema: {properties: {a: {enum: [y, n, yes, no, on]}}}",
        )
        .unwrap();
        assert_eq!(
            docs[0].body["schema"]["properties"]["a"]["enum"],
            json!(["y", "n", "yes", "no", "on"])
        );
    }

    #[test]
    fn port_json_without_a_kind_is_recognised() {
        let action = r#"{"identifier": "a", "trigger": {"type": "self-service"},
            "invocationMethod": {"type": "WASM", "plugin": "p"}}"#;
        assert_eq!(parse("a.json", action).unwrap()[0].kind, Kind::Action);
        let blueprint = r#"{"identifier": "b", "schema": {"properties": {}}}"#;
        assert_eq!(parse("b.json", blueprint).unwrap()[0].kind, Kind::Blueprint);
    }

    #[test]
    fn errors_name_the_document_and_what_to_fix() {
        let err = parse("f.yaml", "kind: Team\nname: a\n---\ntitle: x\n").unwrap_err();
        assert_eq!(err.place, "f.yaml, document 2");
        assert!(err.message.contains("add a `kind`"), "{err}");
        let err = parse("f.yaml", "kind: Widget\nname: a").unwrap_err();
        assert!(err.message.contains("Widget"), "{err}");
        let err = parse("f.yaml", "kind: Blueprint\ntitle: x").unwrap_err();
        assert!(err.message.contains("`identifier`"), "{err}");
        let err = parse("f.yaml", "kind: Plugin\nname: p").unwrap_err();
        assert!(err.message.contains("`path`"), "{err}");
        let err = parse("f.yaml", "kind: Team\nname: t\nmembers: []").unwrap_err();
        assert!(err.message.contains("`members`"), "{err}");
        let err = parse("f.yaml", "a: [1,\nb: 2").unwrap_err();
        assert!(err.message.contains("not valid YAML"), "{err}");
    }

    #[test]
    fn the_examples_parse() {
        let examples = examples();
        assert!(
            examples
                .iter()
                .any(|d| d.kind == Kind::Action && d.id == "provision_dev_environment")
        );
        assert!(examples.iter().all(|d| d.notes.is_empty()));
    }
}
