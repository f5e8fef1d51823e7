//! Hostile: writes a blueprint its action does not grant.
use portico_sdk::{Action, Entity, Failure, Outcome, Request, Value, catalog};

struct Escape;

impl Action for Escape {
    type Inputs = Value;
    fn run(_: Request<Value>) -> Result<Outcome, Failure> {
        let mut team = Entity::new("team", "intruders");
        team.set_property("owner", "the plugin");
        catalog::upsert(&team)?;
        Ok(Outcome::summary("wrote a team"))
    }
}

portico_sdk::export_action!(Escape);
