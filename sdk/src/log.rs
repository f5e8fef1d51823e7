//! Run log lines, shown live to whoever watches the run. `println!` works too (as `info`;
//! `eprintln!` as `warn`); these macros add the level.

use crate::bindings::portico::action::log as wit;

/// A log line's severity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Very detailed tracing.
    Trace,
    /// Diagnostics.
    Debug,
    /// Normal progress.
    Info,
    /// Unexpected, not fatal.
    Warn,
    /// Something failed.
    Error,
}

/// Appends one line to the run's log.
pub fn emit(level: Level, message: &str) {
    let level = match level {
        Level::Trace => wit::Level::Trace,
        Level::Debug => wit::Level::Debug,
        Level::Info => wit::Level::Info,
        Level::Warn => wit::Level::Warn,
        Level::Error => wit::Level::Error,
    };
    wit::emit(level, message);
}

/// Logs at `info`, with `format!` arguments.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log::emit($crate::log::Level::Info, &::std::format!($($arg)*)) };
}

/// Logs at `warn`, with `format!` arguments.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log::emit($crate::log::Level::Warn, &::std::format!($($arg)*)) };
}

/// Logs at `error`, with `format!` arguments.
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::log::emit($crate::log::Level::Error, &::std::format!($($arg)*)) };
}

/// Logs at `debug`, with `format!` arguments.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::log::emit($crate::log::Level::Debug, &::std::format!($($arg)*)) };
}
