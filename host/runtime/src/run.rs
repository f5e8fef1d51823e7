//! One run: a fresh `Store` with the run's grant, limits and log, the guest's `run` called under
//! the run's deadline, and whatever happened turned into a [`RunReport`].

use crate::bindings::types as wit;
use crate::capabilities::catalog::{AffectedEntity, Attribution, CatalogCtx, CatalogStore};
use crate::capabilities::fs;
use crate::capabilities::http::{HttpCtx, HttpHooks};
use crate::capabilities::log::LogCtx;
use crate::capabilities::progress::{ProgressCtx, keep_link};
use crate::capabilities::secrets::SecretsProvider;
use crate::capabilities::sink::{Denials, LogSink, LogStream, Stdio};
use crate::events::{Link, LogLevel, RunEvents};
use crate::failure::{FailureKind, HostFailure, RunFailure};
use crate::grant::Grants;
use crate::limiter::Limiter;
use crate::limits::{Limits, cut_text};
use crate::plugin::{Backend, Plugin};
use crate::request::{RunOutcome, RunRequest, request_to_wit};
use crate::state::RunState;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use wasmtime::component::{ResourceTable, ResourceTableError};
use wasmtime::{Engine, Store, Trap, UpdateDeadline, WasmBacktrace};
use wasmtime_wasi::WasiCtxBuilder;

/// Everything one run needs besides the plugin.
pub struct RunJob {
    /// What the plugin receives.
    pub request: RunRequest,
    /// What the action grants, and its limits.
    pub grants: Arc<Grants>,
    /// The catalog the run reads and writes (within the grant).
    pub catalog: Arc<dyn CatalogStore>,
    /// Where logs, progress and links go as they happen.
    pub events: Arc<dyn RunEvents>,
    /// Cancel to stop the run; it ends as `cancelled` within one epoch tick.
    pub cancel: CancellationToken,
}

/// How a run ended.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// The plugin's outcome, or why the run failed.
    pub result: Result<RunOutcome, RunFailure>,
    /// Entities the run created, changed or deleted, in the order of their last change.
    pub affected_entities: Vec<AffectedEntity>,
    /// Time spent running, not counting the wait for a free slot.
    pub duration: Duration,
}

/// Why the epoch callback stopped the guest.
#[derive(Debug, thiserror::Error)]
enum Interrupt {
    #[error("the run's deadline passed")]
    Timeout,
    #[error("the run was cancelled")]
    Cancelled,
}

/// Host resources (open files, streams, pollables, HTTP requests, bodies and responses) a run may
/// hold at once. A real plugin holds tens; each entry costs the host memory outside the guest's
/// `memoryMiB`, so a guest creating them in a loop is stopped here (a few MiB at most) instead of
/// at wasmtime's default of millions.
const MAX_RESOURCES: usize = 10_000;

enum Ended {
    Returned(wasmtime::Result<Result<wit::RunOutcome, wit::RunFailure>>),
    TimedOut,
    Cancelled,
}

/// What a run takes from the process-wide runtime.
pub(crate) struct RunHost<'a> {
    pub(crate) engine: &'a Engine,
    pub(crate) scratch_dir: &'a Path,
    pub(crate) secrets: &'a Arc<dyn SecretsProvider>,
}

