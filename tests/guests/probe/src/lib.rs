//! A programmable plugin for the capability tests: runs the `steps` in its inputs and returns
//! what each one gave. With `"failOnError": true` the first error fails the run (a denial as
//! `denied`); otherwise every error is reported in the output.
//!
//! Steps: `{"http": {method, url, headers, body}}`, `{"get": {blueprint, identifier}}`,
//! `{"upsert": <entity>}`, `{"delete": {blueprint, identifier}}`, `{"search": <query>}`,
//! `{"writeFile": {path, content}}`, `{"readFile": path}`, `{"listDir": path}`,
//! `{"progress": {percent, label}}`, `{"link": {title, url}}`, `{"log": text}`, `{"env": null}`,
//! `{"print": text}`, `{"sleepMs": n}`, `{"handOffTo": url}` (hands the run off and POSTs
//! `{url, token}` to `url`), `{"echo": value}` (the value itself), `{"summary": text}` (the
//! run's summary), `{"fail": text}` (fails the run with that text), `{"logLines": {count,
//! text}}`, `{"repeat": {text, times}}` (a long string).
//!
//! In the steps, `{{NAME}}` stands for the string input `NAME` (e.g. a secret input).
use portico_sdk::{
    Action, Entity, Failure, Outcome, Request, Value, catalog, http, info, json, progress,
};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Inputs {
    /// The steps; when absent, the action's `config.steps` (for automations, whose inputs are
    /// the event).
    #[serde(default)]
    steps: Value,
    #[serde(default)]
    fail_on_error: bool,
    #[serde(flatten)]
    others: BTreeMap<String, Value>,
}

/// The steps with `{{NAME}}` replaced by the string inputs.
fn steps(inputs: &Inputs) -> Result<Vec<Step>, Failure> {
    let mut text = inputs.steps.to_string();
    for (name, value) in &inputs.others {
        if let Some(value) = value.as_str() {
            let escaped = Value::String(value.to_owned()).to_string();
            text = text.replace(&format!("{{{{{name}}}}}"), &escaped[1..escaped.len() - 1]);
        }
    }
    serde_json::from_str(&text).map_err(|e| Failure::invalid_input(e.to_string()))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
enum Step {
    Http {
        #[serde(default = "get")]
        method: String,
        url: String,
        #[serde(default)]
        headers: BTreeMap<String, String>,
        #[serde(default)]
        body: String,
    },
    Get {
        blueprint: String,
        identifier: String,
    },
    Upsert(Entity),
    Delete {
        blueprint: String,
        identifier: String,
    },
    Search(Value),
    WriteFile {
        path: String,
        content: String,
    },
    ReadFile(String),
    ListDir(String),
    Progress {
        percent: u8,
        label: String,
    },
    Link {
        title: String,
        url: String,
    },
    Log(String),
    Print(String),
    Env(#[expect(dead_code, reason = "the step takes no argument")] Value),
    SleepMs(u64),
    HandOffTo(String),
    Echo(Value),
    Summary(String),
    Fail(String),
    LogLines {
        count: u64,
        #[serde(default)]
        text: String,
    },
    Repeat {
        text: String,
        times: usize,
    },
}

fn get() -> String {
    "GET".to_owned()
}

struct Probe;

impl Action for Probe {
    type Inputs = Inputs;
    fn run(request: Request<Inputs>) -> Result<Outcome, Failure> {
        let mut results = Vec::new();
        let mut inputs = request.inputs;
        if inputs.steps.is_null() {
            inputs.steps = request.config.get("steps").cloned().unwrap_or_default();
        }
        let mut summary = "probed".to_owned();
        for step in steps(&inputs)? {
            if let Step::Summary(text) = &step {
                summary = text.clone();
                continue;
            }
            let result = run_step(step);
            match result {
                Ok(value) => results.push(json!({ "ok": value })),
                Err(failure) if inputs.fail_on_error => return Err(failure),
                Err(failure) => results.push(json!({ "error": failure.to_string() })),
            }
        }
        Ok(Outcome::summary(summary).with_output(json!({ "results": results })))
    }
}

fn io(e: std::io::Error) -> Failure {
    if e.kind() == std::io::ErrorKind::PermissionDenied || e.kind() == std::io::ErrorKind::NotFound
    {
        Failure::denied(e.to_string())
    } else {
        Failure::failed(e.to_string())
    }
}

fn run_step(step: Step) -> Result<Value, Failure> {
    Ok(match step {
        Step::Http {
            method,
            url,
            headers,
            body,
        } => {
            let mut req = http::request(&method, &url).body(body);
            for (k, v) in &headers {
                req = req.header(k, v);
            }
            let res = req.send()?;
            json!({ "status": res.status, "headers": res.headers, "body": res.text() })
        }
        Step::Get {
            blueprint,
            identifier,
        } => json!(catalog::get(&blueprint, &identifier)?),
        Step::Upsert(entity) => json!(catalog::upsert(&entity)?),
        Step::Delete {
            blueprint,
            identifier,
        } => json!(catalog::delete(&blueprint, &identifier)?),
        Step::Search(query) => json!(catalog::search(&query)?),
        Step::WriteFile { path, content } => {
            std::fs::write(&path, content).map_err(io)?;
            json!(path)
        }
        Step::ReadFile(path) => json!(std::fs::read_to_string(&path).map_err(io)?),
        Step::ListDir(path) => {
            let names: Vec<String> = std::fs::read_dir(&path)
                .map_err(io)?
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            json!(names)
        }
        Step::Progress { percent, label } => {
            progress::report(percent, &label);
            Value::Null
        }
        Step::Link { title, url } => {
            progress::add_link(&title, &url);
            Value::Null
        }
        Step::Log(text) => {
            info!("{text}");
            Value::Null
        }
        Step::Print(text) => {
            println!("{text}");
            Value::Null
        }
        Step::Env(_) => {
            let vars: BTreeMap<String, String> = std::env::vars().collect();
            json!({ "vars": vars, "args": std::env::args().collect::<Vec<_>>() })
        }
        Step::HandOffTo(receiver) => {
            let report = progress::hand_off()?;
            let res = http::post(&receiver).json(&report).send()?;
            json!({ "status": res.status })
        }
        Step::Echo(value) => value,
        Step::Summary(_) => Value::Null,
        Step::Fail(text) => return Err(Failure::failed(text)),
        Step::LogLines { count, text } => {
            for _ in 0..count {
                info!("{text}");
            }
            Value::Null
        }
        Step::Repeat { text, times } => json!(text.repeat(times)),
        Step::SleepMs(ms) => {
            std::thread::sleep(std::time::Duration::from_millis(ms));
            Value::Null
        }
    })
}

portico_sdk::export_action!(Probe);
