//! Hostile when its action does not allow it: GETs the URL in its inputs. The hostile runs point
//! it at an origin the action does not grant, and at a granted host name that resolves to
//! loopback.
use portico_sdk::{Action, Failure, Outcome, Request, Value, http};

struct HttpGet;

impl Action for HttpGet {
    type Inputs = Value;
    fn run(request: Request<Value>) -> Result<Outcome, Failure> {
        let url = request.inputs["url"].as_str().unwrap_or("http://example.com/");
        let response = http::get(url).send()?;
        Ok(Outcome::summary(format!("reached {url}: {}", response.status)))
    }
}

portico_sdk::export_action!(HttpGet);
