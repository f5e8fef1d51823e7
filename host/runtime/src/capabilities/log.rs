//! The `log` interface: `log.emit` into the run's [`LogSink`] (the budget it shares with stdout
//! and stderr lives there). Always granted: a plugin's log only describes its own run.

use crate::bindings::{self, log};
use crate::capabilities::sink::LogSink;
use crate::events::LogLevel;
use std::sync::Arc;
use wasmtime::component::{HasData, Linker};

/// The run's `log` context.
pub(crate) struct LogCtx {
    sink: Arc<LogSink>,
}

impl LogCtx {
    pub(crate) fn new(sink: Arc<LogSink>) -> Self {
        Self { sink }
    }
}

impl From<log::Level> for LogLevel {
    fn from(level: log::Level) -> Self {
        match level {
            log::Level::Trace => Self::Trace,
            log::Level::Debug => Self::Debug,
            log::Level::Info => Self::Info,
            log::Level::Warn => Self::Warn,
            log::Level::Error => Self::Error,
        }
    }
}

impl log::Host for LogCtx {
    async fn emit(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        self.sink.emit(level.into(), &message);
        Ok(())
    }
}

bindings::answer_v0_1_with_v0_2!(log: LogCtx);

struct HasLog;

impl HasData for HasLog {
    type Data<'a> = &'a mut LogCtx;
}

/// Links `log` (every contract version) to the store state's [`LogCtx`].
pub(crate) fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut LogCtx,
) -> wasmtime::Result<()> {
    log::add_to_linker::<T, HasLog>(linker, get)?;
    bindings::v0_1::portico::action::log::add_to_linker::<T, HasLog>(linker, get)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::v0_1::portico::action::log as v0_1;
    use crate::events::RecordedEvents;
    use crate::limits::Limits;

    #[tokio::test]
    async fn emit_goes_to_the_run_log_within_its_budget_in_every_version() {
        let events = Arc::new(RecordedEvents::default());
        let limits = Limits {
            log_lines: 2,
            ..Limits::default()
        };
        let sink = Arc::new(LogSink::new(events.clone(), &limits));
        let mut ctx = LogCtx::new(sink.clone());
        log::Host::emit(&mut ctx, log::Level::Debug, "one".into())
            .await
            .unwrap();
        v0_1::Host::emit(&mut ctx, v0_1::Level::Error, "two".into())
            .await
            .unwrap();
        log::Host::emit(&mut ctx, log::Level::Info, "three".into())
            .await
            .unwrap();
        sink.finish();
        let logs = events.snapshot().logs;
        assert_eq!(
            logs[..2],
            [
                (LogLevel::Debug, "one".into()),
                (LogLevel::Error, "two".into())
            ]
        );
        assert_eq!(logs.len(), 3, "{logs:?}");
        assert!(logs[2].1.contains("1 lines (5 bytes) dropped"), "{logs:?}");
    }
}
