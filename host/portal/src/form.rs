//! An action's form, generated from its `userInputs`: which widget each input gets, how the
//! browser's fields become the run's `properties`, and how values and errors go back into the
//! fields. What is visible, required or disabled is not decided here: that is
//! [`portico_runs::inputs::form_state`], the rules a run request is checked by.

use portico_catalog::Violation;
use portico_runs::inputs::FormState;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The prefix of an input's field name (`in.name`), keeping inputs apart from the form's own
/// fields (`_csrf`, `_entity`, `_retry_of`).
pub const PREFIX: &str = "in.";

/// How an input is edited.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Widget {
    /// One line of text.
    Text,
    /// Several lines (`multi-line`, `markdown`, `yaml`).
    Textarea,
    /// A number.
    Number,
    /// A boolean.
    Checkbox,
    /// One of an `enum`.
    Select,
    /// Several of an `enum`.
    Multiselect,
    /// A list typed one item per line.
    Lines,
    /// An object (or a list of objects) as JSON.
    Json,
    /// `date-time`, in UTC.
    Datetime,
    /// `url`.
    Url,
    /// `email`.
    Email,
    /// An input with `encryption`: never shown again.
    Secret,
    /// One entity, picked from a search.
    Entity,
    /// Several entities.
    Entities,
    /// One user.
    User,
    /// Several users.
    Users,
    /// One team.
    Team,
    /// Several teams.
    Teams,
}

impl Widget {
    /// The widget for an input's definition.
    pub fn of(def: &Map<String, Value>) -> Self {
        let text = |key: &str| def.get(key).and_then(Value::as_str);
        let items = def.get("items").and_then(Value::as_object);
        let item = |key: &str| items.and_then(|i| i.get(key)).and_then(Value::as_str);
        if def.contains_key("encryption") {
            return Self::Secret;
        }
        match text("type").unwrap_or("string") {
            "boolean" => Self::Checkbox,
            "number" | "integer" if def.contains_key("enum") => Self::Select,
            "number" | "integer" => Self::Number,
            "object" => Self::Json,
            "array" => match text("format").or_else(|| item("format")) {
                Some("entity") => Self::Entities,
                Some("user") => Self::Users,
                Some("team") => Self::Teams,
                _ if items.is_some_and(|i| i.contains_key("enum")) => Self::Multiselect,
                _ if item("type") == Some("object") => Self::Json,
                _ => Self::Lines,
            },
            _ => match text("format") {
                Some("entity") => Self::Entity,
                Some("user") => Self::User,
                Some("team") => Self::Team,
                Some("date-time") => Self::Datetime,
                Some("url") => Self::Url,
                Some("email") => Self::Email,
                Some("multi-line" | "markdown" | "yaml") => Self::Textarea,
                _ if def.contains_key("enum") => Self::Select,
                _ => Self::Text,
            },
        }
    }

    fn many(self) -> bool {
        matches!(
            self,
            Self::Multiselect | Self::Entities | Self::Users | Self::Teams
        )
    }
}

/// The inputs of a `userInputs` definition, in their `order` (then the rest as defined).
pub fn ordered(user_inputs: &Value) -> Vec<(String, Map<String, Value>)> {
    let empty = Map::new();
    let defs = user_inputs
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut names: Vec<String> = user_inputs
        .get("order")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|n| defs.contains_key(*n))
        .map(str::to_owned)
        .collect();
    for name in defs.keys() {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    names
        .into_iter()
        .map(|n| {
            let def = defs
                .get(&n)
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            (n, def)
        })
        .collect()
}

