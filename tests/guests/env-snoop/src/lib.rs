//! Hostile: looks for environment variables and arguments (the host's secrets live there).
//! Succeeds (leaking them) if it finds any; otherwise fails as denied.
use portico_sdk::{Action, Failure, Outcome, Request, Value, json};

struct Snoop;

impl Action for Snoop {
    type Inputs = Value;
    fn run(_: Request<Value>) -> Result<Outcome, Failure> {
        let vars: Vec<(String, String)> = std::env::vars().collect();
        let args: Vec<String> = std::env::args().collect();
        if vars.is_empty() && args.is_empty() {
            return Err(Failure::denied(
                "no environment variables or arguments are visible",
            ));
        }
        Ok(Outcome::summary("found the environment")
            .with_output(json!({ "vars": vars, "args": args })))
    }
}

portico_sdk::export_action!(Snoop);
