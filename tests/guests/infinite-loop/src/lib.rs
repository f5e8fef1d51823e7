//! Hostile: spins forever without calling the host.
use portico_sdk::{Action, Failure, Outcome, Request, Value};

struct Spin;

impl Action for Spin {
    type Inputs = Value;
    fn run(_: Request<Value>) -> Result<Outcome, Failure> {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
}

portico_sdk::export_action!(Spin);
