//! DAY-2: changes a service's replica count. Reads the entity fresh from the catalog, sets
//! `replicas`, and logs the count before and after.
//!
//! Grants: catalog write on the entity's blueprint (usually `service`).

use portico_sdk::{Action, Failure, Outcome, Request, catalog, info, progress};
use serde::Deserialize;

const MAX_REPLICAS: u32 = 100;

#[derive(Deserialize)]
struct Inputs {
    replicas: u32,
}

struct ChangeReplicas;

impl Action for ChangeReplicas {
    type Inputs = Inputs;

    fn run(request: Request<Inputs>) -> Result<Outcome, Failure> {
        let target = request.entity()?;
        let wanted = request.inputs.replicas;
        if wanted > MAX_REPLICAS {
            return Err(Failure::invalid_input(format!(
                "replicas must be at most {MAX_REPLICAS}, got {wanted}"
            )));
        }

        let mut entity = catalog::get(&target.blueprint, &target.identifier)?.ok_or_else(|| {
            Failure::invalid_input(format!(
                "{} `{}` no longer exists",
                target.blueprint, target.identifier
            ))
        })?;
        let before = entity.property("replicas").cloned().unwrap_or_default();
        info!("{}: replicas before = {before}", entity.identifier);

        progress::report(50, "Updating the catalog");
        entity.set_property("replicas", wanted);
        let stored = catalog::upsert(&entity)?;
        info!("{}: replicas after = {wanted}", stored.identifier);

        progress::report(100, "Done");
        Ok(Outcome::summary(format!(
            "{} scaled from {before} to {wanted} replicas",
            stored.identifier
        )))
    }
}

portico_sdk::export_action!(ChangeReplicas);
