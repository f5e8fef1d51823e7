//! Validating a run's values against its action's `trigger.userInputs` when the run is
//! requested.

use super::*;
use crate::jq;

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

/// Replaces each `{"jqQuery": ...}` rule value of a dataset by the expression's result.
fn fill_dataset(
    group: &mut Value,
    path: &str,
    eval: &Evaluator<'_>,
    form: &Map<String, Value>,
) -> Result<(), Violation> {
    let Some(rules) = group.get_mut("rules").and_then(Value::as_array_mut) else {
        return Ok(());
    };
    for (i, rule) in rules.iter_mut().enumerate() {
        let at = format!("{path}.rules[{i}]");
        if rule.get("rules").is_some() {
            fill_dataset(rule, &at, eval, form)?;
        } else if let Some(Field::Jq(code)) = rule.get("value").map(field) {
            let code = code.to_owned();
            rule["value"] = eval
                .run(&code, form)
                .map_err(|e| violation(format!("{at}.value.jqQuery"), e))?;
        }
    }
    Ok(())
}

/// A value to look up once the synchronous checks are done.
struct Pending {
    name: String,
    kind: Reference,
    blueprint: Option<String>,
    many: bool,
    secret: bool,
    /// The input's `dataset`, its jq values filled in over the form: the entities it accepts.
    dataset: Option<Value>,
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
    inputs: &CompiledInputs,
    submitted: &Value,
    context: &InputContext,
    lookup: &dyn InputLookup,
) -> Result<Validated, Vec<Violation>> {
    let (mut values, pending, secrets, mut problems) = check_values(inputs, submitted, context)?;

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
                    let Some(entity) = lookup.entity(blueprint, id).await else {
                        problems.push(violation(
                            path,
                            format!("no entity{shown} in blueprint `{blueprint}`"),
                        ));
                        continue;
                    };
                    if let Some(dataset) = &p.dataset {
                        match lookup.in_dataset(blueprint, id, dataset).await {
                            Ok(true) => {}
                            Ok(false) => {
                                problems.push(violation(
                                    path,
                                    format!(
                                        "entity{shown} is not one this input offers (its dataset \
                                         filters it out)"
                                    ),
                                ));
                                continue;
                            }
                            Err(e) => {
                                let at = format!("{PREFIX}.properties.{}.dataset", p.name);
                                problems.push(violation(at, e));
                                continue;
                            }
                        }
                    }
                    resolved.push(entity);
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

/// How an action's form stands for some values: what the portal shows as the user types,
/// decided by the very rules [`validate`] applies (2, 3, 4 and 6), so a field the form hides is
/// one a request drops, and a field it marks required is one a request must fill.
#[derive(Clone, Debug, Default)]
pub struct FormState {
    /// The values after defaults (a submitted value wins over its default).
    pub values: Map<String, Value>,
    /// Inputs hidden by their `visible` or their step's.
    pub hidden: BTreeSet<String>,
    /// Visible inputs that are disabled (they keep their default).
    pub disabled: BTreeSet<String>,
    /// Inputs that must have a value (hidden ones never must).
    pub required: BTreeSet<String>,
    /// Steps (by index) hidden by their `visible`.
    pub hidden_steps: BTreeSet<usize>,
    /// Each entity input's `dataset` with its jq values filled in over the form: the search
    /// rules the input's picker offers entities by.
    pub datasets: HashMap<String, Value>,
    /// jq expressions that failed, each at its path in the action.
    pub problems: Vec<Violation>,
}

/// The form's state for `submitted` (an object; other values count as empty).
pub fn form_state(
    compiled: &CompiledInputs,
    submitted: &Value,
    context: &InputContext,
) -> FormState {
    let empty = Map::new();
    let given: Map<String, Value> = submitted
        .as_object()
        .unwrap_or(&empty)
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let rules = evaluate(compiled, &given, context);
    let mut problems = rules.problems;
    problems.extend(rules.required_problems);
    let visible: Map<String, Value> = rules
        .form
        .iter()
        .filter(|(name, _)| !rules.hidden.contains(*name))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut datasets = HashMap::new();
    let inputs = compiled
        .definition()
        .get("properties")
        .and_then(Value::as_object);
    for (name, def) in inputs.into_iter().flatten() {
        let Some(dataset) = def.get("dataset") else {
            continue;
        };
        let mut filled = dataset.clone();
        let at = format!("{PREFIX}.properties.{name}.dataset");
        match fill_dataset(&mut filled, &at, &rules.eval, &visible) {
            Ok(()) => {
                datasets.insert(name.clone(), filled);
            }
            Err(problem) => problems.push(problem),
        }
    }
    FormState {
        datasets,
        required: rules
            .required
            .into_iter()
            .filter(|n| !rules.hidden.contains(n))
            .collect(),
        values: rules.form,
        hidden: rules.hidden,
        disabled: rules.fixed,
        hidden_steps: rules.hidden_steps,
        problems,
    }
}

/// What the jq-or-value fields of the inputs decide for some values (rules 2, 3, 4 and 6).
struct Evaluated<'a> {
    eval: Evaluator<'a>,
    /// The submitted values, then the defaults.
    form: Map<String, Value>,
    defaults: Map<String, Value>,
    hidden: BTreeSet<String>,
    hidden_steps: BTreeSet<usize>,
    /// Visible inputs that are disabled.
    fixed: BTreeSet<String>,
    required: BTreeSet<String>,
    /// Failures of the default, visible and disabled expressions.
    problems: Vec<Violation>,
    /// Failures of the `required` expression (reported after the values' own problems).
    required_problems: Vec<Violation>,
}

