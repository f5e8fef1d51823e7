//! Portico's self-service actions and their runs. Modules by concern, each depending only on
//! those listed before it:
//!
//! - support: `jq` (budgeted jq), [`host_key`] (sealing, tokens), [`ttl_cache`], [`metrics`]
//!   (what is recorded for Prometheus, and every metric's name);
//! - actions: [`actions`] (the stored definition, Port's shape), [`inputs`] (userInputs:
//!   [`inputs::check_definition`] on write, [`inputs::validate`] on request), [`policy`],
//!   [`action_check`] (a definition against this server), [`approval`] (rules and decisions),
//!   [`compiled`] (an action ready for requests);
//! - a new run: [`payload`] (what travels to the worker), [`run_catalog`], [`quotas`],
//!   [`new_run`] (record, payload and audit, built one way);
//! - running: [`notify`], [`automations`], `outbox` (their events' consumer), [`liveness`]
//!   (whether the worker loop turns), [`runner`] (the queue, workers, leases), [`external`]
//!   (reports from a system a run was handed to);
//! - front doors' services: [`intake`] (a request to a committed run), [`control`] (reading,
//!   cancelling and deciding on a run), [`registry`] (writing actions).

#![warn(missing_docs)]

pub mod action_check;
pub mod actions;
pub mod approval;
pub mod automations;
pub mod compiled;
pub mod control;
pub mod external;
pub mod host_key;
pub mod inputs;
pub mod intake;
mod jq;
pub mod liveness;
pub mod metrics;
pub mod new_run;
pub mod notify;
mod outbox;
pub mod payload;
pub mod policy;
pub mod quotas;
pub mod registry;
pub mod run_catalog;
pub mod runner;
pub mod ttl_cache;

pub use inputs::{
    CompiledInputs, InputContext, InputLookup, Validated, check_definition, validate,
};
pub use runner::SecretValues;
