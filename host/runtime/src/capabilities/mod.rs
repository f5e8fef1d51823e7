//! One module per capability a plugin can be granted, each with the same inner shape: its grant
//! as the action writes it and the checked rule, its per-run context, the host side of its WIT
//! interface implemented on that context, an `add_to_linker` that reaches the context through a
//! projection from the store's state, and unit tests that call the context directly.
//!
//! Dependencies point down: every capability may use [`sink`] (the run's log and denials, which
//! they share) and the crate's leaf modules, `http` uses `secrets`, and none knows the store's
//! state (`RunState`, in `state.rs`), which composes them.

pub mod catalog;
pub(crate) mod fs;
pub(crate) mod http;
pub(crate) mod log;
pub(crate) mod progress;
pub mod secrets;
pub(crate) mod sink;
