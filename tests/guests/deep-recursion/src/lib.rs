//! Hostile: recurses without end.
use portico_sdk::{Action, Failure, Outcome, Request, Value};

struct Recurse;

/// Stops only at a depth no stack can hold.
#[inline(never)]
fn dive(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 8]);
    if depth == u64::MAX {
        return frame[0];
    }
    dive(depth + 1).wrapping_add(frame[3])
}

impl Action for Recurse {
    type Inputs = Value;
    fn run(_: Request<Value>) -> Result<Outcome, Failure> {
        std::hint::black_box(dive(0));
        Ok(Outcome::default())
    }
}

portico_sdk::export_action!(Recurse);
