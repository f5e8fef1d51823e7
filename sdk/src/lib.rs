//! Write [Portico](https://github.com/) action backends in Rust.
//!
//! A backend is a type implementing [`Action`], exported with [`export_action!`] and built with
//! `cargo build --release --target wasm32-wasip2`. Portico calls [`Action::run`] once per run with
//! the user's inputs already validated and deserialized into your own type:
//!
//! ```no_run
//! use portico_sdk::{Action, Failure, Outcome, Request, info};
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! struct Inputs {
//!     name: String,
//! }
//!
//! struct Hello;
//!
//! impl Action for Hello {
//!     type Inputs = Inputs;
//!
//!     fn run(request: Request<Inputs>) -> Result<Outcome, Failure> {
//!         if request.inputs.name.is_empty() {
//!             return Err(Failure::invalid_input("name must not be empty"));
//!         }
//!         info!("hello, {}", request.inputs.name);
//!         Ok(Outcome::summary(format!("greeted {}", request.inputs.name)))
//!     }
//! }
//!
//! portico_sdk::export_action!(Hello);
//! ```
//!
//! Everything a backend can reach goes through this crate's modules, and each is checked
//! against the action's grant: [`catalog`] (granted blueprints), [`http`] (granted origins, with
//! credentials added by the host), [`progress`] and [`log`](mod@log) (always allowed).
#![deny(missing_docs)]

/// The plugin contract this SDK is built for. Every plugin built with it imports
/// `portico:action/*@0.2.0`, which is how a host knows the version: a host that does not offer
/// it refuses the plugin naming both ("built for portico:action@0.2.0; this host offers ...").
pub const CONTRACT: &str = "portico:action@0.2.0";

#[doc(hidden)]
pub mod bindings;
pub mod catalog;
pub mod http;
pub mod log;
pub mod progress;
pub mod time;
mod types;

pub use serde_json::{Value, json};
pub use types::{Entity, Failure, Link, Operation, Outcome, Request, User};

#[doc(hidden)]
pub use bindings as __bindings;

/// An action's backend.
pub trait Action {
    /// The action's user inputs; deserialized from the run's `inputs` object. Use
    /// [`Value`] to take them untyped.
    type Inputs: serde::de::DeserializeOwned;

    /// Runs the action once. Return an [`Outcome`] on success; a [`Failure`] is shown to the
    /// user as the run's error. A panic fails the run too (as a crash, with the panic message).
    fn run(request: Request<Self::Inputs>) -> Result<Outcome, Failure>;
}

/// Exports a type implementing [`Action`] as the component's `run`. Use it once per plugin.
#[macro_export]
macro_rules! export_action {
    ($action:ty) => {
        #[doc(hidden)]
        struct __PorticoAction;

        impl $crate::__bindings::Guest for __PorticoAction {
            fn run(
                request: $crate::__bindings::portico::action::types::RunRequest,
            ) -> ::core::result::Result<
                $crate::__bindings::portico::action::types::RunOutcome,
                $crate::__bindings::portico::action::types::RunFailure,
            > {
                $crate::__run::<$action>(request)
            }
        }

        $crate::__bindings::__export_action_backend!(
            __PorticoAction with_types_in $crate::__bindings
        );
    };
}

#[doc(hidden)]
pub fn __run<A: Action>(
    request: bindings::portico::action::types::RunRequest,
) -> Result<
    bindings::portico::action::types::RunOutcome,
    bindings::portico::action::types::RunFailure,
> {
    let request = Request::<A::Inputs>::from_wit(request).map_err(Failure::into_wit)?;
    A::run(request)
        .map(Outcome::into_wit)
        .map_err(Failure::into_wit)
}
