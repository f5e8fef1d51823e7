//! Consumption quotas, checked when a run is requested: how many runs of the action one user
//! has going, has requested in the last 24 hours, and how many live entities of the action's
//! blueprint the user's teams own. Over a quota the request is refused, naming the quota and the
//! count.
//!
//! The two run quotas are held, not only checked: the store counts them in the
//! transaction that stores the run ([`held`], [`portico_store::RunLimits`]), serialised per user
//! and action across replicas, so N requests racing against a limit of k start exactly k runs.
//! The entity quota is checked: the entities are created later, by the runs' plugins.

use crate::actions::ActionDefinition;
use portico_catalog::Catalog;
use portico_store::{RunLimit, RunLimits, User};
use serde_json::{Value, json};

/// A quota the request would exceed.
#[derive(Debug, thiserror::Error)]
#[error("quota {quota} is {limit} and {scope} already has {current}")]
pub struct QuotaExceeded {
    /// The quota's name, e.g. `maxConcurrentRunsPerUser`.
    pub quota: &'static str,
    /// Its limit.
    pub limit: u32,
    /// The current count.
    pub current: u64,
    /// Whose count: `you` or `team platform`.
    pub scope: String,
}

/// Why quotas could not be checked (they fail closed: the run is refused).
#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    /// Over a quota.
    #[error(transparent)]
    Exceeded(#[from] QuotaExceeded),
    /// Counting failed.
    #[error("cannot count for quota {0}: {1}")]
    Count(&'static str, String),
}

/// The run quotas the store holds when it stores a run of `action`.
pub fn held(action: &ActionDefinition) -> RunLimits {
    let quotas = action.quotas.unwrap_or_default();
    RunLimits {
        concurrent: quotas.max_concurrent_runs_per_user,
        per_day: quotas.max_runs_per_user_per_day,
    }
}

/// The quota the store found a new run would pass ([`portico_store::StoreError::OverLimit`]).
pub fn exceeded(limit: RunLimit, max: u32, current: u64) -> QuotaExceeded {
    QuotaExceeded {
        quota: match limit {
            RunLimit::Concurrent => "maxConcurrentRunsPerUser",
            RunLimit::PerDay => "maxRunsPerUserPerDay",
        },
        limit: max,
        current,
        scope: "you".into(),
    }
}

/// Checks the action's entity quota for a run `user` requests. The run quotas are not counted
/// here: the store counts them in the transaction that stores the run ([`held`]).
pub async fn check(
    catalog: &Catalog,
    action: &ActionDefinition,
    user: &User,
) -> Result<(), QuotaError> {
    let Some(quotas) = action.quotas else {
        return Ok(());
    };
    if let (Some(limit), Some(bp)) = (
        quotas.max_active_entities_per_team,
        &action.trigger.blueprint_identifier,
    ) {
        const QUOTA: &str = "maxActiveEntitiesPerTeam";
        let blueprint = match catalog.get_blueprint(bp).await {
            Ok(blueprint) => blueprint,
            // A blueprint deleted since the action was written has no entities to count; the
            // run goes on and its plugin meets the missing blueprint itself.
            Err(portico_catalog::CatalogError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(QuotaError::Count(QUOTA, e.to_string())),
        };
        for team in &user.teams {
            let mut rules = vec![
                json!({ "property": "$blueprint", "operator": "=", "value": bp }),
                json!({ "property": "$team", "operator": "contains", "value": team }),
            ];
            for timer in portico_catalog::timer::properties(&blueprint) {
                rules.push(json!({ "property": timer, "operator": "isNotExpired" }));
            }
            let query = json!({ "combinator": "and", "rules": Value::Array(rules) });
            let (live, _) = catalog
                .search(&query, limit as usize + 1, None)
                .await
                .map_err(|e| QuotaError::Count(QUOTA, e.to_string()))?;
            let current = live.len() as u64;
            if current >= u64::from(limit) {
                let scope = format!("team {team}");
                return Err(QuotaExceeded {
                    quota: QUOTA,
                    limit,
                    current,
                    scope,
                }
                .into());
            }
        }
    }
    Ok(())
}
