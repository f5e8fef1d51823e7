//! Hostile: panics.
use portico_sdk::{Action, Failure, Outcome, Request, Value};

struct Panic;

impl Action for Panic {
    type Inputs = Value;
    fn run(_: Request<Value>) -> Result<Outcome, Failure> {
        let items: Vec<u32> = Vec::new();
        if std::hint::black_box(items.is_empty()) {
            panic!("the plugin gave up: no items to process");
        }
        Ok(Outcome::default())
    }
}

portico_sdk::export_action!(Panic);
