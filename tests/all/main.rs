//! Portico's runtime, end to end: real components built for wasm32-wasip2, run by the real
//! runtime, talking to a real HTTP server on 127.0.0.1.

mod capabilities;
mod contract;
mod hardening;
mod hostile;
mod languages;
mod loading;
mod plugins;
mod scratch;
