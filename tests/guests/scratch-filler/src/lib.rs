//! Hostile: tries to fill `/scratch` (and the host's tables) in every way a plugin can, as its
//! inputs say, and reports what each step got: `{"ok": ...}` or `{"err": {"code", "done"}}`,
//! where `code` is the WASI error code (or `errno N` through Rust's std and wasi-libc) and `done`
//! how far it got. The
//! run succeeds whatever the steps got, unless the host stops it.
//!
//! Steps (all paths are inside `/scratch`):
//! - `{"write": {path, bytes}}`: `std::fs::write` in 64 KiB chunks (wasi-libc, output streams);
//! - `{"pwrite": {path, bytes}}`: `descriptor.write` in 64 KiB chunks;
//! - `{"stream": {path, bytes}}`: `write-via-stream` with `check-write`/`write`, polling;
//! - `{"append": {path, bytes}}`: `append-via-stream` with `blocking-write-and-flush`;
//! - `{"setSize": {path, size}}`: `descriptor.set-size` (a sparse extend);
//! - `{"seekWrite": {path, offset}}`: seeks to `offset` and writes one byte (std);
//! - `{"createFiles": {prefix, count}}`: creates `count` empty files;
//! - `{"openFiles": {count}}`: opens one file `count` times and keeps every descriptor;
//! - `{"resources": count}`: creates `count` pollables and keeps them all;
//! - `{"closeAll": null}`: closes every descriptor and pollable kept so far;
//! - `{"delete": path}`, `{"touch": path}`, `{"rename": [from, to]}`;
//! - `{"waitFor": path}`: waits until the file exists (the test creates it).
use portico_sdk::{Action, Failure, Outcome, Request, Value, json};
use serde::Deserialize;
use std::io::{Seek, SeekFrom, Write};
use wasip2::filesystem::types::{
    Descriptor, DescriptorFlags, ErrorCode, OpenFlags, PathFlags, filesystem_error_code,
};
use wasip2::io::streams::StreamError;

const CHUNK: usize = 64 * 1024;

