//! User inputs: what an action asks for when it is triggered, and the checks on what a user
//! submits.
//!
//! An action's `trigger.userInputs` follows Port's shape, `{properties, required, order?, steps?,
//! titles?}`. Each property is an input such as
//!
//! ```json
//! { "type": "string", "format": "entity", "blueprint": "service", "title": "Service",
//!   "visible": { "jqQuery": ".form.kind == \"service\"" }, "dependsOn": ["kind"] }
//! ```
//!
//! [`check_definition`] checks a definition when an action is written; [`validate`] checks the
//! `properties` of a run against it when the run is created, fills defaults, drops hidden inputs
//! and replaces entity identifiers with the entities.
//!
//! `visible`, `disabled`, `default` and `required` may be `{"jqQuery": "..."}`: a jq expression
//! run over `{form, entity, user}`, where `form` holds the submitted values after defaults,
//! `entity` the entity the action runs on (or `null`), and `user` the caller's
//! `{identifier, email, roles, teams}`. Its first output is its value.
//!
//! `definition` holds the checks made when an action is written, `request` those made on a
//! run's values; this module holds what both read: the input kinds and keys, and each input's
//! JSON Schema.

mod definition;
mod request;

pub use definition::check_definition;
pub use request::{FormState, form_state, validate};

use async_trait::async_trait;
use portico_catalog::Violation;
use serde_json::{Map, Value, json};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// Where the definition sits in an action.
const PREFIX: &str = "trigger.userInputs";

/// What a jq expression runs over besides the form.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InputContext {
    /// The entity a DAY-2 or DELETE action runs on; `None` for CREATE.
    pub entity: Option<Value>,
    /// The caller: `{identifier, email, roles, teams}`.
    pub user: Value,
}

/// A run's inputs once validated.
#[derive(Clone, Debug, PartialEq)]
pub struct Validated {
    /// The values to run with: defaults filled in, hidden inputs dropped, entity identifiers
    /// replaced by the entities.
    pub properties: Value,
    /// Names of the inputs in `properties` whose definition has `encryption`: the caller encrypts
    /// them, and redacts them wherever the run is shown.
    pub secrets: Vec<String>,
}

/// What [`validate`] asks the catalog and the directory.
#[async_trait]
pub trait InputLookup: Send + Sync {
    /// The entity `identifier` of `blueprint`, as the run should receive it, if it exists.
    async fn entity(&self, blueprint: &str, identifier: &str) -> Option<Value>;
    /// Whether entity `identifier` of `blueprint` matches `dataset` (a search rule set, its jq
    /// values filled in); `Err` says why the rule set cannot be searched.
    async fn in_dataset(
        &self,
        blueprint: &str,
        identifier: &str,
        dataset: &Value,
    ) -> Result<bool, String>;
    /// Whether a user with this identifier (or email) exists.
    async fn user_exists(&self, identifier: &str) -> bool;
    /// Whether a team with this name exists.
    async fn team_exists(&self, name: &str) -> bool;
}

/// The search that answers [`InputLookup::in_dataset`]: entity `identifier` of `blueprint`, and
/// the dataset's rules. One query for every lookup, so the server and `plugin test` agree.
pub fn dataset_query(blueprint: &str, identifier: &str, dataset: &Value) -> Value {
    serde_json::json!({ "combinator": "and", "rules": [
        { "property": "$blueprint", "operator": "=", "value": blueprint },
        { "property": "$identifier", "operator": "=", "value": identifier },
        dataset,
    ] })
}

fn violation(path: impl Into<String>, message: impl Into<String>) -> Violation {
    Violation {
        path: path.into(),
        message: message.into(),
    }
}

/// A field that may be a value or `{"jqQuery": "..."}`.
enum Field<'a> {
    Plain(&'a Value),
    Jq(&'a str),
    /// An object with `jqQuery` that is not exactly `{"jqQuery": "<string>"}`.
    BadJq,
}

fn field(value: &Value) -> Field<'_> {
    match value.as_object() {
        Some(o) if o.contains_key("jqQuery") => match (o.len(), o["jqQuery"].as_str()) {
            (1, Some(code)) => Field::Jq(code),
            _ => Field::BadJq,
        },
        _ => Field::Plain(value),
    }
}

/// Formats whose values name something that must exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reference {
    Entity,
    User,
    Team,
}

/// Whether an input names entities, users or teams: `format` on the input (a string, or a list
/// for `type: array`), or on its `items` (Port's shape for lists). Returns the blueprint for
/// entities and whether the value is a list.
fn reference(def: &Map<String, Value>) -> Option<(Reference, Option<&str>, bool)> {
    let kind = |format: Option<&Value>| match format.and_then(Value::as_str) {
        Some("entity") => Some(Reference::Entity),
        Some("user") => Some(Reference::User),
        Some("team") => Some(Reference::Team),
        _ => None,
    };
    let many = def.get("type").and_then(Value::as_str) == Some("array");
    if let Some(k) = kind(def.get("format")) {
        return Some((k, def.get("blueprint").and_then(Value::as_str), many));
    }
    let items = def.get("items").and_then(Value::as_object)?;
    let k = kind(items.get("format"))?;
    many.then(|| (k, items.get("blueprint").and_then(Value::as_str), true))
}

