//! The generated bindings for every published version of the plugin contract; kept private, the
//! crate exposes its own types.
//!
//! `wit/action.wit` is the current version (0.2.0); `wit/since_v0.1.0/` is 0.1.0, frozen. Both
//! are linked into the one `Linker` (different package versions are different import names).
//! 0.1.0's types are structurally those of 0.2.0, so its bindings reuse 0.2.0's `types` and the
//! `run` export takes and returns the same Rust values whichever version a plugin targets.

/// The versions this host links, oldest first, as a refusal names them.
pub(crate) const OFFERED: &str = "0.1.0, 0.2.0";

/// The contract's package name, as the component's import names start.
pub(crate) const PACKAGE: &str = "portico:action";

/// `portico:action@0.2.0`, the current version.
pub(crate) mod v0_2 {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "action-backend",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        },
    });
}

/// `portico:action@0.1.0`, the first published version (no `progress.hand-off`).
pub(crate) mod v0_1 {
    wasmtime::component::bindgen!({
        path: "../../wit/since_v0.1.0",
        world: "action-backend",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "portico:action/types@0.1.0": super::v0_2::portico::action::types,
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        },
    });
}

pub(crate) use v0_2::ActionBackendPre;
pub(crate) use v0_2::portico::action::{catalog, log, progress, types};

/// Answers 0.1.0's imports with a state's 0.2.0 implementation: same calls, same values (a
/// blanket impl would collide with the generated `&mut T` impls).
macro_rules! answer_v0_1_with_v0_2 {
    ($state:ty) => {
        const _: () = {
            use $crate::bindings::v0_1::portico::action as old;
            use $crate::bindings::{catalog, log, progress, types, v0_1_catalog_error as error};

            impl old::log::Host for $state {
                async fn emit(
                    &mut self,
                    level: old::log::Level,
                    message: String,
                ) -> wasmtime::Result<()> {
                    let level = match level {
                        old::log::Level::Trace => log::Level::Trace,
                        old::log::Level::Debug => log::Level::Debug,
                        old::log::Level::Info => log::Level::Info,
                        old::log::Level::Warn => log::Level::Warn,
                        old::log::Level::Error => log::Level::Error,
                    };
                    log::Host::emit(self, level, message).await
                }
            }

            impl old::progress::Host for $state {
                async fn report(
                    &mut self,
                    percent: Option<u8>,
                    label: Option<String>,
                ) -> wasmtime::Result<()> {
                    progress::Host::report(self, percent, label).await
                }

                async fn add_link(&mut self, link: types::Link) -> wasmtime::Result<()> {
                    progress::Host::add_link(self, link).await
                }
            }

            impl old::catalog::Host for $state {
                async fn get(
                    &mut self,
                    blueprint: String,
                    identifier: String,
                ) -> wasmtime::Result<Result<Option<types::Entity>, old::catalog::Error>> {
                    Ok(catalog::Host::get(self, blueprint, identifier)
                        .await?
                        .map_err(error))
                }

                async fn upsert(
                    &mut self,
                    entity: types::Entity,
                ) -> wasmtime::Result<Result<types::Entity, old::catalog::Error>> {
                    Ok(catalog::Host::upsert(self, entity).await?.map_err(error))
                }

                async fn delete(
                    &mut self,
                    blueprint: String,
                    identifier: String,
                ) -> wasmtime::Result<Result<bool, old::catalog::Error>> {
                    Ok(catalog::Host::delete(self, blueprint, identifier)
                        .await?
                        .map_err(error))
                }

                async fn search(
                    &mut self,
                    query: String,
                ) -> wasmtime::Result<Result<Vec<types::Entity>, old::catalog::Error>> {
                    Ok(catalog::Host::search(self, query).await?.map_err(error))
                }
            }
        };
    };
}

answer_v0_1_with_v0_2!(crate::run::RunState);
answer_v0_1_with_v0_2!(crate::bare::BareState);

/// 0.2.0's catalog error as 0.1.0's (the same cases).
pub(crate) fn v0_1_catalog_error(e: catalog::Error) -> v0_1::portico::action::catalog::Error {
    match e {
        catalog::Error::NotFound => v0_1::portico::action::catalog::Error::NotFound,
        catalog::Error::Denied(s) => v0_1::portico::action::catalog::Error::Denied(s),
        catalog::Error::Invalid(s) => v0_1::portico::action::catalog::Error::Invalid(s),
        catalog::Error::Conflict(s) => v0_1::portico::action::catalog::Error::Conflict(s),
    }
}
