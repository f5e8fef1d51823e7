//! Port-style search bodies (`{combinator, rules}`) parsed into the store's [`Query`], with every
//! problem reported at its path (`rules[1].operator`).

use crate::error::{CatalogError, Result, Violation};
use base64::Engine;
use chrono::DateTime;
use portico_store::{Combinator, Direction, EntityRef, Field, Op, Query, Rule};
use serde_json::{Value, json};

/// Parses a search body.
pub fn parse(body: &Value) -> Result<Query> {
    let mut problems = Vec::new();
    let rule = group(body, "", &mut problems);
    if problems.is_empty() {
        Ok(Query {
            rule,
            blueprints: None,
            order: portico_store::Order::default(),
        })
    } else {
        Err(CatalogError::invalid(problems))
    }
}

fn at(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

fn group(body: &Value, prefix: &str, problems: &mut Vec<Violation>) -> Rule {
    let combinator = match body.get("combinator").and_then(Value::as_str) {
        None | Some("and") => Combinator::And,
        Some("or") => Combinator::Or,
        Some(other) => {
            problems.push(Violation::new(
                at(prefix, "combinator"),
                format!("`{other}` is not `and` or `or`"),
            ));
            Combinator::And
        }
    };
    let Some(items) = body.get("rules").and_then(Value::as_array) else {
        problems.push(Violation::new(
            at(prefix, "rules"),
            "required: a list of rules",
        ));
        return Rule::Group {
            combinator,
            rules: Vec::new(),
        };
    };
    let rules = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let path = at(prefix, &format!("rules[{i}]"));
            if item.get("rules").is_some() {
                group(item, &path, problems)
            } else {
                rule(item, &path, problems)
            }
        })
        .collect();
    Rule::Group { combinator, rules }
}

fn operator(name: &str) -> Option<Op> {
    Some(match name {
        "=" => Op::Eq,
        "!=" => Op::Ne,
        ">" => Op::Gt,
        ">=" => Op::Ge,
        "<" => Op::Lt,
        "<=" => Op::Le,
        "contains" => Op::Contains,
        "beginsWith" => Op::BeginsWith,
        "endsWith" => Op::EndsWith,
        "in" => Op::In,
        "notIn" => Op::NotIn,
        "isEmpty" => Op::IsEmpty,
        "isNotEmpty" => Op::IsNotEmpty,
        "between" => Op::Between,
        _ => return None,
    })
}

const OPERATORS: &str = "=, !=, >, >=, <, <=, contains, beginsWith, endsWith, in, notIn, isEmpty, \
    isNotEmpty, between, isExpired, isNotExpired, relatedTo";

/// `isExpired` / `isNotExpired` on a timer property: its date has passed (or not, or it has
/// none). Timer values are stored in one UTC format (see [`crate::timer`]), so the dates
/// compare as text.
fn expiry(item: &Value, name: &str, path: &str, problems: &mut Vec<Violation>) -> Option<Rule> {
    let Some(property) = item.get("property").and_then(Value::as_str) else {
        problems.push(Violation::new(
            at(path, "property"),
            "required: a timer property",
        ));
        return None;
    };
    if property.starts_with('$') {
        problems.push(Violation::new(
            at(path, "property"),
            format!("`{name}` applies to a timer property, not `{property}`"),
        ));
        return None;
    }
    let field = || Field::Property(property.to_owned());
    let now = Value::String(crate::timer::now());
    Some(if name == "isExpired" {
        Rule::Compare {
            field: field(),
            op: Op::Le,
            value: now,
        }
    } else {
        Rule::Group {
            combinator: Combinator::Or,
            rules: vec![
                Rule::Compare {
                    field: field(),
                    op: Op::IsEmpty,
                    value: Value::Null,
                },
                Rule::Compare {
                    field: field(),
                    op: Op::Gt,
                    value: now,
                },
            ],
        }
    })
}

