//! Hostile: allocates (and touches) memory until something stops it.
use portico_sdk::{Action, Failure, Outcome, Request, Value};

struct Bomb;

impl Action for Bomb {
    type Inputs = Value;
    fn run(_: Request<Value>) -> Result<Outcome, Failure> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(vec![0xAB; 1 << 20]);
            std::hint::black_box(&hoard);
        }
    }
}

portico_sdk::export_action!(Bomb);
