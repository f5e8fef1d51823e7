//! CREATE: provisions a temporary development environment: an `environment` entity owned by the
//! requester's team, whose `expires` timer is `ttl` from now. When it passes, the
//! `teardown_expired_environment` automation removes it.
//!
//! Grants: catalog write `environment`.

use portico_sdk::{Action, Entity, Failure, Outcome, Request, catalog, info, progress, time};
use serde::Deserialize;

#[derive(Deserialize)]
struct Inputs {
    name: String,
    ttl: String,
}

struct DevEnvironment;

impl Action for DevEnvironment {
    type Inputs = Inputs;

    fn run(request: Request<Inputs>) -> Result<Outcome, Failure> {
        let Inputs { name, ttl } = &request.inputs;
        let expires = time::from_now(ttl)?;
        if catalog::get("environment", name)?.is_some() {
            return Err(Failure::invalid_input(format!(
                "an environment named `{name}` already exists"
            )));
        }
        progress::report(50, "Provisioning");
        let mut env = Entity::new("environment", name);
        env.title = Some(format!("{name} (dev)"));
        env.team = request.triggered_by.teams.clone();
        env.set_property("kind", "development");
        env.set_property("expires", expires.as_str());
        let stored = catalog::upsert(&env)?;
        info!("environment {} is up until {expires}", stored.identifier);
        progress::report(100, "Ready");
        Ok(Outcome::summary(format!(
            "Environment {} is ready until {expires}",
            stored.identifier
        )))
    }
}

portico_sdk::export_action!(DevEnvironment);
