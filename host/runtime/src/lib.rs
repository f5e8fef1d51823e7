//! The Portico plugin runtime: runs an action's backend, a WebAssembly component targeting the
//! `portico:action/action-backend` world, in a sandbox that can reach only what the action grants.
//!
//! One [`Runtime`] per process owns the wasmtime `Engine` (pooling allocator, epoch ticker), the
//! `Linker` and the on-disk cache of compiled plugins. [`Runtime::load_plugin`] checks and compiles a
//! component once per digest; [`Runtime::run`] executes one run in a fresh `Store` and always ends
//! in a [`RunReport`]: an outcome, or a [`RunFailure`] whose kind says who failed and why.
//!
//! Modules depend downwards only: the leaves (`bindings`, `config`, `events`, `failure`,
//! `limits`, `net`, `request`), then `capabilities` (each owning its grant, per-run context,
//! host trait and linking; sharing only `capabilities::sink`), then `grant` and `state` (plain
//! composition of the capabilities), then `plugin`, `run` and, at the top, `engine`.

#[cfg(feature = "bench")]
#[doc(hidden)]
pub mod bare;
mod bindings;
pub mod capabilities;
mod config;
mod engine;
mod events;
mod failure;
mod grant;
mod limiter;
mod limits;
pub mod net;
mod plugin;
mod request;
mod run;
mod state;

pub use capabilities::catalog::{
    AffectedEntity, Attribution, CatalogError, CatalogGrant, CatalogStore, EntityChange,
    MemoryCatalog,
};
pub use capabilities::http::HttpGrantEntry;
pub use capabilities::progress::HandOffGrant;
pub use capabilities::secrets::{
    EnvSecrets, FileSecrets, NoSecrets, SecretsChain, SecretsProvider,
};
pub use config::RuntimeConfig;
pub use engine::{Runtime, RuntimeError};
pub use events::{
    CallOutcome, CallTarget, CapabilityCall, HandOff, Link, LogLevel, RecordedEvents, RunEvents,
};
pub use failure::{FailureKind, RunFailure};
pub use grant::{Capabilities, Grants};
pub use limits::{GrantError, Limits};
pub use plugin::{
    LoadedFrom, MAX_PLUGIN_BYTES, PLUGIN_LOAD_SECONDS, Plugin, PluginError, PluginStatus,
    digest as plugin_digest, precheck as precheck_plugin,
};
pub use request::{Entity, Operation, RunOutcome, RunRequest, User};
pub use run::{RunJob, RunReport};
