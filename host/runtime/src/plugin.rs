//! Loading a plugin: check that the bytes are a component that fits the `action-backend` world,
//! compile it once per digest (or load the compiled artifact from the disk cache), and build its
//! instantiation template.

use crate::bindings::ActionBackendPre;
use crate::engine::Inner;
use crate::run::RunState;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::Arc;
use wasmtime::component::Component;

/// The largest component accepted.
pub const MAX_PLUGIN_BYTES: usize = 64 << 20;

/// A plugin ready to run: checked, compiled and linked.
pub struct Plugin {
    digest: String,
    size: usize,
    loaded_from: LoadedFrom,
    pub(crate) pre: ActionBackendPre<RunState>,
}

impl Plugin {
    /// `sha256:<hex>` of the component bytes.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Size of the component in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Where the compiled code came from when this process first loaded it.
    pub fn loaded_from(&self) -> LoadedFrom {
        self.loaded_from
    }
}

/// Where a plugin's compiled code came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadedFrom {
    /// Compiled from the component bytes (and written to the cache).
    Compiled,
    /// Loaded from the on-disk cache of compiled artifacts.
    Cache,
}

/// Why a component cannot be used as a plugin. Each message says what to change.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// Too big.
    #[error("the plugin is {size} bytes; the limit is {MAX_PLUGIN_BYTES} bytes")]
    TooLarge {
        /// Its size.
        size: usize,
    },
    /// Not a component at all.
    #[error("not a WebAssembly component: {0}")]
    NotAComponent(&'static str),
    /// A component, but malformed or using features the engine does not support.
    #[error("the component cannot be compiled: {0}")]
    Invalid(String),
    /// It imports something Portico does not provide.
    #[error("the component imports something Portico does not offer: {0}")]
    UnsupportedImport(String),
    /// It does not export `run` with the contract's signature.
    #[error("the component does not fit the portico:action/action-backend world: {0}")]
    MissingExport(String),
    /// The compiled artifact could not be cached.
    #[error("cannot write the compiled plugin to {path}: {source}")]
    Cache {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

pub(crate) fn load(rt: &Inner, bytes: &[u8]) -> Result<Arc<Plugin>, PluginError> {
    if bytes.len() > MAX_PLUGIN_BYTES {
        return Err(PluginError::TooLarge { size: bytes.len() });
    }
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(bytes)));
    if let Some(plugin) = rt.lock_plugins().get(&digest) {
        return Ok(plugin.clone());
    }
    if !wasmparser::Parser::is_component(bytes) {
        return Err(PluginError::NotAComponent(
            if wasmparser::Parser::is_core_wasm(bytes) {
                "this is a core module; build with `--target wasm32-wasip2` to get a component"
            } else {
                "the bytes do not start with the WebAssembly magic number"
            },
        ));
    }

    let artifact = rt
        .artifacts
        .join(format!("{}.cwasm", &digest["sha256:".len()..]));
    let (component, loaded_from) = match load_artifact(rt, &artifact) {
        Some(component) => (component, LoadedFrom::Cache),
        None => (compile(rt, bytes, &artifact)?, LoadedFrom::Compiled),
    };

    let pre = rt
        .linker
        .instantiate_pre(&component)
        .map_err(|e| PluginError::UnsupportedImport(format!("{e:#}")))?;
    let pre =
        ActionBackendPre::new(pre).map_err(|e| PluginError::MissingExport(format!("{e:#}")))?;
    let plugin = Arc::new(Plugin {
        digest: digest.clone(),
        size: bytes.len(),
        loaded_from,
        pre,
    });
    Ok(rt.lock_plugins().entry(digest).or_insert(plugin).clone())
}

fn load_artifact(rt: &Inner, path: &std::path::Path) -> Option<Component> {
    if !path.exists() {
        return None;
    }
    // SAFETY: the file is one this host wrote (atomically, by rename) under a folder keyed by the
    // engine's compatibility hash, and it is never modified afterwards.
    match unsafe { Component::deserialize_file(&rt.engine, path) } {
        Ok(component) => Some(component),
        Err(e) => {
            tracing::warn!(path = %path.display(), "ignoring unusable compiled plugin: {e:#}");
            None
        }
    }
}

fn compile(rt: &Inner, bytes: &[u8], artifact: &std::path::Path) -> Result<Component, PluginError> {
    let component = Component::from_binary(&rt.engine, bytes)
        .map_err(|e| PluginError::Invalid(format!("{e:#}")))?;
    let compiled = component
        .serialize()
        .map_err(|e| PluginError::Invalid(format!("{e:#}")))?;
    let cache_err = |source| PluginError::Cache {
        path: artifact.to_owned(),
        source,
    };
    let dir = artifact.parent().unwrap_or(std::path::Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(cache_err)?;
    std::io::Write::write_all(&mut tmp, &compiled).map_err(cache_err)?;
    tmp.persist(artifact).map_err(|e| cache_err(e.error))?;
    Ok(component)
}

impl Inner {
    fn lock_plugins(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Arc<Plugin>>> {
        self.plugins.lock().unwrap_or_else(|e| e.into_inner())
    }
}
