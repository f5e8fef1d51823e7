//! Loading a plugin: check that the bytes are a component that fits the `action-backend` world,
//! compile it once per digest (or load the compiled artifact from the disk cache), and build its
//! instantiation template.
//!
//! A compiled artifact is native code that wasmtime maps and runs without checking it, so the
//! cache trusts only what a holder of the artifact key wrote: `<digest>.cwasm.mac` beside each
//! `<digest>.cwasm` holds HMAC-SHA256 over the digest and the artifact bytes. The bytes are read
//! once, verified and deserialized from memory, so the file cannot change between the check and
//! the use; an artifact that fails the check is deleted and compiled again.

use crate::bindings::{self, v0_1, v0_2};
use crate::state::RunState;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

/// The largest component accepted.
pub const MAX_PLUGIN_BYTES: usize = 64 << 20;

/// The Prometheus histogram of plugin loads (`from`: `compiled`, the compile time, or `cache`,
/// a compiled artifact read back); recorded through the `metrics` facade.
pub const PLUGIN_LOAD_SECONDS: &str = "portico_plugin_load_seconds";

/// A plugin ready to run: checked, compiled and linked.
pub struct Plugin {
    digest: String,
    size: usize,
    loaded_from: LoadedFrom,
    pub(crate) pre: Backend,
}

/// The instantiation template of the contract version the plugin was built for: each version's
/// `run` export is found by its own world's indices.
pub(crate) enum Backend {
    /// Built for `portico:action@0.1.0`.
    V0_1(v0_1::ActionBackendPre<RunState>),
    /// Built for `portico:action@0.2.0`.
    V0_2(v0_2::ActionBackendPre<RunState>),
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

    /// The contract version the plugin was built for, e.g. `0.2.0` (`portico:action@0.2.0`).
    pub fn contract(&self) -> &'static str {
        match self.pre {
            Backend::V0_1(_) => "0.1.0",
            Backend::V0_2(_) => "0.2.0",
        }
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

/// Where a digest stands in this process (a Python or JavaScript component takes seconds to
/// compile, so an upload can answer before it is ready).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PluginStatus {
    /// Compiled (or loaded from the cache) and linked: a run starts at once.
    Ready,
    /// Being compiled now; a run of it waits for the compile instead of starting another.
    Compiling,
    /// The last attempt failed, with this reason.
    Failed(String),
    /// Not loaded by this process yet: the first run loads it (from the cache when it was
    /// compiled before, even by an earlier process).
    NotLoaded,
}

/// The plugins this process loaded, and what loading one takes: the engine, the linker and the
/// cache of compiled artifacts.
pub(crate) struct Plugins {
    engine: Engine,
    linker: Linker<RunState>,
    /// The folder for this engine's compiled artifacts: `cache_dir/<compatibility hash>`.
    artifacts: PathBuf,
    /// The key the artifacts' MACs are made with (`RuntimeConfig::artifact_key`).
    artifact_key: [u8; 32],
    loaded: Mutex<HashMap<String, Arc<Plugin>>>,
    /// Digests being loaded, each with the lock its loader holds: a second load of the same
    /// digest waits on it and then finds the plugin loaded, so a digest compiles once.
    loading: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    /// The last failure per digest, for [`PluginStatus::Failed`].
    failed: Mutex<HashMap<String, String>>,
}

impl Plugins {
    pub(crate) fn new(
        engine: Engine,
        linker: Linker<RunState>,
        artifacts: PathBuf,
        artifact_key: [u8; 32],
    ) -> Self {
        Self {
            engine,
            linker,
            artifacts,
            artifact_key,
            loaded: Mutex::default(),
            loading: Mutex::default(),
            failed: Mutex::default(),
        }
    }

    /// Checks, compiles (or loads from the cache) and links a component, once per digest: a
    /// load of a digest another thread is loading waits for that one.
    pub(crate) fn load(&self, bytes: &[u8]) -> Result<Arc<Plugin>, PluginError> {
        precheck(bytes)?;
        let digest = digest(bytes);
        if let Some(plugin) = self.loaded(&digest) {
            return Ok(plugin);
        }
        let gate = lock(&self.loading)
            .entry(digest.clone())
            .or_default()
            .clone();
        let held = gate.lock().unwrap_or_else(|e| e.into_inner());
        let result = match self.loaded(&digest) {
            Some(plugin) => Ok(plugin),
            None => load(self, bytes, &digest),
        };
        match &result {
            Ok(_) => lock(&self.failed).remove(&digest),
            Err(e) => lock(&self.failed).insert(digest.clone(), e.to_string()),
        };
        drop(held);
        let mut loading = lock(&self.loading);
        if loading.get(&digest).is_some_and(|g| Arc::ptr_eq(g, &gate)) {
            loading.remove(&digest);
        }
        result
    }

