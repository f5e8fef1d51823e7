//! Timer properties (`format: timer`): an ISO date after which the entity is expired. Their
//! values are stored in one UTC form with milliseconds, so `isExpired` compares dates as text.

use chrono::{DateTime, SecondsFormat, Utc};
use portico_store::Blueprint;
use serde_json::Value;

/// `at` in the stored form, e.g. `2026-11-28T10:00:00.000Z`.
pub fn format(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Now, in the stored form.
pub fn now() -> String {
    format(Utc::now())
}

/// The blueprint's timer properties.
pub fn properties(bp: &Blueprint) -> Vec<String> {
    bp.schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|props| {
            props
                .iter()
                .filter(|(_, def)| def.get("format").and_then(Value::as_str) == Some("timer"))
                .map(|(name, _)| name.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// Rewrites the entity's valid timer values into the stored form (others are left for the
/// schema to report).
pub(crate) fn normalize(bp: &Blueprint, properties: &mut Value) {
    for name in self::properties(bp) {
        if let Some(value) = properties.get_mut(&name)
            && let Some(at) = value
                .as_str()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        {
            *value = Value::String(format(at.with_timezone(&Utc)));
        }
    }
}
