//! What every capability reports into: the run's log, with one budget, the run's denials, and
//! each catalog or HTTP call for the observers that want them ([`RunEvents::call`]).
//! Shared at the bottom of the capabilities: each context holds a handle (`Arc`) to the run's
//! sink, and the plugin's stdout and stderr ([`LogStream`]) feed the same one.
//!
//! `log.emit`, stdout and stderr (split into lines) share one `logBytes` budget (each line costs
//! its bytes plus a fixed overhead, so empty lines are not free) and one `logLines` budget; once
//! either is spent, the rest is dropped and counted, and the log ends with one line saying how
//! much was dropped.

use crate::events::{CapabilityCall, LogLevel, RunEvents};
use crate::limits::Limits;
use bytes::Bytes;
use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// The longest line kept whole; a longer stdout line is split.
const MAX_LINE: usize = 16 * 1024;
/// Stderr lines remembered to explain a trap (Rust prints its panic message there).
const STDERR_TAIL_LINES: usize = 16;

pub(crate) struct LogSink {
    events: Arc<dyn RunEvents>,
    /// [`RunEvents::observes_calls`], read once.
    observes_calls: bool,
    limit: u64,
    max_lines: u64,
    state: Mutex<SinkState>,
}

#[derive(Default)]
struct SinkState {
    used: u64,
    lines: u64,
    dropped: u64,
    dropped_lines: u64,
    partial: [Vec<u8>; 2],
    stderr_tail: VecDeque<String>,
}

#[derive(Clone, Copy)]
pub(crate) enum Stdio {
    Stdout = 0,
    Stderr = 1,
}

impl LogSink {
    pub(crate) fn new(events: Arc<dyn RunEvents>, limits: &Limits) -> Self {
        Self {
            observes_calls: events.observes_calls(),
            events,
            limit: limits.log_bytes,
            max_lines: limits.log_lines.into(),
            state: Mutex::default(),
        }
    }

    pub(crate) fn emit(&self, level: LogLevel, message: &str) {
        let mut state = self.lock();
        self.emit_locked(&mut state, level, message);
    }

    fn emit_locked(&self, state: &mut SinkState, level: LogLevel, message: &str) {
        let size = message.len() as u64 + Limits::LOG_LINE_OVERHEAD;
        // Once a line has been dropped, drop everything after it: a log with holes misleads.
        if state.dropped_lines == 0
            && state.used + size <= self.limit
            && state.lines < self.max_lines
        {
            state.used += size;
            state.lines += 1;
            self.events.log(level, message);
        } else {
            state.dropped += message.len() as u64;
            state.dropped_lines += 1;
        }
    }

    fn write_stdio(&self, stdio: Stdio, bytes: &[u8]) {
        let mut state = self.lock();
        let mut buf = std::mem::take(&mut state.partial[stdio as usize]);
        buf.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(pos) = buf[start..].iter().position(|&b| b == b'\n') {
            self.stdio_line(&mut state, stdio, &buf[start..start + pos]);
            start += pos + 1;
        }
        buf.drain(..start);
        while buf.len() > MAX_LINE {
            let rest = buf.split_off(MAX_LINE);
            self.stdio_line(&mut state, stdio, &buf);
            buf = rest;
        }
        state.partial[stdio as usize] = buf;
    }

