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

use crate::jq;
use async_trait::async_trait;
use portico_catalog::Violation;
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

/// Input types.
const TYPES: &[&str] = &["string", "number", "boolean", "object", "array"];
/// Input formats.
const FORMATS: &[&str] = &[
    "date-time",
    "url",
    "email",
    "ipv4",
    "ipv6",
    "yaml",
    "multi-line",
    "markdown",
    "entity",
    "user",
    "team",
];
/// Keys of an input definition.
const INPUT_KEYS: &[&str] = &[
    "title",
    "description",
    "icon",
    "type",
    "format",
    "default",
    "enum",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "items",
    "minItems",
    "maxItems",
    "uniqueItems",
    "blueprint",
    "dependsOn",
    "visible",
    "disabled",
    "encryption",
];
/// Keys of the `items` of an array input: the value keywords, without the form's behaviour.
const ITEM_KEYS: &[&str] = &[
    "title",
    "description",
    "type",
    "format",
    "enum",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "items",
    "minItems",
    "maxItems",
    "uniqueItems",
    "blueprint",
];
/// Keys of `userInputs`.
const TOP_KEYS: &[&str] = &["properties", "required", "order", "steps", "titles"];
/// Keys of one of `steps`.
const STEP_KEYS: &[&str] = &["title", "description", "order", "visible"];
/// The only encryption.
const ENCRYPTION: &str = "aes256-gcm";
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
    /// Whether a user with this identifier (or email) exists.
    async fn user_exists(&self, identifier: &str) -> bool;
    /// Whether a team with this name exists.
    async fn team_exists(&self, name: &str) -> bool;
}

fn violation(path: impl Into<String>, message: impl Into<String>) -> Violation {
    Violation {
        path: path.into(),
        message: message.into(),
    }
}

/// Port's identifier alphabet: `^[A-Za-z0-9@_=\-]+$`.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '@' | '_' | '=' | '-'))
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

/// The compiled validator of an input's schema. Compiling costs far more than validating, and
/// the same few schemas come back on every run, so they are kept (by their text).
fn validator(schema: &Value) -> Result<std::sync::Arc<jsonschema::Validator>, String> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    static COMPILED: OnceLock<Mutex<HashMap<String, Arc<jsonschema::Validator>>>> = OnceLock::new();
    const MAX_KEPT: usize = 4096;
    let key = schema.to_string();
    let cache = COMPILED.get_or_init(Mutex::default);
    if let Some(v) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(v.clone());
    }
    let compiled = jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .map_err(|e| e.to_string())?;
    let compiled = Arc::new(compiled);
    let mut kept = cache.lock().unwrap_or_else(|e| e.into_inner());
    if kept.len() >= MAX_KEPT {
        kept.clear();
    }
    kept.insert(key, compiled.clone());
    Ok(compiled)
}

// ---------------------------------------------------------------------------------------------
// The definition.