/// Runs `plugin` once for `job` (the caller holds a run slot).
pub(crate) async fn execute(host: RunHost<'_>, plugin: &Plugin, job: RunJob) -> RunReport {
    let started = Instant::now();
    let grants = &job.grants;
    let limits = grants.limits;
    let deadline = started + Duration::from_secs(limits.timeout_seconds.into());
    let log = Arc::new(LogSink::new(job.events.clone(), &limits));
    let denials = Arc::new(Denials::default());

    let mut wasi = WasiCtxBuilder::new();
    wasi.stdout(LogStream::new(log.clone(), Stdio::Stdout))
        .stderr(LogStream::new(log.clone(), Stdio::Stderr))
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    let scratch = if grants.scratch {
        match fs::mount_scratch(&mut wasi, host.scratch_dir, &limits, log.clone()) {
            Ok(dir) => Some(dir),
            Err(e) => {
                tracing::error!(run_id = %job.request.run_id, "cannot create the scratch folder: {e}");
                let failure = RunFailure::new(
                    FailureKind::Internal,
                    "the host could not create the run's scratch folder",
                );
                return report(&log, Err(failure), Vec::new(), started);
            }
        }
    } else {
        None
    };

    let mut table = ResourceTable::new();
    table.set_max_capacity(MAX_RESOURCES);
    let by = Attribution {
        run_id: job.request.run_id.clone(),
        action: job.request.action.clone(),
        user: job.request.triggered_by.identifier.clone(),
    };
    let state = RunState {
        wasi: wasi.build(),
        table,
        scratch: scratch.as_ref().map(|s| s.quota.clone()),
        http: HttpCtx::new(HttpHooks::new(
            &job.request.action,
            grants.http.clone(),
            &limits,
            host.secrets.clone(),
            log.clone(),
            denials.clone(),
            deadline,
        )),
        log: LogCtx::new(log.clone()),
        progress: ProgressCtx::new(job.events.clone(), limits, grants.hand_off, log.clone()),
        catalog: CatalogCtx::new(
            job.catalog.clone(),
            grants.catalog.clone(),
            by,
            log.clone(),
            denials.clone(),
        ),
        limiter: Limiter::new((limits.memory_mib as usize) << 20),
    };
    let mut store = Store::new(host.engine, state);
    store.limiter(|s| &mut s.limiter);
    // Check the deadline and the cancel token on every epoch tick, yielding to the executor in
    // between so that a busy guest never starves other runs on the same thread.
    let cancel = job.cancel.clone();
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        if cancel.is_cancelled() {
            Err(wasmtime::Error::new(Interrupt::Cancelled))
        } else if Instant::now() >= deadline {
            Err(wasmtime::Error::new(Interrupt::Timeout))
        } else {
            Ok(UpdateDeadline::Yield(1))
        }
    });

    let request = request_to_wit(job.request);
    let ended = {
        let call = async {
            match &plugin.pre {
                Backend::V0_2(pre) => {
                    let backend = pre.instantiate_async(&mut store).await?;
                    backend.call_run(&mut store, &request).await
                }
                Backend::V0_1(pre) => {
                    let backend = pre.instantiate_async(&mut store).await?;
                    backend.call_run(&mut store, &request).await
                }
            }
        };
        // The epoch stops a busy guest; this outer timer stops one blocked in a host call.
        tokio::select! {
            biased;
            result = call => Ended::Returned(result),
            () = tokio::time::sleep_until(deadline.into()) => Ended::TimedOut,
            () = job.cancel.cancelled() => Ended::Cancelled,
        }
    };

    let state = store.data_mut();
    let result = match ended {
        Ended::Returned(Ok(Ok(outcome))) => {
            outcome_from_wit(outcome, state.progress.take_links(), &limits, &log)
        }
        Ended::Returned(Ok(Err(failure))) => Err(plugin_failure(
            failure,
            &denials,
            state.limiter.exceeded,
            &limits,
        )),
        Ended::Returned(Err(err)) => Err(classify(&err, &state.limiter, &log, &denials, grants)),
        Ended::TimedOut => Err(timeout(grants)),
        Ended::Cancelled => Err(RunFailure::new(
            FailureKind::Cancelled,
            "the run was cancelled",
        )),
    };
    let affected = state.catalog.take_affected();
    drop(store);
    drop(scratch);
    report(&log, result, affected, started)
}

fn report(
    log: &LogSink,
    result: Result<RunOutcome, RunFailure>,
    affected_entities: Vec<AffectedEntity>,
    started: Instant,
) -> RunReport {
    log.finish();
    if let Err(failure) = &result {
        log.emit_host(
            LogLevel::Error,
            &format!("run failed ({}): {}", failure.kind, failure.message),
        );
    }
    RunReport {
        result,
        affected_entities,
        duration: started.elapsed(),
    }
}

fn timeout(grants: &Grants) -> RunFailure {
    RunFailure::new(
        FailureKind::Timeout,
        format!(
            "the run did not finish within its time limit of {} s (limits.timeoutSeconds)",
            grants.limits.timeout_seconds
        ),
    )
}

/// The guest returned a `run-failure`. When the host denied it something earlier, the denial
/// is the likelier cause and names the grant, so the run fails as `denied` with that message.
/// Likewise a memory growth the limit refused: an interpreter turns it into an exception
/// (Python's `MemoryError`) that its SDK reports as a failure, so the run fails as `memory`.
fn plugin_failure(
    failure: wit::RunFailure,
    denials: &Denials,
    memory_exceeded: Option<usize>,
    limits: &Limits,
) -> RunFailure {
    let (kind, message) = match failure {
        wit::RunFailure::InvalidInput(m) => (FailureKind::Plugin, format!("invalid input: {m}")),
        wit::RunFailure::Failed(m) => (FailureKind::Plugin, m),
        wit::RunFailure::Denied(m) => (FailureKind::Denied, m),
    };
    let message = cut_text(message, limits.text_bytes, "textBytes");
    match (denials.first(), memory_exceeded) {
        (Some(denial), _) => RunFailure::new(
            FailureKind::Denied,
            format!("{denial} (the plugin then failed: {message})"),
        ),
        (None, Some(desired)) => RunFailure::new(
            FailureKind::Memory,
            format!(
                "the plugin tried to grow its memory and tables to {} MiB, over the action's \
                 limit of {} MiB (limits.memoryMiB); the plugin then failed: {message}",
                desired.div_ceil(1 << 20),
                limits.memory_mib
            ),
        ),
        (None, None) => RunFailure::new(kind, message),
    }
}