/// The JSON Schema a value of this input (or of its items) must satisfy.
fn value_schema(def: &Map<String, Value>) -> Value {
    let mut schema = Map::new();
    for (key, value) in def {
        match key.as_str() {
            "type" | "enum" | "pattern" | "minLength" | "maxLength" | "minimum" | "maximum"
            | "exclusiveMinimum" | "exclusiveMaximum" | "minItems" | "maxItems" | "uniqueItems" => {
                schema.insert(key.clone(), value.clone());
            }
            "items" => {
                if let Some(items) = value.as_object() {
                    schema.insert("items".into(), value_schema(items));
                }
            }
            "format" => match value.as_str() {
                Some("date-time") => {
                    schema.insert("format".into(), json!("date-time"));
                }
                Some("url") => {
                    schema.insert("format".into(), json!("uri"));
                }
                Some(f @ ("email" | "ipv4" | "ipv6")) => {
                    schema.insert("format".into(), json!(f));
                }
                // A list of entities, users or teams: identifiers.
                Some("entity" | "user" | "team")
                    if def.get("type").and_then(Value::as_str) == Some("array")
                        && !def.contains_key("items") =>
                {
                    schema.insert("items".into(), json!({ "type": "string" }));
                }
                _ => {}
            },
            _ => {}
        }
    }
    Value::Object(schema)
}

/// The values a run ran with, as a request would submit them again: each entity an `entity`
/// input was resolved to goes back to its identifier. (Secret inputs are not among them: a run
/// keeps those sealed, and drops them when it ends.)
pub fn as_submitted(user_inputs: &Value, values: &Value) -> Value {
    let mut values = values.clone();
    let (Some(defs), Some(fields)) = (
        user_inputs.get("properties").and_then(Value::as_object),
        values.as_object_mut(),
    ) else {
        return values;
    };
    let identifier = |v: &mut Value| {
        if let Some(id) = v.get("identifier").cloned() {
            *v = id;
        }
    };
    for (name, value) in fields.iter_mut() {
        let Some(def) = defs.get(name).and_then(Value::as_object) else {
            continue;
        };
        if let Some((Reference::Entity, _, many)) = reference(def) {
            match value {
                Value::Array(items) if many => items.iter_mut().for_each(identifier),
                one => identifier(one),
            }
        }
    }
    values
}

/// Whether `value` holds a `{"jqQuery": ...}` anywhere.
fn has_jq(value: &Value) -> bool {
    match value {
        Value::Object(o) => o.contains_key("jqQuery") || o.values().any(has_jq),
        Value::Array(items) => items.iter().any(has_jq),
        _ => false,
    }
}

/// The validator of an input's schema.
fn validator(schema: &Value) -> Result<Arc<jsonschema::Validator>, String> {
    jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .map(Arc::new)
        .map_err(|e| e.to_string())
}

/// An action's `userInputs` with each input's JSON Schema validator (compiling one costs far
/// more than validating with it), compiled on the first request of an action version and kept
/// with it, so later requests compile nothing and an action whose inputs are never validated
/// (an automation's) compiles none. jq expressions are compiled once per evaluation thread
/// instead: jaq's filters cannot cross threads.
#[derive(Clone)]
pub struct CompiledInputs {
    definition: Value,
    /// Whether any input's field is jq over the form (see [`CompiledInputs::depends_on_form`]).
    dynamic: bool,
    /// Each input's validator, or why its schema does not compile (reported on each request).
    schemas: Arc<std::sync::OnceLock<Schemas>>,
}

type Schemas = HashMap<String, Result<Arc<jsonschema::Validator>, String>>;

impl CompiledInputs {
    /// Compiles `trigger.userInputs` (checked with [`check_definition`] when it was written).
    pub fn compile(user_inputs: &Value) -> Self {
        Self {
            definition: user_inputs.clone(),
            dynamic: has_jq(user_inputs),
            schemas: Arc::default(),
        }
    }

    /// Whether what the inputs show (visible, required, disabled, defaults, datasets) can change
    /// as the form is filled: some field of theirs is `{"jqQuery": ...}`. A form for inputs
    /// without any never needs the server while it is filled.
    pub fn depends_on_form(&self) -> bool {
        self.dynamic
    }

    /// `trigger.userInputs` as written.
    pub fn definition(&self) -> &Value {
        &self.definition
    }

    /// The inputs' definitions by name (`properties`; none when it is missing).
    fn inputs(&self) -> &Map<String, Value> {
        static NONE: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        self.definition
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or_else(|| NONE.get_or_init(Map::new))
    }

    /// Input `name`'s definition (empty when it has none).
    fn input(&self, name: &str) -> &Map<String, Value> {
        static NONE: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        self.inputs()
            .get(name)
            .and_then(Value::as_object)
            .unwrap_or_else(|| NONE.get_or_init(Map::new))
    }

    /// The validator of input `name`'s values.
    fn schema(&self, name: &str) -> Result<Arc<jsonschema::Validator>, String> {
        let schemas = self.schemas.get_or_init(|| {
            let empty = Map::new();
            self.definition
                .get("properties")
                .and_then(Value::as_object)
                .unwrap_or(&empty)
                .iter()
                .map(|(name, def)| {
                    let def = def.as_object().unwrap_or(&empty);
                    (name.clone(), validator(&value_schema(def)))
                })
                .collect()
        });
        match schemas.get(name) {
            Some(compiled) => compiled.clone(),
            None => Err(format!("no input `{name}`")),
        }
    }
}

impl std::fmt::Debug for CompiledInputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledInputs")
            .field("definition", &self.definition)
            .finish_non_exhaustive()
    }
}
