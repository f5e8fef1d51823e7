//! Hostile: calls a granted host name that resolves to loopback (the URL comes from its inputs).
use portico_sdk::{Action, Failure, Outcome, Request, Value, http};

struct Loopback;

impl Action for Loopback {
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

portico_sdk::export_action!(Loopback);