/// Turns a trap or host error into a failure that says who failed and which limit was involved.
fn classify(
    err: &wasmtime::Error,
    limiter: &Limiter,
    log: &LogSink,
    denials: &Denials,
    grants: &Grants,
) -> RunFailure {
    let memory_mib = grants.limits.memory_mib;
    if let Some(interrupt) = err.downcast_ref::<Interrupt>() {
        return match interrupt {
            Interrupt::Timeout => timeout(grants),
            Interrupt::Cancelled => {
                RunFailure::new(FailureKind::Cancelled, "the run was cancelled")
            }
        };
    }
    if let Some(desired) = limiter.exceeded {
        return RunFailure::new(
            FailureKind::Memory,
            format!(
                "the plugin tried to grow its memory and tables to {} MiB, over the action's \
                 limit of {memory_mib} MiB (limits.memoryMiB)",
                desired.div_ceil(1 << 20)
            ),
        );
    }
    let table_full = |e: &(dyn std::error::Error + 'static)| {
        matches!(e.downcast_ref(), Some(ResourceTableError::Full))
    };
    if err.chain().any(table_full) {
        return RunFailure::new(
            FailureKind::Trap,
            format!(
                "the plugin held more than {MAX_RESOURCES} host resources at once (open files, \
                 streams, HTTP requests, pollables) and was stopped"
            ),
        );
    }
    if let Some(failure) = err.downcast_ref::<HostFailure>() {
        tracing::error!("host failure during a run: {failure}");
        return RunFailure::new(
            FailureKind::Internal,
            "the host failed during the run; the plugin is not at fault (see the host's log)",
        );
    }

    let stderr = log.stderr_tail();
    if let Some(line) = stderr
        .iter()
        .rev()
        .find(|l| l.starts_with("memory allocation of"))
    {
        return RunFailure::new(
            FailureKind::Memory,
            format!(
                "the plugin ran out of memory ({line}); its limit is {memory_mib} MiB (limits.memoryMiB)"
            ),
        );
    }
    let Some(trap) = err.downcast_ref::<Trap>() else {
        tracing::error!("a run could not start or finish: {err:#}");
        return RunFailure::new(
            FailureKind::Internal,
            "the host could not run the plugin; the plugin is not at fault (see the host's log)",
        );
    };
    if let Some(backtrace) = err.downcast_ref::<WasmBacktrace>() {
        let text = format!("wasm backtrace:\n{backtrace}");
        let text: String = text.chars().take(8 * 1024).collect();
        log.emit_host(LogLevel::Error, &text);
    }
    let message = match (trap, panic_message(&stderr)) {
        (_, Some(panic)) => format!("the plugin panicked: {panic}"),
        (Trap::StackOverflow, None) => {
            "the plugin overflowed its stack (runaway recursion?)".to_owned()
        }
        (trap, None) => format!("the plugin crashed: {trap}"),
    };
    match denials.first() {
        Some(denial) => RunFailure::new(
            FailureKind::Denied,
            format!("{denial} (the plugin then crashed: {message})"),
        ),
        None => RunFailure::new(FailureKind::Trap, message),
    }
}

/// Rust prints `panicked at <file>:<line>:<col>:` then the message on the lines after it.
fn panic_message(stderr: &[String]) -> Option<String> {
    let start = stderr.iter().rposition(|l| l.contains("panicked at "))?;
    let location = &stderr[start][stderr[start].find("panicked at ")? + "panicked at ".len()..];
    let message: Vec<&str> = stderr[start + 1..]
        .iter()
        .map(String::as_str)
        .take_while(|l| !l.starts_with("note:"))
        .collect();
    Some(format!(
        "{} (at {})",
        message.join(" "),
        location.trim_end_matches(':')
    ))
}

/// The plugin's outcome within the action's limits: summary cut to `textBytes`, links past
/// `links`/`linkBytes` dropped (and said so in the log), and an `output` over `outputBytes`
/// failing the run, since a cut JSON document would mean something else.
fn outcome_from_wit(
    outcome: wit::RunOutcome,
    mut links: Vec<Link>,
    limits: &Limits,
    log: &LogSink,
) -> Result<RunOutcome, RunFailure> {
    if let Some(output) = &outcome.output
        && output.len() as u64 > limits.output_bytes
    {
        return Err(RunFailure::new(
            FailureKind::Limit,
            format!(
                "the plugin returned an output of {} bytes, over the action's limit of {} \
                 (limits.outputBytes)",
                output.len(),
                limits.output_bytes
            ),
        ));
    }
    for link in outcome.links {
        let link = Link {
            title: link.title,
            url: link.url,
        };
        if keep_link(&links, &link, limits, log) {
            links.push(link);
        }
    }
    Ok(RunOutcome {
        summary: outcome
            .summary
            .map(|s| cut_text(s, limits.text_bytes, "textBytes")),
        links,
        // Output the plugin declared as JSON but is not: keep it, as a string.
        output: outcome
            .output
            .map(|text| serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_messages_are_read_from_stderr() {
        let stderr = vec![
            "".to_owned(),
            "thread '<unnamed>' panicked at src/lib.rs:12:9:".to_owned(),
            "boom: it broke".to_owned(),
            "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace"
                .to_owned(),
        ];
        assert_eq!(
            panic_message(&stderr).unwrap(),
            "boom: it broke (at src/lib.rs:12:9)"
        );
        assert_eq!(panic_message(&["hello".to_owned()]), None);
    }
}