    /// A plugin already loaded, by digest.
    pub(crate) fn loaded(&self, digest: &str) -> Option<Arc<Plugin>> {
        lock(&self.loaded).get(digest).cloned()
    }

    /// Where `digest` stands in this process.
    pub(crate) fn status(&self, digest: &str) -> PluginStatus {
        if self.loaded(digest).is_some() {
            PluginStatus::Ready
        } else if lock(&self.loading).contains_key(digest) {
            PluginStatus::Compiling
        } else if let Some(why) = lock(&self.failed).get(digest) {
            PluginStatus::Failed(why.clone())
        } else {
            PluginStatus::NotLoaded
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// `sha256:<hex>` of a component's bytes: how the host names a plugin version.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The checks that take no time: the size, and the component magic number. An upload that
/// passes them may still fail to compile; [`PluginStatus`] then says why.
pub fn precheck(bytes: &[u8]) -> Result<(), PluginError> {
    if bytes.len() > MAX_PLUGIN_BYTES {
        return Err(PluginError::TooLarge { size: bytes.len() });
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
    Ok(())
}

fn load(plugins: &Plugins, bytes: &[u8], digest: &str) -> Result<Arc<Plugin>, PluginError> {
    let artifact = Artifact::new(plugins, digest);
    let started = std::time::Instant::now();
    let (component, loaded_from) = match artifact.load(plugins) {
        Some(component) => (component, LoadedFrom::Cache),
        None => (artifact.compile(plugins, bytes)?, LoadedFrom::Compiled),
    };
    let from = match loaded_from {
        LoadedFrom::Cache => "cache",
        LoadedFrom::Compiled => "compiled",
    };
    metrics::histogram!(PLUGIN_LOAD_SECONDS, "from" => from).record(started.elapsed());

    let version = contract_version(plugins, &component)?;
    let pre = plugins
        .linker
        .instantiate_pre(&component)
        .map_err(|e| PluginError::UnsupportedImport(format!("{e:#}")))?;
    let missing = |e: wasmtime::Error| PluginError::MissingExport(format!("{e:#}"));
    let pre = match version {
        Version::V0_1 => Backend::V0_1(v0_1::ActionBackendPre::new(pre).map_err(missing)?),
        Version::V0_2 => Backend::V0_2(v0_2::ActionBackendPre::new(pre).map_err(missing)?),
    };
    let plugin = Arc::new(Plugin {
        digest: digest.to_owned(),
        size: bytes.len(),
        loaded_from,
        pre,
    });
    Ok(lock(&plugins.loaded)
        .entry(digest.to_owned())
        .or_insert(plugin)
        .clone())
}

/// The contract versions this host links.
enum Version {
    V0_1,
    V0_2,
}

/// The contract version the component was built for, read from its `portico:action/*@<version>`
/// imports (the SDK stamps its version there). A version this host does not link is refused
/// naming both sides, so the operator knows to upgrade the host or rebuild the plugin. A
/// component importing none of the contract's interfaces is run as the current version (the
/// `run` export is the same in every version).
fn contract_version(plugins: &Plugins, component: &Component) -> Result<Version, PluginError> {
    let prefix = format!("{}/", bindings::PACKAGE);
    let mut found = None;
    for (name, _) in component.component_type().imports(&plugins.engine) {
        let Some(rest) = name.strip_prefix(&prefix) else {
            continue;
        };
        let version = rest.split_once('@').map_or("", |(_, v)| v);
        let this = match version {
            "0.1.0" => Version::V0_1,
            "0.2.0" => Version::V0_2,
            other => {
                let built_for = if other.is_empty() {
                    bindings::PACKAGE.to_owned()
                } else {
                    format!("{}@{other}", bindings::PACKAGE)
                };
                return Err(PluginError::UnsupportedImport(format!(
                    "built for {built_for}; this host offers {}",
                    bindings::OFFERED
                )));
            }
        };
        match (&found, &this) {
            (Some(Version::V0_1), Version::V0_2) | (Some(Version::V0_2), Version::V0_1) => {
                return Err(PluginError::UnsupportedImport(format!(
                    "{name}: the component mixes {}@0.1.0 and @0.2.0 imports; build it \
                     against one version",
                    bindings::PACKAGE
                )));
            }
            _ => found = Some(this),
        }
    }
    Ok(found.unwrap_or(Version::V0_2))
}

/// A component's compiled code in the cache, and the MAC that vouches for it.
struct Artifact {
    /// The component digest's hex: it names the files and is bound into the MAC, so one
    /// plugin's artifact cannot stand in for another's.
    name: String,
    path: PathBuf,
    mac_path: PathBuf,
}

/// Why a cached artifact is not trusted (for the log).
enum Untrusted {
    Missing,
    Altered,
}

impl Artifact {
    fn new(plugins: &Plugins, digest: &str) -> Self {
        let name = digest["sha256:".len()..].to_owned();
        Self {
            path: plugins.artifacts.join(format!("{name}.cwasm")),
            mac_path: plugins.artifacts.join(format!("{name}.cwasm.mac")),
            name,
        }
    }

    /// HMAC-SHA256 under `key` of the digest, a NUL and the compiled bytes.
    fn mac(&self, key: &[u8; 32], compiled: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
            .unwrap_or_else(|e| panic!("HMAC takes any key length: {e}"));
        mac.update(self.name.as_bytes());
        mac.update(b"\0");
        mac.update(compiled);
        mac
    }

    /// The cached component, when there is one this host's key vouches for. One that is not
    /// vouched for is deleted (with its MAC), so the caller compiles and rewrites both.
    fn load(&self, plugins: &Plugins) -> Option<Component> {
        let compiled = match std::fs::read(&self.path) {
            Ok(compiled) => compiled,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(path = %self.path.display(), "cannot read a compiled plugin: {e}");
                return None;
            }
        };
        if let Err(why) = self.verify(plugins, &compiled) {
            let why = match why {
                Untrusted::Missing => "it has no MAC",
                Untrusted::Altered => {
                    "its MAC does not match (altered, or written under another host key)"
                }
            };
            tracing::warn!(path = %self.path.display(), "compiling the plugin again: the cached artifact is not trusted, {why}");
            self.remove();
            return None;
        }
        // SAFETY: these very bytes (not the file, which could change after the check) carry a
        // valid MAC under the artifact key for this digest, so this host (or a replica sharing
        // its key) compiled them, with an engine of the compatibility hash that names the folder
        // (`deserialize` also checks that hash and refuses a mismatch).
        match unsafe { Component::deserialize(&plugins.engine, &compiled) } {
            Ok(component) => Some(component),
            Err(e) => {
                tracing::warn!(path = %self.path.display(), "ignoring unusable compiled plugin: {e:#}");
                None
            }
        }
    }

    /// Checks the MAC file against `compiled`, in constant time.
    fn verify(&self, plugins: &Plugins, compiled: &[u8]) -> Result<(), Untrusted> {
        let text = std::fs::read_to_string(&self.mac_path).map_err(|_| Untrusted::Missing)?;
        let tag = hex::decode(text.trim()).map_err(|_| Untrusted::Altered)?;
        self.mac(&plugins.artifact_key, compiled)
            .verify_slice(&tag)
            .map_err(|_| Untrusted::Altered)
    }

    fn remove(&self) {
        for path in [&self.path, &self.mac_path] {
            if let Err(e) = std::fs::remove_file(path)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(path = %path.display(), "cannot delete an untrusted compiled plugin: {e}");
            }
        }
    }

    /// Compiles `bytes` and caches the result: the MAC first, then the artifact, each written
    /// whole (by rename), so an artifact present always has its MAC beside it.
    fn compile(&self, plugins: &Plugins, bytes: &[u8]) -> Result<Component, PluginError> {
        let component = Component::from_binary(&plugins.engine, bytes)
            .map_err(|e| PluginError::Invalid(format!("{e:#}")))?;
        let compiled = component
            .serialize()
            .map_err(|e| PluginError::Invalid(format!("{e:#}")))?;
        let tag = hex::encode(
            self.mac(&plugins.artifact_key, &compiled)
                .finalize()
                .into_bytes(),
        );
        write_whole(&self.mac_path, tag.as_bytes())?;
        write_whole(&self.path, &compiled)?;
        Ok(component)
    }
}

/// Writes `path` through a temporary file renamed over it: readers see the old or the new
/// content, never a part.
fn write_whole(path: &Path, content: &[u8]) -> Result<(), PluginError> {
    let cache_err = |source| PluginError::Cache {
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(cache_err)?;
    std::io::Write::write_all(&mut tmp, content).map_err(cache_err)?;
    tmp.persist(path).map_err(|e| cache_err(e.error))?;
    Ok(())
}
