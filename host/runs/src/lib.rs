//! Portico's self-service actions and their runs.
//!
//! [`actions`] holds action definitions and [`action_check`] checks them when they are written; [`inputs`] validates user inputs:
//! [`inputs::check_definition`] when an action is written, [`inputs::validate`] when a run is
//! created.

#![warn(missing_docs)]

pub mod action_check;
pub mod actions;
pub mod approval;
pub mod automations;
pub mod compiled;
pub mod external;
pub mod host_key;
pub mod inputs;
pub mod intake;
mod jq;
pub mod new_run;
pub mod notify;
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
