//! Hostile: tries to read files outside its sandbox: `/etc/passwd`, and `..` from `/scratch`.
//! Succeeds (leaking what it read) if any read works; otherwise fails as denied with the errors.
use portico_sdk::{Action, Failure, Outcome, Request, Value, json};

struct Escape;

impl Action for Escape {
    type Inputs = Value;
    fn run(_: Request<Value>) -> Result<Outcome, Failure> {
        let mut errors = Vec::new();
        for path in [
            "/etc/passwd",
            "/scratch/../etc/passwd",
            "/scratch/../../../../etc/passwd",
            "../etc/passwd",
        ] {
            match std::fs::read_to_string(path) {
                Ok(text) => {
                    return Ok(Outcome::summary("escaped")
                        .with_output(json!({ "path": path, "text": text })));
                }
                Err(e) => errors.push(format!("{path}: {e}")),
            }
        }
        match std::fs::read_dir("/scratch/..") {
            Ok(entries) => {
                let names: Vec<String> = entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                return Ok(
                    Outcome::summary("listed the parent").with_output(json!({ "names": names }))
                );
            }
            Err(e) => errors.push(format!("/scratch/..: {e}")),
        }
        Err(Failure::denied(errors.join("; ")))
    }
}

portico_sdk::export_action!(Escape);
