//! Portico's self-service actions and their runs.
//!
//! [`actions`] checks action definitions when they are written; [`inputs`] validates user inputs:
//! [`inputs::check_definition`] when an action is written, [`inputs::validate`] when a run is
//! created.

#![warn(missing_docs)]

pub mod actions;
pub mod approval;
pub mod automations;
pub mod bridge;
pub mod cache;
pub mod engine;
pub mod inputs;
mod jq;
pub mod keys;
pub mod notify;
pub mod policy;
pub mod quotas;

pub use engine::SecretValues;
pub use inputs::{InputContext, InputLookup, Validated, check_definition, validate};
