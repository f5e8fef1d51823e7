//! Calls a webhook: POSTs the run's payload as JSON to the URL in the action's config. The host
//! adds the auth header from the action's HTTP grant. A non-2xx answer fails the run with the
//! status and the start of the body.
//!
//! Action config: `{ "url": "https://hooks.example.com/deploy" }`. Grants: http for that origin.

use portico_sdk::{Action, Failure, Outcome, Request, Value, http, info, json, progress};
use serde::Deserialize;

/// How much of an error body the failure message quotes.
const BODY_PREVIEW: usize = 200;

#[derive(Deserialize)]
struct Config {
    url: String,
}

struct Webhook;

impl Action for Webhook {
    type Inputs = Value;

    fn run(request: Request<Value>) -> Result<Outcome, Failure> {
        let config: Config = request.config()?;
        let payload = json!({
            "runId": request.run_id,
            "action": request.action,
            "inputs": request.inputs,
            "entity": request.entity,
            "triggeredBy": request.triggered_by,
        });

        progress::report(10, "Calling the webhook");
        info!("POST {}", config.url);
        let response = http::post(&config.url).json(&payload).send()?;
        if !response.is_success() {
            let body: String = response.text().chars().take(BODY_PREVIEW).collect();
            return Err(Failure::failed(format!(
                "the webhook answered {}: {body}",
                response.status
            )));
        }
        info!("the webhook answered {}", response.status);
        progress::report(100, "Done");
        Ok(
            Outcome::summary(format!("Webhook answered {}", response.status))
                .with_output(json!({ "status": response.status, "body": response.text() })),
        )
    }
}

portico_sdk::export_action!(Webhook);
