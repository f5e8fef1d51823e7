//! The wit-bindgen output for `wit/action.wit`. Private to the SDK except what `export_action!`
//! needs; wasi:http comes from the `wasip2` crate, which `wstd` uses too.

wit_bindgen::generate!({
    path: "../wit",
    world: "action-backend",
    with: {
        "wasi:http/outgoing-handler@0.2.12": wasip2::http::outgoing_handler,
        "wasi:http/types@0.2.12": wasip2::http::types,
        "wasi:io/error@0.2.12": wasip2::io::error,
        "wasi:io/poll@0.2.12": wasip2::io::poll,
        "wasi:io/streams@0.2.12": wasip2::io::streams,
        "wasi:clocks/monotonic-clock@0.2.12": wasip2::clocks::monotonic_clock,
    },
    pub_export_macro: true,
    export_macro_name: "__export_action_backend",
    default_bindings_module: "portico_sdk::__bindings",
});
