//! What an action grants its plugin, as the operator writes it in `invocationMethod`, and the
//! checked form the runtime enforces. Everything not granted is denied.
//!
//! Plain composition: each capability owns its grant type and its checked rule
//! (`capabilities::<name>`); this module only puts them side by side and checks them in order.

use crate::capabilities::catalog::{CatalogGrant, CatalogRules};
use crate::capabilities::fs::Filesystem;
use crate::capabilities::http::{HttpGrantEntry, HttpRule};
use crate::capabilities::progress::HandOffGrant;
use crate::config::RuntimeConfig;
use crate::limits::{GrantError, Limits};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// `invocationMethod.capabilities`: each field absent means nothing of that kind is granted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    /// Blueprints the plugin may read and write.
    #[serde(default)]
    pub catalog: CatalogGrant,
    /// Origins the plugin may call, with the headers the host adds.
    #[serde(default)]
    pub http: Vec<HttpGrantEntry>,
    /// `"scratch"`: a fresh, empty `/scratch` folder for the run, removed afterwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filesystem: Option<Filesystem>,
    /// Lets the plugin hand the run to an external system that reports its end
    /// (`progress.hand-off`), waiting at most this long for that report.
    #[serde(default, rename = "handOff", skip_serializing_if = "Option::is_none")]
    pub hand_off: Option<HandOffGrant>,
}

/// A checked grant, ready to enforce: build it once per action, share it between runs. Each
/// run's capability contexts hold (a handle to) their own part of it.
#[derive(Debug)]
pub struct Grants {
    pub(crate) catalog: Arc<CatalogRules>,
    pub(crate) http: Arc<[HttpRule]>,
    pub(crate) scratch: bool,
    pub(crate) hand_off: Option<HandOffGrant>,
    pub(crate) limits: Limits,
}

impl Grants {
    /// Checks `capabilities` and `limits` against the runtime's bounds.
    pub fn new(
        capabilities: &Capabilities,
        limits: Limits,
        config: &RuntimeConfig,
    ) -> Result<Self, GrantError> {
        let catalog = CatalogRules::new(&capabilities.catalog)?;
        let http = HttpRule::parse_all(&capabilities.http)?;
        if let Some(grant) = capabilities.hand_off {
            grant.check()?;
        }
        limits.check(config.max_memory_mib)?;
        Ok(Self {
            catalog: Arc::new(catalog),
            http,
            scratch: capabilities.filesystem == Some(Filesystem::Scratch),
            hand_off: capabilities.hand_off,
            limits,
        })
    }

    /// A grant of nothing, with the given limits (which must be valid for `config`).
    pub fn none(limits: Limits, config: &RuntimeConfig) -> Result<Self, GrantError> {
        Self::new(&Capabilities::default(), limits, config)
    }

    /// The hand-off grant, if any.
    pub fn hand_off(&self) -> Option<HandOffGrant> {
        self.hand_off
    }

    /// The limits this grant runs under.
    pub fn limits(&self) -> Limits {
        self.limits
    }
}