/// Checks an action's `trigger.userInputs` when the action is written.
///
/// Every problem is reported, each at its path in the action, such as
/// `trigger.userInputs.properties.name.type` or
/// `trigger.userInputs.properties.env.visible.jqQuery` (a jq expression that does not compile).
/// What is checked:
/// - input names match `^[A-Za-z0-9@_=\-]+$`, and each definition uses only known keys;
/// - `type` is string, number, boolean, object or array; `format` is date-time, url, email, ipv4,
///   ipv6, yaml, multi-line, markdown (strings), or entity, user, team (strings, or lists of
///   them); `entity` requires `blueprint`;
/// - the value keywords are well formed: `enum` a non-empty list, `pattern` a regular expression,
///   `minimum`/`maximum`/`exclusiveMinimum`/`exclusiveMaximum` numbers, lengths and item counts
///   non-negative integers, `uniqueItems` a boolean, `items` an item definition;
/// - `visible` and `disabled` are booleans, `default` a valid value, and each may be
///   `{"jqQuery": "..."}` whose expression compiles;
/// - `dependsOn` names other inputs; `encryption` is `aes256-gcm`, on a string or object input;
/// - `required` lists inputs, or is `{"jqQuery": "..."}`; `order` and every `steps[i].order` list
///   inputs (or `titles`).
pub fn check_definition(user_inputs: &Value) -> Result<(), Vec<Violation>> {
    let mut problems = Vec::new();
    let Some(top) = user_inputs.as_object() else {
        return Err(vec![violation(
            PREFIX,
            "must be an object with `properties` and `required`",
        )]);
    };
    for key in top.keys() {
        if !TOP_KEYS.contains(&key.as_str()) {
            problems.push(violation(
                format!("{PREFIX}.{key}"),
                format!("unknown key; allowed: {}", TOP_KEYS.join(", ")),
            ));
        }
    }
    let empty = Map::new();
    let inputs = match top.get("properties") {
        None => &empty,
        Some(Value::Object(inputs)) => inputs,
        Some(_) => {
            problems.push(violation(
                format!("{PREFIX}.properties"),
                "must be an object: input name -> definition",
            ));
            &empty
        }
    };
    for (name, def) in inputs {
        check_input(name, def, inputs, &mut problems);
    }

    match top.get("required").map(field) {
        None => {}
        Some(Field::Jq(code)) => {
            check_jq(&format!("{PREFIX}.required.jqQuery"), code, &mut problems)
        }
        Some(Field::Plain(Value::Array(names))) => check_names(
            &format!("{PREFIX}.required"),
            names,
            inputs,
            None,
            &mut problems,
        ),
        Some(_) => problems.push(violation(
            format!("{PREFIX}.required"),
            "must be a list of input names, or {\"jqQuery\": \"...\"} returning one",
        )),
    }

    let titles = match top.get("titles") {
        None => None,
        Some(Value::Object(titles)) => Some(titles),
        Some(_) => {
            problems.push(violation(
                format!("{PREFIX}.titles"),
                "must be an object: title name -> {title, description}",
            ));
            None
        }
    };
    match top.get("order") {
        None => {}
        Some(Value::Array(names)) => check_names(
            &format!("{PREFIX}.order"),
            names,
            inputs,
            titles,
            &mut problems,
        ),
        Some(_) => problems.push(violation(
            format!("{PREFIX}.order"),
            "must be a list of input names",
        )),
    }
    match top.get("steps") {
        None => {}
        Some(Value::Array(steps)) => {
            for (i, step) in steps.iter().enumerate() {
                check_step(
                    &format!("{PREFIX}.steps[{i}]"),
                    step,
                    inputs,
                    titles,
                    &mut problems,
                );
            }
        }
        Some(_) => problems.push(violation(
            format!("{PREFIX}.steps"),
            "must be a list of {title, order}",
        )),
    }

    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

fn check_step(
    path: &str,
    step: &Value,
    inputs: &Map<String, Value>,
    titles: Option<&Map<String, Value>>,
    problems: &mut Vec<Violation>,
) {
    let Some(step) = step.as_object() else {
        problems.push(violation(
            path,
            "must be an object with `title` and `order`",
        ));
        return;
    };
    for key in step.keys() {
        if !STEP_KEYS.contains(&key.as_str()) {
            problems.push(violation(
                format!("{path}.{key}"),
                format!("unknown key; allowed: {}", STEP_KEYS.join(", ")),
            ));
        }
    }
    for key in ["title", "description"] {
        if step.get(key).is_some_and(|v| !v.is_string()) {
            problems.push(violation(format!("{path}.{key}"), "must be a string"));
        }
    }
    match step.get("order") {
        Some(Value::Array(names)) => {
            check_names(&format!("{path}.order"), names, inputs, titles, problems)
        }
        _ => problems.push(violation(
            format!("{path}.order"),
            "required: the list of the step's inputs",
        )),
    }
    if let Some(visible) = step.get("visible") {
        check_flag(&format!("{path}.visible"), visible, problems);
    }
}

/// A list of input names (or title names, where `titles` is given), each listed once.
fn check_names(
    path: &str,
    names: &[Value],
    inputs: &Map<String, Value>,
    titles: Option<&Map<String, Value>>,
    problems: &mut Vec<Violation>,
) {
    let mut seen = BTreeSet::new();
    for (i, name) in names.iter().enumerate() {
        let at = format!("{path}[{i}]");
        match name.as_str() {
            None => problems.push(violation(at, "must be an input name")),
            Some(n) if !seen.insert(n) => {
                problems.push(violation(at, format!("`{n}` is listed twice")))
            }
            Some(n) if inputs.contains_key(n) || titles.is_some_and(|t| t.contains_key(n)) => {}
            Some(n) => problems.push(violation(
                at,
                format!("`{n}` is not an input of this action"),
            )),
        }
    }
}

fn check_jq(path: &str, code: &str, problems: &mut Vec<Violation>) {
    if let Err(e) = jq::check(code) {
        problems.push(violation(path, e));
    }
}

/// `true`, `false` or `{"jqQuery": "..."}`.
fn check_flag(path: &str, value: &Value, problems: &mut Vec<Violation>) {
    match field(value) {
        Field::Plain(Value::Bool(_)) => {}
        Field::Jq(code) => check_jq(&format!("{path}.jqQuery"), code, problems),
        _ => problems.push(violation(
            path,
            "must be true, false or {\"jqQuery\": \"...\"}",
        )),
    }
}

fn check_input(
    name: &str,
    def: &Value,
    inputs: &Map<String, Value>,
    problems: &mut Vec<Violation>,
) {
    let path = format!("{PREFIX}.properties.{name}");
    if !valid_name(name) {
        problems.push(violation(
            &path,
            "an input name uses letters, digits, `@`, `_`, `=`, `-`",
        ));
    }
    let Some(def) = def.as_object() else {
        problems.push(violation(&path, "must be an object with `type`"));
        return;
    };
    check_keywords(&path, def, INPUT_KEYS, problems);
    let ty = def.get("type").and_then(Value::as_str);

    if let Some(depends) = def.get("dependsOn") {
        match depends.as_array() {
            Some(names) => {
                for (i, other) in names.iter().enumerate() {
                    let at = format!("{path}.dependsOn[{i}]");
                    match other.as_str() {
                        Some(o) if o == name => {
                            problems.push(violation(at, "an input cannot depend on itself"))
                        }
                        Some(o) if inputs.contains_key(o) => {}
                        Some(o) => problems.push(violation(
                            at,
                            format!("`{o}` is not an input of this action"),
                        )),
                        None => problems.push(violation(at, "must be an input name")),
                    }
                }
            }
            None => problems.push(violation(
                format!("{path}.dependsOn"),
                "must be a list of input names",
            )),
        }
    }
    for flag in ["visible", "disabled"] {
        if let Some(value) = def.get(flag) {
            check_flag(&format!("{path}.{flag}"), value, problems);
        }
    }
    match def.get("default").map(field) {
        None | Some(Field::Plain(Value::Null)) => {}
        Some(Field::Jq(code)) => check_jq(&format!("{path}.default.jqQuery"), code, problems),
        Some(Field::BadJq) => problems.push(violation(
            format!("{path}.default"),
            "a computed default is exactly {\"jqQuery\": \"...\"}",
        )),
        Some(Field::Plain(value)) => {
            // The default must itself be a valid value (when the definition is usable at all).
            if let Ok(v) = validator(&value_schema(def))
                && !v.is_valid(value)
            {
                problems.push(violation(
                    format!("{path}.default"),
                    "is not a valid value for this input",
                ));
            }
        }
    }
    if let Some(encryption) = def.get("encryption") {
        if encryption.as_str() != Some(ENCRYPTION) {
            problems.push(violation(
                format!("{path}.encryption"),
                format!("the only encryption is `{ENCRYPTION}`"),
            ));
        } else if !matches!(ty, Some("string" | "object")) {
            problems.push(violation(
                format!("{path}.encryption"),
                "only string and object inputs can be encrypted",
            ));
        }
    }
}

/// The keys, type, format and value keywords of an input or of its `items`.
fn check_keywords(
    path: &str,
    def: &Map<String, Value>,
    allowed: &[&str],
    problems: &mut Vec<Violation>,
) {
    for key in def.keys() {
        if !allowed.contains(&key.as_str()) {
            problems.push(violation(
                format!("{path}.{key}"),
                format!("unknown key; allowed: {}", allowed.join(", ")),
            ));
        }
    }
    for key in ["title", "description", "icon"] {
        if def.get(key).is_some_and(|v| !v.is_string()) {
            problems.push(violation(format!("{path}.{key}"), "must be a string"));
        }
    }
    let ty = def.get("type").and_then(Value::as_str);
    match (def.get("type"), ty) {
        (_, Some(t)) if TYPES.contains(&t) => {}
        (None, _) => problems.push(violation(
            format!("{path}.type"),
            format!("required: one of {}", TYPES.join(", ")),
        )),
        (Some(t), _) => problems.push(violation(
            format!("{path}.type"),
            format!("unknown type {t}; expected one of {}", TYPES.join(", ")),
        )),
    }
    let format = def.get("format");
    if let Some(format) = format {
        match format.as_str() {
            Some(f @ ("entity" | "user" | "team")) => {
                if !matches!(ty, Some("string" | "array")) {
                    problems.push(violation(
                        format!("{path}.format"),
                        format!("`{f}` applies to string inputs, or array inputs for several"),
                    ));
                }
            }
            Some(f) if FORMATS.contains(&f) => {
                if ty != Some("string") {
                    problems.push(violation(
                        format!("{path}.format"),
                        format!("`{f}` applies to string inputs (for a list, set it on `items`)"),
                    ));
                }
            }
            _ => problems.push(violation(
                format!("{path}.format"),
                format!(
                    "unknown format {format}; expected one of {}",
                    FORMATS.join(", ")
                ),
            )),
        }
    }
    let is_entity = format.and_then(Value::as_str) == Some("entity");
    match def.get("blueprint") {
        None if is_entity => problems.push(violation(
            format!("{path}.blueprint"),
            "required with format entity: the blueprint the entity belongs to",
        )),
        Some(b) if is_entity && b.as_str().is_none_or(str::is_empty) => problems.push(violation(
            format!("{path}.blueprint"),
            "must be a blueprint identifier",
        )),
        Some(_) if !is_entity => problems.push(violation(
            format!("{path}.blueprint"),
            "applies only to inputs with format entity",
        )),
        _ => {}
    }
    if def
        .get("enum")
        .is_some_and(|v| v.as_array().is_none_or(|a| a.is_empty()))
    {
        problems.push(violation(
            format!("{path}.enum"),
            "must be a non-empty list of values",
        ));
    }
    if let Some(pattern) = def.get("pattern") {
        let compiles = pattern
            .as_str()
            .is_some_and(|p| validator(&json!({ "type": "string", "pattern": p })).is_ok());
        if !compiles {
            problems.push(violation(
                format!("{path}.pattern"),
                "must be a valid regular expression",
            ));
        }
    }
    for key in ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"] {
        if def.get(key).is_some_and(|v| !v.is_number()) {
            problems.push(violation(format!("{path}.{key}"), "must be a number"));
        }
    }
    for key in ["minLength", "maxLength", "minItems", "maxItems"] {
        if def.get(key).is_some_and(|v| !v.is_u64()) {
            problems.push(violation(
                format!("{path}.{key}"),
                "must be a non-negative integer",
            ));
        }
    }
    if def.get("uniqueItems").is_some_and(|v| !v.is_boolean()) {
        problems.push(violation(
            format!("{path}.uniqueItems"),
            "must be true or false",
        ));
    }
    match def.get("items") {
        None => {}
        Some(_) if ty != Some("array") => problems.push(violation(
            format!("{path}.items"),
            "applies only to array inputs",
        )),
        Some(Value::Object(items)) => {
            check_keywords(&format!("{path}.items"), items, ITEM_KEYS, problems)
        }
        Some(_) => problems.push(violation(
            format!("{path}.items"),
            "must be an object describing each item, such as {\"type\": \"string\"}",
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// A run's values.

/// Evaluates the jq expressions of one run, keeping secrets out of error messages.
struct Evaluator<'a> {
    context: &'a InputContext,
    /// The text of the secret inputs' values: a message containing any of them is withheld.
    secret_texts: Vec<String>,
}

impl Evaluator<'_> {
    fn run(&self, code: &str, form: &Map<String, Value>) -> Result<Value, String> {
        let input = json!({
            "form": form,
            "entity": self.context.entity.clone().unwrap_or(Value::Null),
            "user": self.context.user,
        });
        jq::first(code, &input).map_err(|e| {
            let e = e.to_string();
            if self.secret_texts.iter().any(|s| e.contains(s.as_str())) {
                "jq error (details withheld: they would show a secret input)".to_owned()
            } else {
                e
            }
        })
    }

    /// A boolean field; `Err` holds the violation, at the jq expression's path.
    fn flag(
        &self,
        path: &str,
        value: Option<&Value>,
        absent: bool,
        form: &Map<String, Value>,
    ) -> Result<bool, Violation> {
        match value.map(field) {
            None => Ok(absent),
            Some(Field::Plain(Value::Bool(b))) => Ok(*b),
            Some(Field::Jq(code)) => {
                let at = format!("{path}.jqQuery");
                match self.run(code, form) {
                    Ok(Value::Bool(b)) => Ok(b),
                    Ok(other) => Err(violation(
                        at,
                        format!("must return true or false, not {}", type_name(&other)),
                    )),
                    Err(e) => Err(violation(at, e)),
                }
            }
            Some(_) => Err(violation(
                path,
                "must be true, false or {\"jqQuery\": \"...\"}",
            )),
        }
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The text of every string inside a value.
fn texts(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) if !s.is_empty() => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|v| texts(v, out)),
        Value::Object(o) => o.values().for_each(|v| texts(v, out)),
        _ => {}
    }
}

/// `properties.<name>` followed by a JSON pointer inside the value, in dots.
fn value_path(name: &str, pointer: &str) -> String {
    format!("properties.{name}{}", pointer.replace('/', "."))
}

/// A value to look up once the synchronous checks are done.
struct Pending {
    name: String,
    kind: Reference,
    blueprint: Option<String>,
    many: bool,
    secret: bool,
}

/// Checks a run's `properties` against the action's `userInputs` and returns the values to run
/// with.
///
/// The rules, in order (every problem is collected, each at `properties.<name>`, or at the path of
/// the jq expression in the action for one that fails, such as
/// `trigger.userInputs.properties.env.visible.jqQuery`):
/// 1. a submitted key that is not an input is an error; `null` counts as no value;
/// 2. `default` (a value, or a jq expression: expressions run in the order of `properties`, each
///    seeing the defaults before it) fills inputs without a value;
/// 3. `visible` (default true; a step whose `visible` is false hides its inputs): a hidden input is
///    dropped from the result and never required;
/// 4. `disabled`: a disabled input keeps its default, and submitting another value is an error;
/// 5. `dependsOn`: an input has a value only when every input it depends on has one; a submitted
///    value is then an error, a default is dropped;
/// 6. `required` (a list, or a jq expression returning one): a required visible input without a
///    value is an error;
/// 7. each value must satisfy the JSON Schema of its definition (type, enum, pattern, lengths,
///    bounds, items, and formats date-time, url, email, ipv4, ipv6);
/// 8. `format: entity`: the identifier (or each, for a list) must name an entity of `blueprint`,
///    and is replaced by that entity; `format: user` and `team` must name an existing user or team.
///
/// A jq expression that fails, or returns the wrong kind of value, is an error: the run is
/// refused. Messages never show the value of an input with `encryption`.
pub async fn validate(
    user_inputs: &Value,
    submitted: &Value,
    context: &InputContext,
    lookup: &dyn InputLookup,
) -> Result<Validated, Vec<Violation>> {
    let (mut values, pending, secrets, mut problems) =
        check_values(user_inputs, submitted, context)?;

    for p in pending {
        let Some(value) = values.get(&p.name).cloned() else {
            continue;
        };
        let ids: Vec<(String, Option<&str>)> = if p.many {
            match &value {
                Value::Array(items) => items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (value_path(&p.name, &format!("/{i}")), v.as_str()))
                    .collect(),
                _ => continue, // The schema check has reported it.
            }
        } else {
            vec![(value_path(&p.name, ""), value.as_str())]
        };
        let mut resolved = Vec::new();
        for (path, id) in ids {
            let Some(id) = id else {
                problems.push(violation(path, "must be an identifier (a string)"));
                continue;
            };
            let shown = if p.secret {
                String::new()
            } else {
                format!(" `{id}`")
            };
            match p.kind {
                Reference::Entity => {
                    let blueprint = p.blueprint.as_deref().unwrap_or_default();
                    match lookup.entity(blueprint, id).await {
                        Some(entity) => resolved.push(entity),
                        None => problems.push(violation(
                            path,
                            format!("no entity{shown} in blueprint `{blueprint}`"),
                        )),
                    }
                }
                Reference::User => {
                    if !lookup.user_exists(id).await {
                        problems.push(violation(path, format!("no user{shown}")));
                    }
                }
                Reference::Team => {
                    if !lookup.team_exists(id).await {
                        problems.push(violation(path, format!("no team{shown}")));
                    }
                }
            }
        }
        if p.kind == Reference::Entity {
            let replaced = if p.many {
                Value::Array(resolved)
            } else {
                resolved.pop().unwrap_or(Value::Null)
            };
            values.insert(p.name, replaced);
        }
    }

    if problems.is_empty() {
        Ok(Validated {
            properties: Value::Object(values),
            secrets,
        })
    } else {
        Err(problems)
    }
}

