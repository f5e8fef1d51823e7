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

pub(crate) use v0_2::portico::action::{catalog, log, progress, types};

/// Answers one of 0.1.0's imports with a context's 0.2.0 implementation: same calls, same
/// values. Each capability invokes it for its own context (`log: LogCtx`, ...); the arms are
/// separate because each context implements one interface (a blanket impl would collide with
/// the generated `&mut T` impls).
macro_rules! answer_v0_1_with_v0_2 {
    (log: $ctx:ty) => {
        impl $crate::bindings::v0_1::portico::action::log::Host for $ctx {
            async fn emit(
                &mut self,
                level: $crate::bindings::v0_1::portico::action::log::Level,
                message: String,
            ) -> wasmtime::Result<()> {
                use $crate::bindings::log::{Host, Level};
                use $crate::bindings::v0_1::portico::action::log::Level as Old;
                let level = match level {
                    Old::Trace => Level::Trace,
                    Old::Debug => Level::Debug,
                    Old::Info => Level::Info,
                    Old::Warn => Level::Warn,
                    Old::Error => Level::Error,
                };
                Host::emit(self, level, message).await
            }
        }
    };
    (progress: $ctx:ty) => {
        impl $crate::bindings::v0_1::portico::action::progress::Host for $ctx {
            async fn report(
                &mut self,
                percent: Option<u8>,
                label: Option<String>,
            ) -> wasmtime::Result<()> {
                $crate::bindings::progress::Host::report(self, percent, label).await
            }

            async fn add_link(
                &mut self,
                link: $crate::bindings::types::Link,
            ) -> wasmtime::Result<()> {
                $crate::bindings::progress::Host::add_link(self, link).await
            }
        }
    };
    (catalog: $ctx:ty) => {
        impl $crate::bindings::v0_1::portico::action::catalog::Host for $ctx {
            async fn get(
                &mut self,
                blueprint: String,
                identifier: String,
            ) -> wasmtime::Result<
                Result<
                    Option<$crate::bindings::types::Entity>,
                    $crate::bindings::v0_1::portico::action::catalog::Error,
                >,
            > {
                Ok(
                    $crate::bindings::catalog::Host::get(self, blueprint, identifier)
                        .await?
                        .map_err($crate::bindings::v0_1_catalog_error),
                )
            }

            async fn upsert(
                &mut self,
                entity: $crate::bindings::types::Entity,
            ) -> wasmtime::Result<
                Result<
                    $crate::bindings::types::Entity,
                    $crate::bindings::v0_1::portico::action::catalog::Error,
                >,
            > {
                Ok($crate::bindings::catalog::Host::upsert(self, entity)
                    .await?
                    .map_err($crate::bindings::v0_1_catalog_error))
            }

            async fn delete(
                &mut self,
                blueprint: String,
                identifier: String,
            ) -> wasmtime::Result<
                Result<bool, $crate::bindings::v0_1::portico::action::catalog::Error>,
            > {
                Ok(
                    $crate::bindings::catalog::Host::delete(self, blueprint, identifier)
                        .await?
                        .map_err($crate::bindings::v0_1_catalog_error),
                )
            }

            async fn search(
                &mut self,
                query: String,
            ) -> wasmtime::Result<
                Result<
                    Vec<$crate::bindings::types::Entity>,
                    $crate::bindings::v0_1::portico::action::catalog::Error,
                >,
            > {
                Ok($crate::bindings::catalog::Host::search(self, query)
                    .await?
                    .map_err($crate::bindings::v0_1_catalog_error))
            }
        }
    };
}

pub(crate) use answer_v0_1_with_v0_2;

/// `types` has no functions, so nothing per run answers it: linking it only names the
/// instance, in every version.
pub(crate) fn add_types_to_linker<T: Send + 'static>(
    linker: &mut wasmtime::component::Linker<T>,
) -> wasmtime::Result<()> {
    types::add_to_linker::<T, NoState>(linker, |_| NoState)?;
    linker.instance("portico:action/types@0.1.0")?;
    Ok(())
}

/// The (empty) context of an interface without functions.
pub(crate) struct NoState;

impl wasmtime::component::HasData for NoState {
    type Data<'a> = NoState;
}

impl types::Host for NoState {}

/// 0.2.0's catalog error as 0.1.0's (the same cases).
pub(crate) fn v0_1_catalog_error(e: catalog::Error) -> v0_1::portico::action::catalog::Error {
    match e {
        catalog::Error::NotFound => v0_1::portico::action::catalog::Error::NotFound,
        catalog::Error::Denied(s) => v0_1::portico::action::catalog::Error::Denied(s),
        catalog::Error::Invalid(s) => v0_1::portico::action::catalog::Error::Invalid(s),
        catalog::Error::Conflict(s) => v0_1::portico::action::catalog::Error::Conflict(s),
    }
}