#[derive(Deserialize)]
struct Inputs {
    steps: Vec<Step>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
enum Step {
    Write { path: String, bytes: u64 },
    Pwrite { path: String, bytes: u64 },
    Stream { path: String, bytes: u64 },
    Append { path: String, bytes: u64 },
    SetSize { path: String, size: u64 },
    SeekWrite { path: String, offset: u64 },
    CreateFiles { prefix: String, count: u32 },
    OpenFiles { count: u32 },
    CloseAll,
    Resources(u32),
    Delete(String),
    Touch(String),
    Rename(String, String),
    WaitFor(String),
}

/// How a step failed: the error code and how far it got.
struct Stop {
    code: String,
    done: u64,
}

fn wasi(code: ErrorCode, done: u64) -> Stop {
    Stop {
        code: code.name().to_owned(),
        done,
    }
}

fn stream(error: StreamError, done: u64) -> Stop {
    let code = match error {
        StreamError::LastOperationFailed(e) => filesystem_error_code(&e)
            .map(|c| c.name().to_owned())
            .unwrap_or_else(|| e.to_debug_string()),
        StreamError::Closed => "closed".to_owned(),
    };
    Stop { code, done }
}

fn io(error: std::io::Error, done: u64) -> Stop {
    Stop {
        code: match error.raw_os_error() {
            Some(errno) => format!("errno {errno}"),
            None => format!("{:?}", error.kind()),
        },
        done,
    }
}

fn scratch() -> Descriptor {
    wasip2::filesystem::preopens::get_directories()
        .into_iter()
        .find(|(_, path)| path == "/scratch")
        .expect("the scratch folder is granted")
        .0
}

fn open(path: &str, create: bool) -> Result<Descriptor, Stop> {
    let flags = if create {
        OpenFlags::CREATE
    } else {
        OpenFlags::empty()
    };
    scratch()
        .open_at(
            PathFlags::empty(),
            path,
            flags,
            DescriptorFlags::READ | DescriptorFlags::WRITE,
        )
        .map_err(|c| wasi(c, 0))
}

fn full(path: &str) -> String {
    format!("/scratch/{path}")
}

fn chunks(bytes: u64) -> impl Iterator<Item = usize> {
    let whole = bytes / CHUNK as u64;
    let rest = (bytes % CHUNK as u64) as usize;
    (0..whole)
        .map(|_| CHUNK)
        .chain((rest > 0).then_some(rest))
}

fn run_step(step: Step, kept: &mut Vec<Box<dyn std::any::Any>>) -> Result<Value, Stop> {
    let buffer = vec![7u8; CHUNK];
    match step {
        Step::Write { path, bytes } => {
            let mut file = std::fs::File::create(full(&path)).map_err(|e| io(e, 0))?;
            let mut done = 0;
            for n in chunks(bytes) {
                file.write_all(&buffer[..n]).map_err(|e| io(e, done))?;
                done += n as u64;
            }
            Ok(json!(done))
        }
        Step::Pwrite { path, bytes } => {
            let file = open(&path, true)?;
            let mut done = 0;
            for n in chunks(bytes) {
                let written = file
                    .write(&buffer[..n], done)
                    .map_err(|c| wasi(c, done))?;
                done += written;
            }
            Ok(json!(done))
        }
        Step::Stream { path, bytes } => {
            let file = open(&path, true)?;
            let out = file.write_via_stream(0).map_err(|c| wasi(c, 0))?;
            let mut done = 0;
            for n in chunks(bytes) {
                let mut left = &buffer[..n];
                while !left.is_empty() {
                    let permit = out.check_write().map_err(|e| stream(e, done))?;
                    if permit == 0 {
                        out.subscribe().block();
                        continue;
                    }
                    let take = left.len().min(permit as usize);
                    out.write(&left[..take]).map_err(|e| stream(e, done))?;
                    done += take as u64;
                    left = &left[take..];
                }
            }
            out.blocking_flush().map_err(|e| stream(e, done))?;
            Ok(json!(done))
        }
        Step::Append { path, bytes } => {
            let file = open(&path, true)?;
            let out = file.append_via_stream().map_err(|c| wasi(c, 0))?;
            let mut done = 0;
            for n in chunks(bytes) {
                // `blocking-write-and-flush` takes at most 4096 bytes at a time.
                for piece in buffer[..n].chunks(4096) {
                    out.blocking_write_and_flush(piece)
                        .map_err(|e| stream(e, done))?;
                    done += piece.len() as u64;
                }
            }
            Ok(json!(done))
        }
        Step::SetSize { path, size } => {
            open(&path, true)?.set_size(size).map_err(|c| wasi(c, 0))?;
            Ok(json!(size))
        }
        Step::SeekWrite { path, offset } => {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(false)
                .open(full(&path))
                .map_err(|e| io(e, 0))?;
            file.seek(SeekFrom::Start(offset)).map_err(|e| io(e, 0))?;
            file.write_all(&[1]).map_err(|e| io(e, 0))?;
            Ok(json!(offset + 1))
        }
        Step::CreateFiles { prefix, count } => {
            for i in 0..count {
                std::fs::File::create(full(&format!("{prefix}{i}")))
                    .map_err(|e| io(e, i.into()))?;
            }
            Ok(json!(count))
        }
        Step::OpenFiles { count } => {
            open("opened", true)?;
            for i in 0..count {
                let file = open("opened", false).map_err(|s| Stop {
                    done: i.into(),
                    ..s
                })?;
                kept.push(Box::new(file));
            }
            Ok(json!(count))
        }
        Step::CloseAll => {
            let held = kept.len();
            kept.clear();
            Ok(json!(held))
        }
        Step::Resources(count) => {
            for _ in 0..count {
                let pollable = wasip2::clocks::monotonic_clock::subscribe_duration(0);
                kept.push(Box::new(pollable));
            }
            Ok(json!(count))
        }
        Step::Delete(path) => {
            std::fs::remove_file(full(&path)).map_err(|e| io(e, 0))?;
            Ok(Value::Null)
        }
        Step::Touch(path) => {
            std::fs::File::create(full(&path)).map_err(|e| io(e, 0))?;
            Ok(Value::Null)
        }
        Step::Rename(from, to) => {
            std::fs::rename(full(&from), full(&to)).map_err(|e| io(e, 0))?;
            Ok(Value::Null)
        }
        Step::WaitFor(path) => {
            while std::fs::metadata(full(&path)).is_err() {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Ok(Value::Null)
        }
    }
}

struct Filler;

impl Action for Filler {
    type Inputs = Inputs;
    fn run(request: Request<Inputs>) -> Result<Outcome, Failure> {
        let mut kept = Vec::new();
        let results: Vec<Value> = request
            .inputs
            .steps
            .into_iter()
            .map(|step| match run_step(step, &mut kept) {
                Ok(value) => json!({ "ok": value }),
                Err(stop) => json!({ "err": { "code": stop.code, "done": stop.done } }),
            })
            .collect();
        Ok(Outcome::summary("filled").with_output(json!({ "results": results })))
    }
}

portico_sdk::export_action!(Filler);
