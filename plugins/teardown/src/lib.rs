//! Tears down the entity an automation fired for (e.g. an environment whose `expires` timer
//! passed): deletes it from the catalog. Deleting one already gone is not an error.
//!
//! Grants: catalog write on the entity's blueprint.

use portico_sdk::{Action, Failure, Outcome, Request, Value, catalog, info};

struct Teardown;

impl Action for Teardown {
    type Inputs = Value;

    fn run(request: Request<Value>) -> Result<Outcome, Failure> {
        let target = request.entity()?;
        let deleted = catalog::delete(&target.blueprint, &target.identifier)?;
        let what = format!("{} {}", target.blueprint, target.identifier);
        if deleted {
            info!("{what} torn down");
            Ok(Outcome::summary(format!("{what} torn down")))
        } else {
            Ok(Outcome::summary(format!("{what} was already gone")))
        }
    }
}

portico_sdk::export_action!(Teardown);
