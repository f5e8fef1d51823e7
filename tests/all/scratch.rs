//! The scratch folder's quota: a plugin cannot fill the disk or the host's tables. Writes past
//! `limits.scratchMiB` fail inside the plugin with "no space" however it writes, the run goes on,
//! the folder never holds more than the limit (looked at from the host while the run is live),
//! a raised limit lets the same write through, and the folder is gone after the run.

use portico_runtime::FailureKind;
use portico_tests::artifacts::SCRATCH_FILLER;
use portico_tests::{Finished, TestRun, runtime};
use serde_json::{Value, json};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

const MIB: u64 = 1 << 20;

/// What the folder holds, as the kernel allocated it and as the quota counts it (each file's
/// size rounded up to 4 KiB, holes included).
#[derive(Clone, Copy, Debug, Default)]
struct Usage {
    allocated: u64,
    counted: u64,
}

fn usage(folder: &Path) -> Usage {
    let mut found = Usage::default();
    let mut folders = vec![folder.to_owned()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            found.allocated += meta.blocks() * 512;
            found.counted += meta.len().div_ceil(4096) * 4096;
            if meta.is_dir() {
                folders.push(entry.path());
            }
        }
    }
    found
}

/// The run's folder: the one holding the run's marker file.
fn folder_of(marker: &str) -> Option<PathBuf> {
    let root = &runtime().config().scratch_dir;
    std::fs::read_dir(root)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join(format!("m-{marker}")).exists() || p.join(format!("f-{marker}")).exists())
}

