//! The generated bindings for `wit/action.wit`; kept private, the crate exposes its own types.

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

pub(crate) use portico::action::{catalog, log, progress, types};
