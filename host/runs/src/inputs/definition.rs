//! Checking an action's `trigger.userInputs` when the action is written.

use super::*;
use crate::jq;

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
    "dataset",
    "enumColors",
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

/// Port's identifier alphabet: `^[A-Za-z0-9@_=\-]+$`.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '@' | '_' | '=' | '-'))
}

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
    if let Some(dataset) = def.get("dataset") {
        check_dataset(&format!("{path}.dataset"), dataset, def, problems);
    }
    if let Some(colors) = def.get("enumColors") {
        check_enum_colors(&format!("{path}.enumColors"), colors, def, problems);
    }

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
/// `dataset` (Port's entity filter): a search rule set (`{combinator, rules}`, as the search API
/// takes) narrowing which entities an `entity` input accepts. A rule's `value` may be
/// `{"jqQuery": "..."}`, run over `{form, entity, user}` when a run is requested.
fn check_dataset(
    path: &str,
    dataset: &Value,
    def: &Map<String, Value>,
    problems: &mut Vec<Violation>,
) {
    if reference(def).is_none_or(|(kind, _, _)| kind != Reference::Entity) {
        problems.push(violation(path, "applies only to inputs with format entity"));
        return;
    }
    let mut jq_free = dataset.clone();
    let mut jq_problems = Vec::new();
    blank_jq_values(&mut jq_free, path, &mut jq_problems);
    problems.extend(jq_problems);
    if let Err(portico_catalog::CatalogError::Invalid { details, .. }) =
        portico_catalog::search::parse(&jq_free)
    {
        problems.extend(
            details
                .into_iter()
                .map(|v| violation(format!("{path}.{}", v.path), v.message)),
        );
    }
}

/// Gives each rule whose value is `{"jqQuery": ...}` a plain stand-in, so the search parser can
/// check the rule set, and checks that the expression compiles.
fn blank_jq_values(group: &mut Value, path: &str, problems: &mut Vec<Violation>) {
    let Some(rules) = group.get_mut("rules").and_then(Value::as_array_mut) else {
        return;
    };
    for (i, rule) in rules.iter_mut().enumerate() {
        let at = format!("{path}.rules[{i}]");
        if rule.get("rules").is_some() {
            blank_jq_values(rule, &at, problems);
            continue;
        }
        let jq = match rule.get("value").map(field) {
            Some(Field::Jq(code)) => Some(Ok(code.to_owned())),
            Some(Field::BadJq) => Some(Err(())),
            _ => None,
        };
        match jq {
            Some(Ok(code)) => {
                check_jq(&format!("{at}.value.jqQuery"), &code, problems);
                // A stand-in of the shape the operator takes, so its property and operator
                // are checked now; the value itself is checked when a request computes it.
                let date = matches!(
                    rule.get("property").and_then(Value::as_str),
                    Some("$createdAt" | "$updatedAt")
                );
                let one = if date {
                    json!("1970-01-01T00:00:00Z")
                } else {
                    json!("")
                };
                rule["value"] = match rule.get("operator").and_then(Value::as_str) {
                    Some("in" | "notIn") => json!([one]),
                    Some("between") => json!([one, one]),
                    _ => one,
                };
            }
            Some(Err(())) => problems.push(violation(
                format!("{at}.value"),
                "must be a value or exactly {\"jqQuery\": \"...\"}",
            )),
            None => {}
        }
    }
}

/// `enumColors`: a color name for some of the input's `enum` values, as Port shows them.
fn check_enum_colors(
    path: &str,
    colors: &Value,
    def: &Map<String, Value>,
    problems: &mut Vec<Violation>,
) {
    let Some(colors) = colors.as_object() else {
        problems.push(violation(
            path,
            "must be an object mapping enum values to colors",
        ));
        return;
    };
    let values: Vec<&Value> = def
        .get("enum")
        .and_then(Value::as_array)
        .map(|list| list.iter().collect())
        .unwrap_or_default();
    if values.is_empty() {
        problems.push(violation(
            path,
            "applies only to inputs with an `enum` list",
        ));
        return;
    }
    for (value, color) in colors {
        let at = format!("{path}.{value}");
        if !values.iter().any(|v| v.as_str() == Some(value.as_str())) {
            problems.push(violation(
                &at,
                format!("`{value}` is not one of the input's enum values"),
            ));
        } else if color.as_str().is_none_or(str::is_empty) {
            problems.push(violation(
                &at,
                "must be a color name, such as `red` or `green`",
            ));
        }
    }
}

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