type Checked = (
    Map<String, Value>,
    Vec<Pending>,
    Vec<String>,
    Vec<Violation>,
);

/// Rules 1 to 7, and what rule 8 must look up. Synchronous: jaq's values never cross an await.
fn check_values(
    user_inputs: &Value,
    submitted: &Value,
    context: &InputContext,
) -> Result<Checked, Vec<Violation>> {
    let empty = Map::new();
    let inputs = user_inputs
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let def = |name: &str| {
        inputs
            .get(name)
            .and_then(Value::as_object)
            .unwrap_or(&empty)
    };
    let submitted = match submitted {
        Value::Null => &empty,
        Value::Object(values) => values,
        _ => return Err(vec![violation("properties", "must be an object")]),
    };
    let mut problems = Vec::new();

    // 1. Unknown keys.
    for key in submitted.keys() {
        if !inputs.contains_key(key) {
            problems.push(violation(
                format!("properties.{key}"),
                "not an input of this action",
            ));
        }
    }
    let given: Map<String, Value> = submitted
        .iter()
        .filter(|(k, v)| inputs.contains_key(*k) && !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let is_secret = |name: &str| def(name).contains_key("encryption");
    let mut secret_texts = Vec::new();
    for (name, value) in &given {
        if is_secret(name) {
            texts(value, &mut secret_texts);
        }
    }
    let mut eval = Evaluator {
        context,
        secret_texts,
    };

    // 2. Defaults: plain ones first, then computed ones in order.
    let mut form = given.clone();
    let mut defaults = Map::new();
    for name in inputs.keys() {
        if let Some(Field::Plain(value)) = def(name).get("default").map(field)
            && !value.is_null()
        {
            defaults.insert(name.clone(), value.clone());
            form.entry(name.clone()).or_insert_with(|| value.clone());
        }
    }
    for name in inputs.keys() {
        let path = format!("{PREFIX}.properties.{name}.default");
        match def(name).get("default").map(field) {
            Some(Field::Jq(code)) => match eval.run(code, &form) {
                Ok(Value::Null) => {}
                Ok(value) => {
                    defaults.insert(name.clone(), value.clone());
                    form.entry(name.clone()).or_insert(value);
                }
                Err(e) => problems.push(violation(format!("{path}.jqQuery"), e)),
            },
            Some(Field::BadJq) => problems.push(violation(
                path,
                "a computed default is exactly {\"jqQuery\": \"...\"}",
            )),
            _ => {}
        }
    }
    for (name, value) in &form {
        if is_secret(name) {
            texts(value, &mut eval.secret_texts);
        }
    }

    // 3. Visibility, of the inputs and of the steps that hold them.
    let mut hidden = BTreeSet::new();
    for name in inputs.keys() {
        let path = format!("{PREFIX}.properties.{name}.visible");
        match eval.flag(&path, def(name).get("visible"), true, &form) {
            Ok(true) => {}
            Ok(false) => {
                hidden.insert(name.clone());
            }
            Err(v) => problems.push(v),
        }
    }
    if let Some(steps) = user_inputs.get("steps").and_then(Value::as_array) {
        for (i, step) in steps.iter().enumerate() {
            let path = format!("{PREFIX}.steps[{i}].visible");
            match eval.flag(&path, step.get("visible"), true, &form) {
                Ok(true) => {}
                Ok(false) => {
                    let names = step.get("order").and_then(Value::as_array);
                    for name in names.into_iter().flatten().filter_map(Value::as_str) {
                        hidden.insert(name.to_owned());
                    }
                }
                Err(v) => problems.push(v),
            }
        }
    }
    let mut values: Map<String, Value> = form
        .iter()
        .filter(|(name, _)| !hidden.contains(*name))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();

    // 4. Disabled inputs keep their default.
    let mut fixed = BTreeSet::new();
    for name in inputs.keys().filter(|n| !hidden.contains(*n)) {
        let path = format!("{PREFIX}.properties.{name}.disabled");
        match eval.flag(&path, def(name).get("disabled"), false, &form) {
            Ok(false) => {}
            Ok(true) => {
                fixed.insert(name.clone());
                let default = defaults.get(name);
                if let Some(value) = given.get(name)
                    && Some(value) != default
                {
                    let message = if default.is_some() {
                        "is disabled: it keeps its default and cannot be set"
                    } else {
                        "is disabled: it takes no value"
                    };
                    problems.push(violation(format!("properties.{name}"), message));
                }
                match default {
                    Some(d) => values.insert(name.clone(), d.clone()),
                    None => values.remove(name),
                };
            }
            Err(v) => problems.push(v),
        }
    }

    // 5. dependsOn: drop defaults whose dependencies have no value, until nothing changes; a
    // submitted value is an error.
    let depends = |name: &str| -> Vec<String> {
        def(name)
            .get("dependsOn")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    };
    let mut reported = BTreeSet::new();
    loop {
        let mut changed = false;
        let names: Vec<String> = values.keys().cloned().collect();
        for name in names {
            let missing: Vec<String> = depends(&name)
                .into_iter()
                .filter(|d| !values.contains_key(d))
                .collect();
            if missing.is_empty() {
                continue;
            }
            if given.contains_key(&name) && !fixed.contains(&name) {
                if reported.insert(name.clone()) {
                    let list = missing
                        .iter()
                        .map(|d| format!("`{d}`"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    problems.push(violation(
                        format!("properties.{name}"),
                        format!("depends on {list}, which has no value: fill it in first"),
                    ));
                }
            } else {
                values.remove(&name);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }

    // 6. Required inputs.
    let required: Vec<String> = match user_inputs.get("required").map(field) {
        None => Vec::new(),
        Some(Field::Plain(Value::Array(names))) => names
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(Field::Jq(code)) => {
            let path = format!("{PREFIX}.required.jqQuery");
            match eval.run(code, &form) {
                Ok(Value::Array(names)) if names.iter().all(Value::is_string) => names
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
                Ok(Value::Null) => Vec::new(),
                Ok(other) => {
                    problems.push(violation(
                        path,
                        format!(
                            "must return a list of input names, not {}",
                            type_name(&other)
                        ),
                    ));
                    Vec::new()
                }
                Err(e) => {
                    problems.push(violation(path, e));
                    Vec::new()
                }
            }
        }
        Some(_) => {
            problems.push(violation(
                format!("{PREFIX}.required"),
                "must be a list of input names, or {\"jqQuery\": \"...\"} returning one",
            ));
            Vec::new()
        }
    };
    let required: BTreeSet<String> = required.into_iter().collect();
    for name in &required {
        if inputs.contains_key(name) && !hidden.contains(name) && !values.contains_key(name) {
            let waiting: Vec<String> = depends(name)
                .into_iter()
                .filter(|d| !values.contains_key(d))
                .map(|d| format!("`{d}`"))
                .collect();
            let message = if waiting.is_empty() {
                "required".to_owned()
            } else {
                format!(
                    "required; it depends on {}: fill that in first",
                    waiting.join(", ")
                )
            };
            problems.push(violation(format!("properties.{name}"), message));
        }
    }

    // 7. Each value against its JSON Schema.
    let mut invalid = BTreeSet::new();
    for (name, value) in &values {
        match validator(&value_schema(def(name))) {
            Ok(schema) => {
                for e in schema.iter_errors(value) {
                    invalid.insert(name.clone());
                    let path = value_path(name, e.instance_path().as_str());
                    let message = if is_secret(name) {
                        "is not a valid value for this input (details withheld: the input is secret)"
                            .to_owned()
                    } else {
                        e.to_string()
                    };
                    problems.push(violation(path, message));
                }
            }
            Err(e) => {
                invalid.insert(name.clone());
                problems.push(violation(
                    format!("{PREFIX}.properties.{name}"),
                    format!("the definition cannot check values: {e}"),
                ));
            }
        }
    }

    // 8 is asynchronous: say what to look up.
    let pending = values
        .keys()
        .filter(|name| !invalid.contains(*name))
        .filter_map(|name| {
            let (kind, blueprint, many) = reference(def(name))?;
            Some(Pending {
                name: name.clone(),
                kind,
                blueprint: blueprint.map(str::to_owned),
                many,
                secret: is_secret(name),
            })
        })
        .collect();
    let secrets = values.keys().filter(|n| is_secret(n)).cloned().collect();
    Ok((values, pending, secrets, problems))
}
