//! What an action grants its plugin, as the operator writes it in `invocationMethod`, and the
//! checked form the runtime enforces. Everything not granted is denied.

use crate::capabilities::http::HttpRule;
use crate::config::RuntimeConfig;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

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

/// `capabilities.handOff`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HandOffGrant {
    /// How long the external system has to report a final status, from the plugin's return.
    pub timeout_seconds: u32,
}

impl HandOffGrant {
    /// A week: longer than any pipeline should take to report.
    pub const MAX_TIMEOUT_SECONDS: u32 = 7 * 24 * 3600;
}

/// Catalog access by blueprint identifier. Writing a blueprint implies reading it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogGrant {
    /// Blueprints the plugin may read and search.
    #[serde(default)]
    pub read: Vec<String>,
    /// Blueprints the plugin may create, change and delete entities of.
    #[serde(default)]
    pub write: Vec<String>,
}

/// One reachable origin: `scheme://host[:port]`, no path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpGrantEntry {
    /// The origin, e.g. `https://api.github.com` or `http://10.0.0.5:8080`.
    pub url: String,
    /// Headers added to every request to this origin, after the plugin built it; values may use
    /// `{{ .secrets.NAME }}`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// The filesystem grant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Filesystem {
    /// A fresh per-run folder mounted at `/scratch`.
    Scratch,
}

/// `invocationMethod.limits`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Limits {
    /// Wall-clock time for the whole run, host calls included.
    #[serde(default = "Limits::default_timeout")]
    pub timeout_seconds: u32,
    /// The plugin's linear memory.
    #[serde(default = "Limits::default_memory", rename = "memoryMiB")]
    pub memory_mib: u32,
    /// Log bytes kept (stdout, stderr and `log.emit` together); the rest is dropped.
    #[serde(default = "Limits::default_log_bytes")]
    pub log_bytes: u64,
}

impl Limits {
    const MAX_TIMEOUT_SECONDS: u32 = 24 * 3600;
    const MAX_LOG_BYTES: u64 = 64 << 20;

    fn default_timeout() -> u32 {
        30
    }
    fn default_memory() -> u32 {
        64
    }
    fn default_log_bytes() -> u64 {
        1 << 20
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout_seconds: Self::default_timeout(),
            memory_mib: Self::default_memory(),
            log_bytes: Self::default_log_bytes(),
        }
    }
}

/// Why a grant or limit cannot be used; `path` names the field as the action spells it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct GrantError {
    /// E.g. `capabilities.http[0].url` or `limits.memoryMiB`.
    pub path: String,
    /// What is wrong and what would be accepted.
    pub reason: String,
}

impl GrantError {
    pub(crate) fn new(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

/// A checked grant, ready to enforce: build it once per action, share it between runs.
#[derive(Debug)]
pub struct Grants {
    pub(crate) read: BTreeSet<String>,
    pub(crate) write: BTreeSet<String>,
    pub(crate) http: Vec<HttpRule>,
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
        let check_names = |list: &[String], field: &str| {
            list.iter().enumerate().try_for_each(|(i, name)| {
                if name.is_empty() || name.trim() != name {
                    Err(GrantError::new(
                        format!("capabilities.catalog.{field}[{i}]"),
                        "a blueprint identifier must be non-empty without surrounding spaces",
                    ))
                } else {
                    Ok(())
                }
            })
        };
        check_names(&capabilities.catalog.read, "read")?;
        check_names(&capabilities.catalog.write, "write")?;

        let http = capabilities
            .http
            .iter()
            .enumerate()
            .map(|(i, entry)| HttpRule::parse(entry, &format!("capabilities.http[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;

        if let Some(grant) = capabilities.hand_off
            && (grant.timeout_seconds == 0
                || grant.timeout_seconds > HandOffGrant::MAX_TIMEOUT_SECONDS)
        {
            return Err(GrantError::new(
                "capabilities.handOff.timeoutSeconds",
                format!(
                    "must be between 1 and {}",
                    HandOffGrant::MAX_TIMEOUT_SECONDS
                ),
            ));
        }
        if limits.timeout_seconds == 0 || limits.timeout_seconds > Limits::MAX_TIMEOUT_SECONDS {
            return Err(GrantError::new(
                "limits.timeoutSeconds",
                format!("must be between 1 and {}", Limits::MAX_TIMEOUT_SECONDS),
            ));
        }
        if limits.memory_mib == 0 || limits.memory_mib > config.max_memory_mib {
            return Err(GrantError::new(
                "limits.memoryMiB",
                format!(
                    "must be between 1 and {} (the host's max_memory_mib)",
                    config.max_memory_mib
                ),
            ));
        }
        if limits.log_bytes > Limits::MAX_LOG_BYTES {
            return Err(GrantError::new(
                "limits.logBytes",
                format!("must be at most {}", Limits::MAX_LOG_BYTES),
            ));
        }

        let read = capabilities.catalog.read.iter().cloned();
        let write: BTreeSet<String> = capabilities.catalog.write.iter().cloned().collect();
        Ok(Self {
            read: read.chain(write.iter().cloned()).collect(),
            write,
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
