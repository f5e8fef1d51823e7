//! Hostile: writes `inputs.mib` MiB (default 32) of log through stdout, stderr and log.emit,
//! then succeeds.
use portico_sdk::{Action, Failure, Outcome, Request, Value, info};
use std::io::Write;

struct Flood;

impl Action for Flood {
    type Inputs = Value;
    fn run(request: Request<Value>) -> Result<Outcome, Failure> {
        let mib = request.inputs["mib"].as_u64().unwrap_or(32);
        let line = "x".repeat(1023) + "\n";
        let chunk = line.repeat(64);
        let mut stdout = std::io::stdout();
        for i in 0..mib * 16 {
            stdout
                .write_all(chunk.as_bytes())
                .map_err(|e| Failure::failed(e.to_string()))?;
            eprintln!("flood {i}");
            info!("flood {i}");
        }
        Ok(Outcome::summary("flooded"))
    }
}

portico_sdk::export_action!(Flood);
