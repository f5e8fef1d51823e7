//! What a run carries from its acceptance to its worker: the action as it was, the plugin's
//! request, the sealed secret inputs and the automation chain. Both the runner and the
//! automations make runs, so this lives below both.
//!
//! The store keeps the action by reference: a run's stored payload names its action version
//! by digest ([`ActionVersion`], stored once with the first run that refers to it), and
//! [`Payload::open`] reads it back, from a process-wide cache of versions (they never change)
//! or from the store. Payloads stored before versions existed carry the action itself and
//! still open.

use crate::actions::ActionDefinition;
use crate::host_key::HostKey;
use portico_runtime::RunRequest;
use portico_store::{ActionVersion, JsonText, Store, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

/// What a worker needs to execute a run, kept with the run (`RunRecord::payload`, in the
/// form [`Payload::stored`] writes).
#[derive(Clone, Debug)]
pub struct Payload {
    /// The action as it was when the run was accepted.
    pub action: Arc<ActionDefinition>,
    /// The request the plugin receives, without its secret inputs.
    pub request: RunRequest,
    /// The secret inputs (`encryption`), an object sealed with the host key for this run
    /// ([`HostKey::seal`]); the store deletes it when the run ends.
    pub sealed: Option<String>,
    /// The automations whose runs led to this one, oldest first (loop refusal).
    pub chain: Vec<String>,
}

/// A payload as written: the action named by its version.
#[derive(Serialize)]
struct Stored<'a> {
    #[serde(rename = "actionVersion")]
    action_version: &'a str,
    request: &'a RunRequest,
    #[serde(skip_serializing_if = "Option::is_none")]
    sealed: &'a Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    chain: &'a Vec<String>,
}

/// A payload as read: by version, or (stored before versions) with the action inline.
#[derive(Deserialize)]
struct Read {
    #[serde(rename = "actionVersion", default)]
    action_version: Option<String>,
    #[serde(default)]
    action: Option<Arc<ActionDefinition>>,
    request: RunRequest,
    #[serde(default)]
    sealed: Option<String>,
    #[serde(default)]
    chain: Vec<String>,
}

/// Why a stored payload cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// The text is not a payload.
    #[error("the run's stored request is unreadable: {0}")]
    Unreadable(#[from] serde_json::Error),
    /// It names a version the store does not hold.
    #[error("the run's action version `{0}` is not stored")]
    UnknownVersion(String),
    /// Reading the version failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Action versions by digest, parsed: shared by every store in the process, since a digest
/// names one content.
static VERSIONS: LazyLock<Mutex<HashMap<String, Arc<ActionDefinition>>>> =
    LazyLock::new(Default::default);

fn versions() -> std::sync::MutexGuard<'static, HashMap<String, Arc<ActionDefinition>>> {
    VERSIONS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `definition`'s version: its JSON and the digest that names it. Remembered, so that runs
/// accepted here open without reading it back.
pub fn version_of(definition: &Arc<ActionDefinition>) -> serde_json::Result<ActionVersion> {
    let text = serde_json::to_string(&**definition)?;
    let digest = hex::encode(&Sha256::digest(text.as_bytes())[..16]);
    versions().insert(digest.clone(), definition.clone());
    Ok(ActionVersion {
        digest,
        definition: text,
    })
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
    /// The payload as the store keeps it, the action named by `version`'s digest.
    pub fn stored(&self, version: &ActionVersion) -> serde_json::Result<JsonText> {
        JsonText::of(&Stored {
            action_version: &version.digest,
            request: &self.request,
            sealed: &self.sealed,
            chain: &self.chain,
        })
    }

    /// Reads a stored payload back, with its action version.
    pub async fn open(store: &dyn Store, text: &JsonText) -> Result<Self, PayloadError> {
        let read: Read = text.parse()?;
        let action = match (read.action, read.action_version) {
            (Some(action), _) => action,
            (None, Some(digest)) => action_version(store, &digest).await?,
            (None, None) => {
                return Err(PayloadError::Unreadable(serde::de::Error::missing_field(
                    "actionVersion",
                )));
            }
        };
        Ok(Self {
            action,
            request: read.request,
            sealed: read.sealed,
            chain: read.chain,
        })
    }

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

/// The action version `digest`, from the cache or the store.
async fn action_version(
    store: &dyn Store,
    digest: &str,
) -> Result<Arc<ActionDefinition>, PayloadError> {
    if let Some(action) = versions().get(digest) {
        return Ok(action.clone());
    }
    let text = store
        .action_version(digest)
        .await?
        .ok_or_else(|| PayloadError::UnknownVersion(digest.to_owned()))?;
    let action: Arc<ActionDefinition> = Arc::new(serde_json::from_str(&text)?);
    versions().insert(digest.to_owned(), action.clone());
    Ok(action)
}
