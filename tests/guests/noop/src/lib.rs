//! Does nothing but what every plugin does: parse its inputs and log one line. The benchmark's
//! unit of work.
use portico_sdk::{Action, Failure, Outcome, Request, Value, info};

struct Noop;

impl Action for Noop {
    type Inputs = Value;
    fn run(request: Request<Value>) -> Result<Outcome, Failure> {
        info!("noop {}", request.run_id);
        Ok(Outcome::default())
    }
}

portico_sdk::export_action!(Noop);
