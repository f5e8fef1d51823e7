//! Actions copied from Port. Port hands a run to a backend by `invocationMethod`; Portico runs
//! every backend as a WASM plugin. A `WEBHOOK` maps to the bundled `webhook` plugin, with the
//! URL as its config and its origin as the only HTTP grant; everything else is refused with what
//! to write instead.

use serde_json::{Map, Value, json};

/// The plugin a `WEBHOOK` invocation becomes (`plugins/webhook`).
pub const WEBHOOK_PLUGIN: &str = "webhook";

/// Rewrites a Port invocation method in `action` into a `WASM` one where the mapping is exact,
/// returning notes on what runs differently; `Err` says why it cannot be and what to do.
pub fn map_invocation(action: &mut Map<String, Value>) -> Result<Vec<String>, String> {
    let Some(Value::Object(method)) = action.get("invocationMethod") else {
        return Ok(Vec::new());
    };
    let kind = method.get("type").and_then(Value::as_str).unwrap_or("");
    match kind {
        "WEBHOOK" => {
            let (mapped, notes) = webhook(method)?;
            action.insert("invocationMethod".into(), mapped);
            Ok(notes)
        }
        "GITHUB" | "GITLAB" | "AZURE_DEVOPS" | "KAFKA" | "INTEGRATION_ACTION" => Err(format!(
            "invocationMethod.type {kind} hands the run to {}, which Portico does not run: \
             Portico runs each backend as a WASM plugin in its sandbox. Write one \
             (`portico plugin new NAME`) that calls the system's API through a \
             capabilities.http grant, which injects the credentials; or, if the system takes a \
             webhook, use `type: WEBHOOK` with its URL",
            match kind {
                "GITHUB" => "a GitHub Actions workflow",
                "GITLAB" => "a GitLab pipeline",
                "AZURE_DEVOPS" => "an Azure pipeline",
                "KAFKA" => "a Kafka topic",
                _ => "an integration",
            }
        )),
        _ => Ok(Vec::new()),
    }
}

/// Port's webhook: `{type: WEBHOOK, url, agent, synchronized, method, headers, body}`.
fn webhook(method: &Map<String, Value>) -> Result<(Value, Vec<String>), String> {
    let url = method
        .get("url")
        .and_then(Value::as_str)
        .ok_or("invocationMethod.url: a WEBHOOK needs the URL to call")?;
    let origin = origin(url).ok_or_else(|| {
        format!("invocationMethod.url: `{url}` is not an http(s) URL with a host")
    })?;
    let verb = method
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or("POST");
    if !verb.eq_ignore_ascii_case("POST") {
        return Err(format!(
            "invocationMethod.method: the webhook plugin sends POST, not {verb}; write a plugin \
             (`portico plugin new NAME`) for another method"
        ));
    }
    if method.get("body").is_some_and(|b| !b.is_null()) {
        return Err(
            "invocationMethod.body: the webhook plugin sends Portico's run payload \
             ({runId, action, inputs, entity, triggeredBy}), not a custom body; remove `body`, \
             or write a plugin (`portico plugin new NAME`) that builds it"
                .into(),
        );
    }
    let mut grant = json!({ "url": origin, "methods": ["POST"] });
    let mut notes = vec![format!(
        "invocationMethod WEBHOOK runs as the `{WEBHOOK_PLUGIN}` plugin, allowed to POST to \
         {origin} only; it sends Portico's run payload ({{runId, action, inputs, entity, \
         triggeredBy}}) and the run ends with the webhook's answer"
    )];
    if let Some(Value::Object(headers)) = method.get("headers")
        && !headers.is_empty()
    {
        // The grant injects headers; a value may name secrets, which the host fills in.
        grant["headers"] = Value::Object(headers.clone());
        notes.push(
            "invocationMethod.headers are injected by the host's HTTP grant; a secret is \
             written `{{ .secrets.NAME }}` (Port's jq templates are not evaluated)"
                .into(),
        );
    }
    if method.get("agent").and_then(Value::as_bool) == Some(true) {
        notes.push(
            "invocationMethod.agent: there is no agent; the host calls the URL itself, so it \
             must be reachable from the host (private addresses need an `ip` in the grant)"
                .into(),
        );
    }
    if method.get("synchronized").and_then(Value::as_bool) == Some(false) {
        notes.push(
            "invocationMethod.synchronized: false is not needed: a backend that reports back \
             later uses the hand-off (README, \"Handing a run off\")"
                .into(),
        );
    }
    let mapped = json!({
        "type": "WASM",
        "plugin": WEBHOOK_PLUGIN,
        "config": { "url": url },
        "capabilities": { "http": [grant] },
    });
    Ok((mapped, notes))
}

/// `scheme://host[:port]` of an http(s) URL.
fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    Some(format!("{scheme}://{authority}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(method: Value) -> Map<String, Value> {
        let Value::Object(map) = json!({ "identifier": "a", "invocationMethod": method }) else {
            unreachable!()
        };
        map
    }

    #[test]
    fn a_port_webhook_becomes_the_webhook_plugin_granted_its_origin() {
        let mut a = action(
            json!({ "type": "WEBHOOK", "url": "https://hooks.example.com/deploy?x=1",
            "agent": false, "synchronized": true, "method": "POST" }),
        );
        let notes = map_invocation(&mut a).unwrap();
        assert_eq!(
            a["invocationMethod"],
            json!({ "type": "WASM", "plugin": "webhook",
                "config": { "url": "https://hooks.example.com/deploy?x=1" },
                "capabilities": { "http": [
                    { "url": "https://hooks.example.com", "methods": ["POST"] } ] } })
        );
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("run payload"));
    }

    #[test]
    fn headers_move_to_the_grant_and_agents_are_explained() {
        let mut a = action(
            json!({ "type": "WEBHOOK", "url": "http://10.0.0.5:8080/hook",
            "agent": true, "headers": { "X-Token": "{{ .secrets.hook }}" } }),
        );
        let notes = map_invocation(&mut a).unwrap();
        assert_eq!(
            a["invocationMethod"]["capabilities"]["http"][0]["headers"]["X-Token"],
            "{{ .secrets.hook }}"
        );
        assert!(notes.iter().any(|n| n.contains("agent")), "{notes:?}");
    }

    #[test]
    fn what_cannot_be_mapped_is_refused_with_what_to_do() {
        let err = map_invocation(&mut action(json!({ "type": "GITHUB", "org": "acme",
            "repo": "infra", "workflow": "deploy.yml" })))
        .unwrap_err();
        assert!(err.contains("GitHub Actions workflow"), "{err}");
        assert!(err.contains("portico plugin new"), "{err}");
        let err = map_invocation(&mut action(json!({ "type": "WEBHOOK",
            "url": "https://h.example.com", "method": "PUT" })))
        .unwrap_err();
        assert!(err.starts_with("invocationMethod.method"), "{err}");
        let err = map_invocation(&mut action(json!({ "type": "WEBHOOK",
            "url": "https://h.example.com", "body": { "a": 1 } })))
        .unwrap_err();
        assert!(err.starts_with("invocationMethod.body"), "{err}");
        let err = map_invocation(&mut action(json!({ "type": "WEBHOOK", "url": "ftp://x" })))
            .unwrap_err();
        assert!(err.starts_with("invocationMethod.url"), "{err}");
    }

    #[test]
    fn a_wasm_action_is_left_as_it_is() {
        let mut a = action(json!({ "type": "WASM", "plugin": "p" }));
        let before = a.clone();
        assert!(map_invocation(&mut a).unwrap().is_empty());
        assert_eq!(a, before);
    }
}