fn rule(item: &Value, path: &str, problems: &mut Vec<Violation>) -> Rule {
    let nothing = Rule::Group {
        combinator: Combinator::And,
        rules: Vec::new(),
    };
    let Some(name) = item.get("operator").and_then(Value::as_str) else {
        problems.push(Violation::new(
            at(path, "operator"),
            format!("required: one of {OPERATORS}"),
        ));
        return nothing;
    };
    if name == "relatedTo" {
        return related_to(item, path, problems).unwrap_or(nothing);
    }
    if name == "isExpired" || name == "isNotExpired" {
        return expiry(item, name, path, problems).unwrap_or(nothing);
    }
    let Some(op) = operator(name) else {
        problems.push(Violation::new(
            at(path, "operator"),
            format!("unknown operator `{name}`; expected one of {OPERATORS}"),
        ));
        return nothing;
    };
    let field = match item.get("property").and_then(Value::as_str) {
        Some("$identifier") => Field::Identifier,
        Some("$title") => Field::Title,
        Some("$team") => Field::Team,
        Some("$blueprint") => Field::Blueprint,
        Some("$createdAt") => Field::CreatedAt,
        Some("$updatedAt") => Field::UpdatedAt,
        Some(meta) if meta.starts_with('$') => {
            problems.push(Violation::new(
                at(path, "property"),
                format!("unknown meta-property `{meta}`; expected $identifier, $title, $team, $blueprint, $createdAt or $updatedAt"),
            ));
            return nothing;
        }
        Some(name) => Field::Property(name.to_owned()),
        None => {
            problems.push(Violation::new(
                at(path, "property"),
                "required: a property name or meta-property",
            ));
            return nothing;
        }
    };
    let raw = item.get("value").cloned().unwrap_or(Value::Null);
    let value = match op {
        Op::IsEmpty | Op::IsNotEmpty => Value::Null,
        Op::In | Op::NotIn if !raw.is_array() => {
            problems.push(Violation::new(
                at(path, "value"),
                format!("`{name}` takes a list of values"),
            ));
            return nothing;
        }
        Op::Between => match between(&raw) {
            Some(bounds) => bounds,
            None => {
                problems.push(Violation::new(
                    at(path, "value"),
                    "`between` takes {\"from\": ..., \"to\": ...}",
                ));
                return nothing;
            }
        },
        _ if raw.is_null() && op != Op::Eq && op != Op::Ne => {
            problems.push(Violation::new(
                at(path, "value"),
                format!("`{name}` needs a value"),
            ));
            return nothing;
        }
        _ => raw,
    };
    let value = if matches!(field, Field::CreatedAt | Field::UpdatedAt) {
        match to_millis(&value) {
            Some(v) => v,
            None => {
                problems.push(Violation::new(
                    at(path, "value"),
                    "dates must be date-time strings, e.g. 2026-11-28T10:00:00Z",
                ));
                return nothing;
            }
        }
    } else {
        value
    };
    Rule::Compare { field, op, value }
}

fn between(value: &Value) -> Option<Value> {
    match value {
        Value::Object(o) => Some(json!([o.get("from")?, o.get("to")?])),
        Value::Array(a) if a.len() == 2 => Some(value.clone()),
        _ => None,
    }
}

/// Date-time strings (or lists of them) to milliseconds since the epoch.
fn to_millis(value: &Value) -> Option<Value> {
    match value {
        Value::String(s) => Some(json!(
            DateTime::parse_from_rfc3339(s).ok()?.timestamp_millis()
        )),
        Value::Array(items) => items
            .iter()
            .map(to_millis)
            .collect::<Option<Vec<_>>>()
            .map(Value::Array),
        _ => None,
    }
}

fn related_to(item: &Value, path: &str, problems: &mut Vec<Violation>) -> Option<Rule> {
    let blueprint = item.get("blueprint").and_then(Value::as_str);
    let identifier = item.get("value").and_then(Value::as_str);
    let direction = match item.get("direction").and_then(Value::as_str) {
        None | Some("upstream") => Some(Direction::Upstream),
        Some("downstream") => Some(Direction::Downstream),
        Some(other) => {
            problems.push(Violation::new(
                at(path, "direction"),
                format!("`{other}` is not `upstream` or `downstream`"),
            ));
            None
        }
    };
    if blueprint.is_none() {
        problems.push(Violation::new(
            at(path, "blueprint"),
            "required: the related entity's blueprint",
        ));
    }
    if identifier.is_none() {
        problems.push(Violation::new(
            at(path, "value"),
            "required: the related entity's identifier",
        ));
    }
    Some(Rule::RelatedTo {
        blueprint: blueprint?.to_owned(),
        identifier: identifier?.to_owned(),
        direction: direction?,
    })
}

/// An opaque paging cursor for the entity after which to continue.
pub fn encode_cursor(after: &EntityRef) -> String {
    let raw = json!([after.blueprint, after.identifier]).to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// Reads a cursor made by [`encode_cursor`].
pub fn decode_cursor(cursor: &str) -> Result<EntityRef> {
    let bad = || CatalogError::field("cursor", "not a cursor this server returned");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| bad())?;
    let (blueprint, identifier): (String, String) =
        serde_json::from_slice(&raw).map_err(|_| bad())?;
    Ok(EntityRef {
        blueprint,
        identifier,
    })
}