    fn stdio_line(&self, state: &mut SinkState, stdio: Stdio, line: &[u8]) {
        let line = String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(line));
        match stdio {
            Stdio::Stdout => self.emit_locked(state, LogLevel::Info, &line),
            Stdio::Stderr => {
                if state.stderr_tail.len() == STDERR_TAIL_LINES {
                    state.stderr_tail.pop_front();
                }
                state
                    .stderr_tail
                    .push_back(line.chars().take(1024).collect());
                self.emit_locked(state, LogLevel::Warn, &line);
            }
        }
    }

    /// A catalog or HTTP call, for observers ([`RunEvents::call`]); outside the log's budget.
    pub(crate) fn call(&self, call: &CapabilityCall<'_>) {
        if self.observes_calls {
            self.events.call(call);
        }
    }

    /// Whether calls are observed: a capability builds a report only then.
    pub(crate) fn observes_calls(&self) -> bool {
        self.observes_calls
    }

    /// A line written by the host itself (a failure, a backtrace): outside the budget, so the
    /// reason a run failed is always in its log.
    pub(crate) fn emit_host(&self, level: LogLevel, message: &str) {
        self.events.log(level, message);
    }

    /// Flushes unterminated stdout/stderr lines and, when anything was dropped, says so.
    pub(crate) fn finish(&self) {
        let mut state = self.lock();
        for stdio in [Stdio::Stdout, Stdio::Stderr] {
            let rest = std::mem::take(&mut state.partial[stdio as usize]);
            if !rest.is_empty() {
                self.stdio_line(&mut state, stdio, &rest);
            }
        }
        if state.dropped_lines > 0 {
            let line = format!(
                "log limit reached: {} lines ({} bytes) dropped (the action's limits.logBytes is \
                 {} with {} bytes per line, limits.logLines is {})",
                state.dropped_lines,
                state.dropped,
                self.limit,
                Limits::LOG_LINE_OVERHEAD,
                self.max_lines
            );
            self.events.log(LogLevel::Warn, &line);
        }
    }

    /// The last stderr lines, to explain a trap.
    pub(crate) fn stderr_tail(&self) -> Vec<String> {
        self.lock().stderr_tail.iter().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SinkState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The plugin's stdout or stderr, feeding the run's log. Never blocks and never fails: past the
/// budget, bytes are counted and dropped, so a chatty plugin is not killed by a broken pipe.
#[derive(Clone)]
pub(crate) struct LogStream {
    sink: Arc<LogSink>,
    stdio: Stdio,
}

impl LogStream {
    pub(crate) fn new(sink: Arc<LogSink>, stdio: Stdio) -> Self {
        Self { sink, stdio }
    }
}

impl IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl OutputStream for LogStream {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.sink.write_stdio(self.stdio, &bytes);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }
    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(64 * 1024)
    }
}

#[async_trait::async_trait]
impl Pollable for LogStream {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for LogStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.sink.write_stdio(self.stdio, buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Capability denials seen during a run, in order. A run that fails after a denial fails as
/// `denied`, with the first denial as the reason.
#[derive(Debug, Default)]
pub(crate) struct Denials(std::sync::Mutex<Vec<String>>);

impl Denials {
    pub(crate) fn record(&self, reason: String) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(reason);
    }

    pub(crate) fn first(&self) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .first()
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::RecordedEvents;

    #[test]
    fn stdio_is_split_into_lines_and_bounded() {
        let events = Arc::new(RecordedEvents::default());
        let limits = Limits {
            log_bytes: 10 + 2 * Limits::LOG_LINE_OVERHEAD,
            ..Limits::default()
        };
        let sink = Arc::new(LogSink::new(events.clone(), &limits));
        sink.write_stdio(Stdio::Stdout, b"hello\nwor");
        sink.write_stdio(Stdio::Stdout, b"ld\r\nthis line is too long\nshort\n");
        sink.emit(LogLevel::Info, "x");
        sink.finish();
        let logs = events.snapshot().logs;
        let lines: Vec<&str> = logs.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(lines[..2], ["hello", "world"]);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(
            lines[2].contains("log limit reached: 3 lines (27 bytes) dropped"),
            "{lines:?}"
        );
    }

    #[test]
    fn empty_lines_are_not_free_and_lines_are_counted() {
        let events = Arc::new(RecordedEvents::default());
        let limits = Limits {
            log_lines: 1_000,
            ..Limits::default()
        };
        let sink = LogSink::new(events.clone(), &limits);
        for _ in 0..100_000 {
            sink.emit(LogLevel::Info, "");
        }
        sink.finish();
        let logs = events.snapshot().logs;
        assert_eq!(logs.len(), 1_001, "1,000 kept and the line that says so");
        assert!(logs[1_000].1.contains("99000 lines"), "{:?}", logs[1_000]);

        let events = Arc::new(RecordedEvents::default());
        let limits = Limits {
            log_lines: 1_000_000,
            ..Limits::default()
        };
        let sink = LogSink::new(events.clone(), &limits);
        for _ in 0..100_000 {
            sink.emit(LogLevel::Info, "");
        }
        let kept = events.snapshot().logs.len() as u64;
        assert_eq!(
            kept,
            (1 << 20) / Limits::LOG_LINE_OVERHEAD,
            "the byte budget binds"
        );
    }

    #[test]
    fn stderr_tail_keeps_the_last_lines_even_past_the_budget() {
        let events = Arc::new(RecordedEvents::default());
        let limits = Limits {
            log_bytes: 0,
            ..Limits::default()
        };
        let sink = LogSink::new(events, &limits);
        sink.write_stdio(Stdio::Stderr, b"panicked at src/lib.rs:1:1:\nboom\n");
        assert_eq!(sink.stderr_tail(), ["panicked at src/lib.rs:1:1:", "boom"]);
    }
}