/// The run's `properties` from the browser's fields (`in.<name>`, repeated for lists). A value
/// that does not parse as its type is passed on as typed, so the request's own check names the
/// field and says what is wrong.
pub fn properties(user_inputs: &Value, pairs: &[(String, String)]) -> Value {
    let mut out = Map::new();
    for (name, def) in ordered(user_inputs) {
        let key = format!("{PREFIX}{name}");
        let given: Vec<&str> = pairs
            .iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
            .collect();
        let widget = Widget::of(&def);
        let numeric_items = def
            .get("items")
            .and_then(|i| i.get("type"))
            .and_then(Value::as_str)
            .is_some_and(|t| t == "number" || t == "integer");
        let value = match widget {
            Widget::Checkbox => match given.last() {
                Some(&"true") => Some(Value::Bool(true)),
                Some(&"false") => Some(Value::Bool(false)),
                _ => None,
            },
            Widget::Number => given.first().and_then(|v| number(v)),
            Widget::Select if def.get("type").and_then(Value::as_str) != Some("string") => {
                given.first().and_then(|v| number(v))
            }
            w if w.many() => {
                let items: Vec<Value> = given
                    .iter()
                    .filter(|v| !v.is_empty())
                    .map(|v| {
                        if numeric_items {
                            number(v).unwrap_or_default()
                        } else {
                            Value::String((*v).to_owned())
                        }
                    })
                    .collect();
                (!items.is_empty()).then_some(Value::Array(items))
            }
            Widget::Lines => given.first().and_then(|text| {
                let items: Vec<Value> = text
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(|l| {
                        if numeric_items {
                            number(l).unwrap_or_default()
                        } else {
                            Value::String(l.to_owned())
                        }
                    })
                    .collect();
                (!items.is_empty()).then_some(Value::Array(items))
            }),
            Widget::Json => given.first().filter(|t| !t.trim().is_empty()).map(|t| {
                serde_json::from_str(t).unwrap_or_else(|_| Value::String((*t).to_owned()))
            }),
            Widget::Datetime => given.first().filter(|t| !t.is_empty()).map(|t| {
                // `datetime-local` gives minutes (or seconds) without a zone; the form says UTC.
                let full = match t.len() {
                    16 => format!("{t}:00Z"),
                    19 => format!("{t}Z"),
                    _ => (*t).to_owned(),
                };
                Value::String(full)
            }),
            _ => given
                .first()
                .filter(|t| !t.is_empty())
                .map(|t| Value::String((*t).to_owned())),
        };
        if let Some(value) = value {
            out.insert(name, value);
        }
    }
    Value::Object(out)
}

/// A number as typed, or the text when it is not one.
fn number(text: &str) -> Option<Value> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if let Ok(n) = text.parse::<i64>() {
        return Some(Value::from(n));
    }
    match text
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
    {
        Some(n) => Some(Value::Number(n)),
        None => Some(Value::String(text.to_owned())),
    }
}

/// One choice of a select.
#[derive(Clone, Debug, Serialize)]
pub struct Choice {
    /// What is submitted.
    pub value: String,
    /// What is shown.
    pub label: String,
    /// `enumColors`' color, if any.
    pub color: Option<String>,
    /// Whether it is chosen.
    pub selected: bool,
}

/// A field as the template draws it.
#[derive(Clone, Debug, Serialize)]
pub struct Field {
    /// The input's name.
    pub name: String,
    /// Its label.
    pub title: String,
    /// Help below the label.
    pub description: Option<String>,
    /// How it is edited.
    pub widget: Widget,
    /// The value as text (empty for a secret).
    pub value: String,
    /// Whether a checkbox is ticked.
    pub checked: bool,
    /// Choices of a select, a user, team or entity picker.
    pub choices: Vec<Choice>,
    /// The blueprint an entity picker searches.
    pub blueprint: Option<String>,
    /// Whether a value is required now.
    pub required: bool,
    /// Whether it is disabled now (it keeps its default).
    pub disabled: bool,
    /// Whether it is hidden now.
    pub hidden: bool,
    /// What the server said is wrong with it.
    pub error: Option<String>,
}

/// A step of a wizard (one step when `userInputs` has no `steps`).
#[derive(Clone, Debug, Serialize)]
pub struct Step {
    /// Its title.
    pub title: Option<String>,
    /// Whether the step is hidden now.
    pub hidden: bool,
    /// Its fields.
    pub fields: Vec<Field>,
}