/// A run of the filler doing `steps` between "started" and "filled" markers, watched from the
/// host: returns the run, the most the folder held while live, and the folder's path.
async fn watched(steps: Value, limits: Value) -> (Finished, Usage, PathBuf) {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let marker = format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let mut all = vec![json!({ "touch": format!("m-{marker}") })];
    all.extend(steps.as_array().expect("steps").iter().cloned());
    all.push(json!({ "rename": [format!("m-{marker}"), format!("f-{marker}")] }));
    all.push(json!({ "waitFor": "seen" }));
    let run = TestRun::new(SCRATCH_FILLER)
        .grant(json!({ "filesystem": "scratch" }))
        .limits(limits)
        .inputs(json!({ "steps": all }))
        .run();
    let handle = tokio::spawn(run);

    let mut most = Usage::default();
    let mut folder = None;
    // "seen" is created once: creating it again while the host removes the folder after the
    // run could leave the folder behind (a file appearing during the removal).
    let mut told = false;
    while !handle.is_finished() {
        if folder.is_none() {
            folder = folder_of(&marker);
        }
        if let Some(folder) = &folder {
            let now = usage(folder);
            most.allocated = most.allocated.max(now.allocated);
            most.counted = most.counted.max(now.counted);
            if !told && folder.join(format!("f-{marker}")).exists() {
                // Measured once more after the last write: let the plugin finish.
                let now = usage(folder);
                most.allocated = most.allocated.max(now.allocated);
                most.counted = most.counted.max(now.counted);
                told = std::fs::File::create(folder.join("seen")).is_ok();
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    let finished = handle.await.expect("the run task");
    let folder = folder.expect("the run's folder was seen while it ran");
    (finished, most, folder)
}

/// The result of step `i` of the filler's own steps (the markers are not counted).
fn step(run: &Finished, i: usize) -> &Value {
    &run.output()["results"][i + 1]
}

/// What Rust's std (through wasi-libc) reports for a refused write: wasi-libc (wasi-sdk 30)
/// turns every failed stream write into `EIO` (29) without asking for the filesystem error code,
/// so only callers of the WASI interfaces see `insufficient-space`.
const EIO_FROM_WASI_LIBC: &str = "errno 29";

/// What wasi-libc reports for a refused open or create: `ENOSPC` (51 in WASI's numbering).
const ENOSPC: &str = "errno 51";

/// Each way of growing a file, asked to add 2 MiB to a folder limited to 1 MiB.
fn two_mib_ways() -> Vec<(&'static str, Value, &'static str)> {
    vec![
        (
            "write",
            json!({ "write": { "path": "big", "bytes": 2 * MIB } }),
            EIO_FROM_WASI_LIBC,
        ),
        (
            "pwrite",
            json!({ "pwrite": { "path": "big", "bytes": 2 * MIB } }),
            "insufficient-space",
        ),
        (
            "stream",
            json!({ "stream": { "path": "big", "bytes": 2 * MIB } }),
            "insufficient-space",
        ),
        (
            "append",
            json!({ "append": { "path": "big", "bytes": 2 * MIB } }),
            "insufficient-space",
        ),
        (
            "set-size",
            json!({ "setSize": { "path": "big", "size": 2 * MIB } }),
            "insufficient-space",
        ),
        (
            "sparse seek",
            json!({ "seekWrite": { "path": "big", "offset": 2 * MIB } }),
            EIO_FROM_WASI_LIBC,
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_past_scratch_mib_fails_with_no_space_however_the_plugin_writes() {
    let mut codes = Vec::new();
    for (way, fill, code) in two_mib_ways() {
        let (run, most, folder) = watched(json!([fill]), json!({ "scratchMiB": 1 })).await;
        let got = step(&run, 0);
        codes.push((way, got["err"]["code"].clone(), code));
        let done = got["err"]["done"].as_u64().expect("done");
        assert!(done <= MIB, "{way}: wrote {done} bytes past the limit");
        if !matches!(way, "set-size" | "sparse seek") {
            assert!(
                done >= MIB - 128 * 1024,
                "{way}: stopped early, at {done} bytes"
            );
        }
        assert!(most.counted <= MIB, "{way}: the folder held {most:?}");
        assert!(most.allocated <= MIB, "{way}: the folder held {most:?}");
        // The plugin carried on: the steps after the refused one ran and the run succeeded.
        assert_eq!(step(&run, 1), &json!({ "ok": null }), "{way}");
        assert!(
            run.logs().contains("the scratch folder is full")
                && run
                    .logs()
                    .contains("(limits.scratchMiB, limits.scratchFiles)"),
            "{way}: {}",
            run.logs()
        );
        assert!(
            !folder.exists(),
            "{way}: the folder is removed after the run"
        );
    }
    for (way, got, code) in &codes {
        assert_eq!(got, code, "{way}: {codes:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raised_scratch_mib_lets_the_same_writes_through() {
    for (way, fill, _) in two_mib_ways() {
        let (run, most, folder) = watched(json!([fill]), json!({ "scratchMiB": 3 })).await;
        let got = step(&run, 0);
        let expected = if way == "sparse seek" {
            2 * MIB + 1
        } else {
            2 * MIB
        };
        assert_eq!(got, &json!({ "ok": expected }), "{way}");
        assert!(
            most.counted >= 2 * MIB && most.counted <= 3 * MIB,
            "{way}: {most:?}"
        );
        assert!(
            !folder.exists(),
            "{way}: the folder is removed after the run"
        );
    }
}

#[tokio::test]
async fn deleting_files_frees_their_space() {
    let (run, most, _) = watched(
        json!([
            { "pwrite": { "path": "a", "bytes": 768 * 1024 } },
            { "write": { "path": "b", "bytes": 512 * 1024 } },
            { "delete": "a" },
            { "delete": "b" },
            { "write": { "path": "b", "bytes": 512 * 1024 } },
            { "stream": { "path": "c", "bytes": 512 * 1024 } },
        ]),
        json!({ "scratchMiB": 1 }),
    )
    .await;
    assert_eq!(step(&run, 0), &json!({ "ok": 768 * 1024 }));
    assert_eq!(step(&run, 1)["err"]["code"], EIO_FROM_WASI_LIBC);
    assert_eq!(step(&run, 4), &json!({ "ok": 512 * 1024 }));
    assert_eq!(step(&run, 5), &json!({ "ok": 512 * 1024 }));
    assert!(most.allocated <= MIB, "{most:?}");
}

#[tokio::test]
async fn scratch_files_bounds_the_files_a_run_creates() {
    let steps = json!([{ "createFiles": { "prefix": "f", "count": 40 } }]);
    // The run's marker is one of the files.
    let (run, _, _) = watched(steps.clone(), json!({ "scratchFiles": 20 })).await;
    assert_eq!(
        step(&run, 0),
        &json!({ "err": { "code": ENOSPC, "done": 19 } })
    );
    let (run, _, _) = watched(steps, json!({ "scratchFiles": 41 })).await;
    assert_eq!(step(&run, 0), &json!({ "ok": 40 }));
}

#[tokio::test]
async fn open_files_bounds_the_descriptors_held_at_once() {
    let steps = json!([
        { "openFiles": { "count": 40 } },
        { "closeAll": null },
        // Each file is closed after it is created: closing gives the descriptor back.
        { "createFiles": { "prefix": "f", "count": 40 } },
    ]);
    let (run, _, _) = watched(steps.clone(), json!({ "openFiles": 16 })).await;
    assert_eq!(
        step(&run, 0),
        &json!({ "err": { "code": "quota", "done": 16 } })
    );
    assert_eq!(step(&run, 1), &json!({ "ok": 16 }));
    assert_eq!(step(&run, 2), &json!({ "ok": 40 }));
    assert!(run.logs().contains("(limits.openFiles)"), "{}", run.logs());
    let (run, _, _) = watched(steps, json!({ "openFiles": 64 })).await;
    assert_eq!(step(&run, 0), &json!({ "ok": 40 }));
}

#[tokio::test]
async fn a_plugin_creating_host_resources_in_a_loop_fails_its_own_run() {
    let run = TestRun::new(SCRATCH_FILLER)
        .inputs(json!({ "steps": [ { "resources": 1_000_000 } ] }))
        .run()
        .await;
    let failure = run.failure();
    assert_eq!(failure.kind, FailureKind::Trap, "{failure}");
    assert!(
        failure
            .message
            .contains("held more than 10000 host resources at once"),
        "{failure}"
    );
    // A plugin holding a few thousand is fine.
    let run = TestRun::new(SCRATCH_FILLER)
        .inputs(json!({ "steps": [ { "resources": 5_000 } ] }))
        .run()
        .await;
    assert_eq!(run.output()["results"][0], json!({ "ok": 5_000 }));
}
