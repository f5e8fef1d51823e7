//! Blueprints as the API receives them, their validation, and the JSON Schema their entities are
//! checked against.

use crate::error::{CatalogError, Result, Violation};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// A blueprint as written by an admin.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BlueprintInput {
    /// Unique id: letters, digits, `@`, `_`, `=`, `-`.
    pub identifier: String,
    /// Display name.
    #[serde(default)]
    pub title: Option<String>,
    /// Icon name.
    #[serde(default)]
    pub icon: Option<String>,
    /// What it models.
    #[serde(default)]
    pub description: Option<String>,
    /// `{properties, required}`.
    #[serde(default = "empty_schema")]
    pub schema: Value,
    /// `{name: {target, title, required, many}}`.
    #[serde(default = "empty_object")]
    pub relations: Value,
}

fn empty_schema() -> Value {
    json!({ "properties": {}, "required": [] })
}

fn empty_object() -> Value {
    json!({})
}

const TYPES: &[&str] = &["string", "number", "boolean", "object", "array"];
const FORMATS: &[&str] = &[
    "date-time",
    "url",
    "email",
    "ipv4",
    "ipv6",
    "yaml",
    "markdown",
    "timer",
    "user",
    "team",
];
const PROPERTY_KEYS: &[&str] = &[
    "type",
    "title",
    "description",
    "icon",
    "format",
    "enum",
    "pattern",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "default",
    "items",
    "minItems",
    "maxItems",
];

/// Letters, digits, `@`, `_`, `=`, `-` (Port's identifier alphabet), 1 to 100 characters.
pub(crate) fn valid_identifier(id: &str) -> bool {
    (1..=100).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '@' | '_' | '=' | '-'))
}

/// Checks a blueprint; `exists` says whether a relation target blueprint exists.
pub(crate) fn validate(input: &BlueprintInput, exists: &dyn Fn(&str) -> bool) -> Result<()> {
    let mut problems = Vec::new();
    if !valid_identifier(&input.identifier) {
        problems.push(Violation::new(
            "identifier",
            "must be 1-100 letters, digits, `@`, `_`, `=` or `-`",
        ));
    }

    let properties = match input.schema.get("properties") {
        None => Map::new(),
        Some(Value::Object(map)) => map.clone(),
        Some(_) => {
            problems.push(Violation::new("schema.properties", "must be an object"));
            Map::new()
        }
    };
    if let Some(Value::Object(schema)) = Some(&input.schema) {
        for key in schema.keys() {
            if key != "properties" && key != "required" {
                problems.push(Violation::new(
                    format!("schema.{key}"),
                    "unknown key; a schema has `properties` and `required`",
                ));
            }
        }
    } else {
        problems.push(Violation::new("schema", "must be an object"));
    }
    for (name, def) in &properties {
        check_property(
            &format!("schema.properties.{name}"),
            name,
            def,
            &mut problems,
        );
    }
    match input.schema.get("required") {
        None => {}
        Some(Value::Array(names)) => {
            for (i, name) in names.iter().enumerate() {
                match name.as_str() {
                    Some(n) if properties.contains_key(n) => {}
                    Some(n) => problems.push(Violation::new(
                        format!("schema.required[{i}]"),
                        format!("`{n}` is not a property of this blueprint"),
                    )),
                    None => problems.push(Violation::new(
                        format!("schema.required[{i}]"),
                        "must be a property name",
                    )),
                }
            }
        }
        Some(_) => problems.push(Violation::new(
            "schema.required",
            "must be a list of property names",
        )),
    }

    match &input.relations {
        Value::Object(relations) => {
            for (name, def) in relations {
                let path = format!("relations.{name}");
                if !valid_identifier(name) {
                    problems.push(Violation::new(
                        &path,
                        "a relation name uses letters, digits, `@`, `_`, `=`, `-`",
                    ));
                }
                let Some(def) = def.as_object() else {
                    problems.push(Violation::new(&path, "must be an object with `target`"));
                    continue;
                };
                for key in def.keys() {
                    if !matches!(
                        key.as_str(),
                        "target" | "title" | "required" | "many" | "description"
                    ) {
                        problems.push(Violation::new(
                            format!("{path}.{key}"),
                            "unknown key; a relation has target, title, required, many",
                        ));
                    }
                }
                match def.get("target").and_then(Value::as_str) {
                    None => problems.push(Violation::new(
                        format!("{path}.target"),
                        "required: the target blueprint's identifier",
                    )),
                    Some(t) if t == input.identifier || exists(t) => {}
                    Some(t) => problems.push(Violation::new(
                        format!("{path}.target"),
                        format!("blueprint `{t}` does not exist"),
                    )),
                }
                for flag in ["required", "many"] {
                    if def.get(flag).is_some_and(|v| !v.is_boolean()) {
                        problems.push(Violation::new(
                            format!("{path}.{flag}"),
                            "must be true or false",
                        ));
                    }
                }
            }
        }
        _ => problems.push(Violation::new("relations", "must be an object")),
    }

    if problems.is_empty() {
        Ok(())
    } else {
        Err(CatalogError::invalid(problems))
    }
}