/// Splits violations into each field's (by `properties.<name>`) and the form's.
pub fn errors(violations: &[Violation]) -> (BTreeMap<String, String>, Vec<String>) {
    let mut by_field: BTreeMap<String, String> = BTreeMap::new();
    let mut general = Vec::new();
    for v in violations {
        let field = v
            .path
            .strip_prefix("properties.")
            .map(|rest| rest.split('.').next().unwrap_or(rest).to_owned());
        match field {
            Some(name) => {
                let entry = by_field.entry(name).or_default();
                if !entry.is_empty() {
                    entry.push_str("; ");
                }
                entry.push_str(&v.message);
            }
            None => general.push(format!("{}: {}", v.path, v.message)),
        }
    }
    (by_field, general)
}

/// Everything but the choices that need a lookup (users, teams, entities): those the page
/// fills in with [`Field::choices`].
pub fn steps(
    user_inputs: &Value,
    state: &FormState,
    errors: &BTreeMap<String, String>,
) -> Vec<Step> {
    let titles = user_inputs.get("titles").and_then(Value::as_object);
    let fields: Vec<Field> = ordered(user_inputs)
        .into_iter()
        .map(|(name, def)| field(&name, &def, titles, state, errors))
        .collect();
    let Some(defined) = user_inputs.get("steps").and_then(Value::as_array) else {
        return vec![Step {
            title: None,
            hidden: false,
            fields,
        }];
    };
    let mut rest = fields;
    let mut steps = Vec::new();
    for (i, step) in defined.iter().enumerate() {
        let names: Vec<&str> = step
            .get("order")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let mut mine = Vec::new();
        for name in names {
            if let Some(at) = rest.iter().position(|f| f.name == name) {
                mine.push(rest.remove(at));
            }
        }
        steps.push(Step {
            title: step.get("title").and_then(Value::as_str).map(str::to_owned),
            hidden: state.hidden_steps.contains(&i),
            fields: mine,
        });
    }
    if !rest.is_empty() {
        match steps.last_mut() {
            Some(last) => last.fields.extend(rest),
            None => steps.push(Step {
                title: None,
                hidden: false,
                fields: rest,
            }),
        }
    }
    steps
}

