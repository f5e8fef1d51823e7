//! Port's execution policies: named catalog `queries` whose values may use `{{ jq }}`
//! templates over the request, and jq `conditions` over `{inputs, user, entity, results}`; the
//! run is allowed when any condition is `true`. Everything fails closed: a query or condition
//! that errors denies, with the error in the answer.

use crate::jq;
use portico_catalog::{Catalog, Violation};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// `permissions.execute.policy`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Catalog searches by name; their results are `.results.<name>.entities`.
    #[serde(default)]
    pub queries: BTreeMap<String, Value>,
    /// jq expressions; the run is allowed when any returns `true`.
    #[serde(default)]
    pub conditions: Vec<String>,
}

/// Search results a policy query may return, at most.
const QUERY_LIMIT: usize = 1000;

impl Policy {
    /// What is wrong with the policy, each under `path`.
    pub fn check(&self, path: &str) -> Vec<Violation> {
        let mut problems = Vec::new();
        if self.conditions.is_empty() {
            problems.push(Violation {
                path: format!("{path}.conditions"),
                message: "needs at least one condition (a jq expression returning true or false)"
                    .into(),
            });
        }
        for (i, code) in self.conditions.iter().enumerate() {
            if let Err(e) = jq::check(code) {
                problems.push(Violation {
                    path: format!("{path}.conditions[{i}]"),
                    message: e.into(),
                });
            }
        }
        for (name, query) in &self.queries {
            for code in templates(query) {
                if let Err(e) = jq::check(&code) {
                    problems.push(Violation {
                        path: format!("{path}.queries.{name}"),
                        message: format!("template `{{{{ {code} }}}}`: {e}"),
                    });
                }
            }
        }
        problems
    }

    /// Whether the policy allows a run; `Err` says why not. `context` is
    /// `{inputs, user, entity}`.
    pub async fn allows(&self, catalog: &Catalog, context: &Value) -> Result<(), String> {
        let mut results = serde_json::Map::new();
        for (name, query) in &self.queries {
            let query = fill(query, context).map_err(|e| format!("policy query `{name}`: {e}"))?;
            let (entities, _) = catalog
                .search(&query, QUERY_LIMIT, None)
                .await
                .map_err(|e| format!("policy query `{name}` failed: {e}"))?;
            results.insert(name.clone(), json!({ "entities": entities }));
        }
        let mut input = context.clone();
        input["results"] = Value::Object(results);
        // In order, up to the first that holds or fails.
        let outcomes = jq::first_of_each(
            self.conditions.clone(),
            input,
            |outcome| !matches!(outcome, Ok(v) if v != &Value::Bool(true)),
        )
        .await;
        for (code, outcome) in self.conditions.iter().zip(outcomes) {
            match outcome {
                Ok(Value::Bool(true)) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(format!("policy condition `{code}` failed: {e}")),
            }
        }
        Err(format!(
            "no policy condition holds: {}",
            self.conditions.join(" | ")
        ))
    }
}

/// The jq code of every `{{ ... }}` in the string values of `value`.
fn templates(value: &Value) -> Vec<String> {
    let mut found = Vec::new();
    walk(value, &mut |s| {
        let mut rest = s;
        while let Some(start) = rest.find("{{") {
            let Some(end) = rest[start..].find("}}") else {
                break;
            };
            found.push(rest[start + 2..start + end].trim().to_owned());
            rest = &rest[start + end + 2..];
        }
    });
    found
}

fn walk(value: &Value, f: &mut impl FnMut(&str)) {
    match value {
        Value::String(s) => f(s),
        Value::Array(items) => items.iter().for_each(|v| walk(v, f)),
        Value::Object(o) => o.values().for_each(|v| walk(v, f)),
        _ => {}
    }
}

/// `value` with its templates evaluated: a string that is one template becomes the template's
/// value; templates inside longer strings are replaced by their text.
fn fill(value: &Value, context: &Value) -> Result<Value, String> {
    Ok(match value {
        Value::String(s) => {
            let trimmed = s.trim();
            if trimmed.starts_with("{{")
                && trimmed.ends_with("}}")
                && trimmed.matches("{{").count() == 1
            {
                jq::first(trimmed[2..trimmed.len() - 2].trim(), context)?
            } else {
                let mut text = s.clone();
                for code in templates(value) {
                    let v = jq::first(&code, context)?;
                    let shown = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                    // Both spellings: `{{ code }}` and `{{code}}`.
                    text = text
                        .replace(&format!("{{{{ {code} }}}}"), &shown)
                        .replace(&format!("{{{{{code}}}}}"), &shown);
                }
                Value::String(text)
            }
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| fill(v, context))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| Ok((k.clone(), fill(v, context)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_take_the_requests_values() {
        let context = json!({ "inputs": { "name": "web", "n": 3 } });
        let query = json!({ "rules": [
            { "property": "$identifier", "operator": "=", "value": "{{ .inputs.name }}" },
            { "property": "replicas", "operator": "<", "value": "{{.inputs.n}}" },
            { "property": "$title", "operator": "=", "value": "svc-{{ .inputs.name }}" } ] });
        let filled = fill(&query, &context).unwrap();
        assert_eq!(filled["rules"][0]["value"], "web");
        assert_eq!(filled["rules"][1]["value"], 3);
        assert_eq!(filled["rules"][2]["value"], "svc-web");
    }

    #[test]
    fn a_policy_without_conditions_or_with_bad_jq_is_refused() {
        assert_eq!(Policy::default().check("p").len(), 1);
        let bad = Policy {
            queries: BTreeMap::from([(
                "q".into(),
                json!({ "rules": [{ "value": "{{ .a | }}" }] }),
            )]),
            conditions: vec![".results |".into()],
        };
        let paths: Vec<String> = bad.check("p").into_iter().map(|v| v.path).collect();
        assert_eq!(paths, ["p.conditions[0]", "p.queries.q"]);
    }
}
