//! A plugin built for the first published contract, `portico:action@0.1.0` (the frozen
//! `wit/since_v0.1.0`), before the SDK moved to 0.2.0: logs one line, adds a link, reads the
//! catalog and echoes its inputs, so a test sees every 0.1.0 import answered by today's host.

wit_bindgen::generate!({
    path: "../../../wit/since_v0.1.0",
    world: "action-backend",
    generate_all,
});

use portico::action::types::Link;
use portico::action::{catalog, log, progress};

struct V010;

impl Guest for V010 {
    fn run(request: RunRequest) -> Result<RunOutcome, RunFailure> {
        log::emit(
            log::Level::Info,
            &format!("built for 0.1.0, run {}", request.run_id),
        );
        progress::report(Some(50), Some("halfway"));
        progress::add_link(&Link {
            title: "docs".into(),
            url: "https://example.com/docs".into(),
        });
        let read = match catalog::get("service", "payments") {
            Ok(Some(entity)) => format!("found {}", entity.identifier),
            Ok(None) => "none".to_owned(),
            Err(catalog::Error::Denied(why)) => format!("denied: {why}"),
            Err(_) => "error".to_owned(),
        };
        Ok(RunOutcome {
            summary: Some(format!("0.1.0 plugin ran; catalog {read}")),
            links: Vec::new(),
            output: Some(request.inputs),
        })
    }
}

export!(V010);
