//! Hostile: calls an origin its action does not grant (the URL comes from its inputs).
use portico_sdk::{Action, Failure, Outcome, Request, Value, http};

struct Forbidden;

impl Action for Forbidden {
    type Inputs = Value;
    fn run(request: Request<Value>) -> Result<Outcome, Failure> {
        let url = request.inputs["url"]
            .as_str()
            .unwrap_or("http://example.com/");
        let response = http::get(url).send()?;
        Ok(Outcome::summary(format!(
            "reached {url}: {}",
            response.status
        )))
    }
}

portico_sdk::export_action!(Forbidden);