fn evaluate<'a>(
    compiled: &CompiledInputs,
    given: &Map<String, Value>,
    context: &'a InputContext,
) -> Evaluated<'a> {
    let user_inputs = compiled.definition();
    let inputs = compiled.inputs();
    let def = |name: &str| compiled.input(name);
    let is_secret = |name: &str| def(name).contains_key("encryption");
    let mut problems = Vec::new();
    let mut secret_texts = Vec::new();
    for (name, value) in given {
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
    let mut hidden_steps = BTreeSet::new();
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
                    hidden_steps.insert(i);
                    let names = step.get("order").and_then(Value::as_array);
                    for name in names.into_iter().flatten().filter_map(Value::as_str) {
                        hidden.insert(name.to_owned());
                    }
                }
                Err(v) => problems.push(v),
            }
        }
    }

    // 4. Which visible inputs are disabled.
    let mut fixed = BTreeSet::new();
    for name in inputs.keys().filter(|n| !hidden.contains(*n)) {
        let path = format!("{PREFIX}.properties.{name}.disabled");
        match eval.flag(&path, def(name).get("disabled"), false, &form) {
            Ok(false) => {}
            Ok(true) => {
                fixed.insert(name.clone());
            }
            Err(v) => problems.push(v),
        }
    }

    // 6. Which inputs are required.
    let mut required_problems = Vec::new();
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
                    required_problems.push(violation(
                        path,
                        format!(
                            "must return a list of input names, not {}",
                            type_name(&other)
                        ),
                    ));
                    Vec::new()
                }
                Err(e) => {
                    required_problems.push(violation(path, e));
                    Vec::new()
                }
            }
        }
        Some(_) => {
            required_problems.push(violation(
                format!("{PREFIX}.required"),
                "must be a list of input names, or {\"jqQuery\": \"...\"} returning one",
            ));
            Vec::new()
        }
    };
    Evaluated {
        eval,
        form,
        defaults,
        hidden,
        hidden_steps,
        fixed,
        required: required.into_iter().collect(),
        problems,
        required_problems,
    }
}

/// Rules 1 to 7, and what rule 8 must look up. Synchronous: jaq's values never cross an await.
fn check_values(
    compiled: &CompiledInputs,
    submitted: &Value,
    context: &InputContext,
) -> Result<Checked, Vec<Violation>> {
    let inputs = compiled.inputs();
    let def = |name: &str| compiled.input(name);
    let empty = Map::new();
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

    // 2 to 4 and 6: what the inputs' expressions decide.
    let Evaluated {
        eval,
        form,
        defaults,
        hidden,
        hidden_steps: _,
        fixed,
        required,
        problems: decided,
        required_problems,
    } = evaluate(compiled, &given, context);
    problems.extend(decided);
    let mut values: Map<String, Value> = form
        .iter()
        .filter(|(name, _)| !hidden.contains(*name))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();

    // 4. Disabled inputs keep their default.
    for name in &fixed {
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
    problems.extend(required_problems);
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
        match compiled.schema(name) {
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
    let mut pending = Vec::new();
    for name in values.keys().filter(|name| !invalid.contains(*name)) {
        let Some((kind, blueprint, many)) = reference(def(name)) else {
            continue;
        };
        let dataset = match def(name).get("dataset") {
            None => None,
            Some(dataset) => {
                let mut filled = dataset.clone();
                let at = format!("{PREFIX}.properties.{name}.dataset");
                match fill_dataset(&mut filled, &at, &eval, &values) {
                    Ok(()) => Some(filled),
                    Err(problem) => {
                        problems.push(problem);
                        continue;
                    }
                }
            }
        };
        pending.push(Pending {
            name: name.clone(),
            kind,
            blueprint: blueprint.map(str::to_owned),
            many,
            secret: is_secret(name),
            dataset,
        });
    }
    let secrets = values.keys().filter(|n| is_secret(n)).cloned().collect();
    Ok((values, pending, secrets, problems))
}
