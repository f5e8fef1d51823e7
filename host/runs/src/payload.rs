//! What a run carries from its acceptance to its worker: the action as it was, the plugin's
//! request, the sealed secret inputs and the automation chain. Both the runner and the
//! automations make runs, so this lives below both.

use crate::actions::ActionDefinition;
use crate::host_key::HostKey;
use portico_runtime::RunRequest;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

/// What a worker needs to execute a run, kept with the run (`RunRecord::payload`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Payload {
    /// The action as it was when the run was accepted.
    pub action: Arc<ActionDefinition>,
    /// The request the plugin receives, without its secret inputs.
    pub request: RunRequest,
    /// The secret inputs (`encryption`), an object sealed with the host key for this run
    /// ([`HostKey::seal`]); the store deletes it when the run ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<String>,
    /// The automations whose runs led to this one, oldest first (loop refusal).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chain: Vec<String>,
}

/// A new run id: `r_`, the time in ms (hex, so ids sort by creation), 8 random bytes.
pub fn new_run_id() -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).unwrap_or_else(|e| panic!("the OS random source failed: {e}"));
    format!(
        "r_{:012x}{}",
        portico_store::now().timestamp_millis(),
        hex::encode(bytes)
    )
}

impl Payload {
    /// A payload whose `secrets` (names of inputs in `request.inputs`) are moved out of the
    /// request and sealed for `request.run_id`.
    pub fn seal(
        action: Arc<ActionDefinition>,
        mut request: RunRequest,
        secrets: &[String],
        key: &HostKey,
    ) -> Self {
        let mut hidden = serde_json::Map::new();
        if let Some(inputs) = request.inputs.as_object_mut() {
            for name in secrets {
                if let Some(value) = inputs.remove(name) {
                    hidden.insert(name.clone(), value);
                }
            }
        }
        let sealed =
            (!hidden.is_empty()).then(|| key.seal(&Value::Object(hidden), &request.run_id));
        Self {
            action,
            request,
            sealed,
            chain: Vec::new(),
        }
    }
}