fn field(
    name: &str,
    def: &Map<String, Value>,
    titles: Option<&Map<String, Value>>,
    state: &FormState,
    errors: &BTreeMap<String, String>,
) -> Field {
    let widget = Widget::of(def);
    let text = |key: &str| def.get(key).and_then(Value::as_str).map(str::to_owned);
    let titled = titles.and_then(|t| t.get(name));
    let title = titled
        .and_then(|t| t.get("title"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| text("title"))
        .unwrap_or_else(|| label(name));
    let description = titled
        .and_then(|t| t.get("description"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| text("description"));
    let value = state.values.get(name);
    let shown = match (widget, value) {
        (Widget::Secret, _) | (_, None) => String::new(),
        (_, Some(v)) => display(widget, v),
    };
    let selected = selected(value);
    let choices = enum_choices(def, &selected);
    Field {
        name: name.to_owned(),
        title,
        description,
        widget,
        checked: value == Some(&Value::Bool(true)),
        value: shown,
        choices,
        blueprint: text("blueprint").or_else(|| {
            def.get("items")
                .and_then(|i| i.get("blueprint"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        }),
        required: state.required.contains(name),
        disabled: state.disabled.contains(name),
        hidden: state.hidden.contains(name),
        error: errors.get(name).cloned(),
    }
}

/// A label for an input without a title: `image_tag` reads "Image tag".
fn label(name: &str) -> String {
    let spaced = name.replace(['_', '-'], " ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The values of an input as identifiers or texts (an entity counts by its identifier).
pub fn selected(value: Option<&Value>) -> Vec<String> {
    let one = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Object(o) => o
            .get("identifier")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        other => other.to_string(),
    };
    match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.iter().map(one).collect(),
        Some(v) => vec![one(v)],
    }
}

fn display(widget: Widget, value: &Value) -> String {
    match (widget, value) {
        (Widget::Json, Value::String(s)) => s.clone(),
        (Widget::Json, v) => serde_json::to_string_pretty(v).unwrap_or_default(),
        (Widget::Lines, Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| v.to_string())
            })
            .collect::<Vec<_>>()
            .join("\n"),
        (Widget::Datetime, Value::String(s)) => {
            // What `datetime-local` shows: minutes, no zone.
            s.get(..16).unwrap_or(s).to_owned()
        }
        (_, Value::String(s)) => s.clone(),
        (_, v) => selected(Some(v)).join(", "),
    }
}

fn enum_choices(def: &Map<String, Value>, selected: &[String]) -> Vec<Choice> {
    let items = def.get("items").and_then(Value::as_object);
    let (values, colors) = match def.get("enum").and_then(Value::as_array) {
        Some(values) => (values, def.get("enumColors")),
        None => match items.and_then(|i| i.get("enum")).and_then(Value::as_array) {
            Some(values) => (values, items.and_then(|i| i.get("enumColors"))),
            None => return Vec::new(),
        },
    };
    values
        .iter()
        .map(|v| {
            let value = v
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| v.to_string());
            Choice {
                color: colors
                    .and_then(|c| c.get(&value))
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                selected: selected.contains(&value),
                label: value.clone(),
                value,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    #[test]
    fn each_type_gets_its_widget() {
        let of = |def: Value| Widget::of(def.as_object().unwrap());
        assert_eq!(of(json!({"type": "string"})), Widget::Text);
        assert_eq!(
            of(json!({"type": "string", "format": "markdown"})),
            Widget::Textarea
        );
        assert_eq!(of(json!({"type": "string", "enum": ["a"]})), Widget::Select);
        assert_eq!(of(json!({"type": "number"})), Widget::Number);
        assert_eq!(of(json!({"type": "boolean"})), Widget::Checkbox);
        assert_eq!(of(json!({"type": "object"})), Widget::Json);
        assert_eq!(
            of(json!({"type": "array", "items": {"type": "string", "enum": ["a"]}})),
            Widget::Multiselect
        );
        assert_eq!(
            of(
                json!({"type": "array", "items": {"type": "string", "format": "entity", "blueprint": "s"}})
            ),
            Widget::Entities
        );
        assert_eq!(of(json!({"type": "array"})), Widget::Lines);
        assert_eq!(
            of(json!({"type": "string", "format": "entity"})),
            Widget::Entity
        );
        assert_eq!(
            of(json!({"type": "string", "format": "date-time"})),
            Widget::Datetime
        );
        assert_eq!(
            of(json!({"type": "string", "encryption": "aes256-gcm"})),
            Widget::Secret
        );
    }

    #[test]
    fn fields_become_typed_properties() {
        let inputs = json!({ "properties": {
            "name": { "type": "string" },
            "replicas": { "type": "number" },
            "public": { "type": "boolean" },
            "tags": { "type": "array" },
            "extra": { "type": "object" },
            "when": { "type": "string", "format": "date-time" },
            "empty": { "type": "string" }
        } });
        let got = properties(
            &inputs,
            &pairs(&[
                ("in.name", "api"),
                ("in.replicas", "3"),
                ("in.public", "false"),
                ("in.public", "true"),
                ("in.tags", "a\n\nb "),
                ("in.extra", "{\"k\": 1}"),
                ("in.when", "2026-11-29T10:30"),
                ("in.empty", ""),
                ("_csrf", "x"),
            ]),
        );
        assert_eq!(
            got,
            json!({
                "name": "api", "replicas": 3, "public": true, "tags": ["a", "b"],
                "extra": {"k": 1}, "when": "2026-11-29T10:30:00Z"
            })
        );
    }

    #[test]
    fn what_does_not_parse_goes_on_as_typed_for_the_check_to_name() {
        let inputs =
            json!({ "properties": { "n": { "type": "number" }, "o": { "type": "object" } } });
        let got = properties(&inputs, &pairs(&[("in.n", "three"), ("in.o", "{oops")]));
        assert_eq!(got, json!({ "n": "three", "o": "{oops" }));
    }

    #[test]
    fn errors_go_to_their_field() {
        let v = |p: &str, m: &str| Violation {
            path: p.into(),
            message: m.into(),
        };
        let (fields, general) = errors(&[
            v("properties.name", "required"),
            v("properties.tags.1", "too long"),
            v("entity", "no such"),
        ]);
        assert_eq!(fields["name"], "required");
        assert_eq!(fields["tags"], "too long");
        assert_eq!(general, vec!["entity: no such".to_owned()]);
    }
}