fn check_property(path: &str, name: &str, def: &Value, problems: &mut Vec<Violation>) {
    if !valid_identifier(name) {
        problems.push(Violation::new(
            path,
            "a property name uses letters, digits, `@`, `_`, `=`, `-`",
        ));
    }
    let Some(def) = def.as_object() else {
        problems.push(Violation::new(path, "must be an object with `type`"));
        return;
    };
    for key in def.keys() {
        if !PROPERTY_KEYS.contains(&key.as_str()) {
            problems.push(Violation::new(
                format!("{path}.{key}"),
                format!("unknown key; allowed: {}", PROPERTY_KEYS.join(", ")),
            ));
        }
    }
    let ty = def.get("type").and_then(Value::as_str);
    match ty {
        Some(t) if TYPES.contains(&t) => {}
        Some(t) => problems.push(Violation::new(
            format!("{path}.type"),
            format!("unknown type `{t}`; expected one of {}", TYPES.join(", ")),
        )),
        None => problems.push(Violation::new(
            format!("{path}.type"),
            format!("required: one of {}", TYPES.join(", ")),
        )),
    }
    if let Some(format) = def.get("format") {
        match format.as_str() {
            Some(f) if FORMATS.contains(&f) => {
                if ty != Some("string") {
                    problems.push(Violation::new(
                        format!("{path}.format"),
                        "formats apply to string properties",
                    ));
                }
            }
            _ => problems.push(Violation::new(
                format!("{path}.format"),
                format!(
                    "unknown format {format}; expected one of {}",
                    FORMATS.join(", ")
                ),
            )),
        }
    }
    for key in ["minimum", "maximum"] {
        if def.get(key).is_some_and(|v| !v.is_number()) {
            problems.push(Violation::new(format!("{path}.{key}"), "must be a number"));
        }
    }
    for key in ["minLength", "maxLength", "minItems", "maxItems"] {
        if def.get(key).is_some_and(|v| !v.is_u64()) {
            problems.push(Violation::new(
                format!("{path}.{key}"),
                "must be a non-negative integer",
            ));
        }
    }
    if def
        .get("enum")
        .is_some_and(|v| v.as_array().is_none_or(|a| a.is_empty()))
    {
        problems.push(Violation::new(
            format!("{path}.enum"),
            "must be a non-empty list",
        ));
    }
    if let Some(pattern) = def.get("pattern") {
        let compiles = pattern.as_str().is_some_and(|p| {
            jsonschema::validator_for(&json!({ "type": "string", "pattern": p })).is_ok()
        });
        if !compiles {
            problems.push(Violation::new(
                format!("{path}.pattern"),
                "must be a valid regular expression",
            ));
        }
    }
    if let Some(default) = def.get("default") {
        // The default must itself be a valid value.
        let schema = property_schema(def);
        if let Ok(v) = jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            && !v.is_valid(default)
        {
            problems.push(Violation::new(
                format!("{path}.default"),
                "is not a valid value for this property",
            ));
        }
    }
}

/// The JSON Schema of one property definition.
fn property_schema(def: &Map<String, Value>) -> Value {
    let mut schema = Map::new();
    for (key, value) in def {
        match key.as_str() {
            "type" | "enum" | "pattern" | "minimum" | "maximum" | "minLength" | "maxLength"
            | "items" | "minItems" | "maxItems" => {
                schema.insert(key.clone(), value.clone());
            }
            "format" => match value.as_str() {
                Some("date-time" | "timer") => {
                    schema.insert("format".into(), json!("date-time"));
                }
                Some("url") => {
                    schema.insert("format".into(), json!("uri"));
                }
                Some(f @ ("email" | "ipv4" | "ipv6")) => {
                    schema.insert("format".into(), json!(f));
                }
                _ => {}
            },
            _ => {}
        }
    }
    Value::Object(schema)
}

/// The JSON Schema an entity's `properties` must satisfy.
pub(crate) fn entity_schema(schema: &Value) -> Value {
    let mut properties = Map::new();
    if let Some(Value::Object(defs)) = schema.get("properties") {
        for (name, def) in defs {
            if let Some(def) = def.as_object() {
                properties.insert(name.clone(), property_schema(def));
            }
        }
    }
    json!({
        "type": "object",
        "properties": properties,
        "required": schema.get("required").cloned().unwrap_or(json!([])),
        "additionalProperties": false,
    })
}

/// Default values of properties that have one.
pub(crate) fn defaults(schema: &Value) -> Vec<(String, Value)> {
    let Some(Value::Object(defs)) = schema.get("properties") else {
        return Vec::new();
    };
    defs.iter()
        .filter_map(|(name, def)| def.get("default").map(|d| (name.clone(), d.clone())))
        .collect()
}
