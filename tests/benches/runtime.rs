//! What a run costs: a no-op plugin (parse the request, log one line) run through Portico's
//! runtime, next to bare tuned wasmtime instantiating and calling the same component on the same
//! engine, and next to spawning a native process that does the same work.
//!
//!     cargo bench -p portico-tests --bench runtime
//!
//! Prints mean, p50 and p99 per run in microseconds (one run at a time), runs/s on 2 threads,
//! and the two budget ratios: runtime / bare wasmtime (budget <= 1.25) and process / runtime
//! (budget >= 50).

use portico_runtime::bare::BareHarness;
use portico_runtime::{
    Capabilities, Limits, MemoryCatalog, NoSecrets, RunJob, Runtime, RuntimeConfig,
};
use portico_tests::artifacts::NOOP;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const LATENCY_RUNS: usize = 20_000;
const PROCESS_RUNS: usize = 1_000;
const THROUGHPUT_FOR: Duration = Duration::from_secs(3);

struct Stats {
    mean: f64,
    p50: f64,
    p99: f64,
}

fn stats(mut micros: Vec<f64>) -> Stats {
    micros.sort_by(f64::total_cmp);
    let at = |q: f64| micros[((micros.len() as f64 * q) as usize).min(micros.len() - 1)];
    Stats {
        mean: micros.iter().sum::<f64>() / micros.len() as f64,
        p50: at(0.50),
        p99: at(0.99),
    }
}

fn main() {
    // wasmtime formats an error with a backtrace on every fiber drop when this is set.
    // SAFETY: no other thread exists yet.
    unsafe { std::env::remove_var("RUST_BACKTRACE") };
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");

    let data = tempfile::tempdir().expect("temp dir");
    let mut config = RuntimeConfig::new(data.path());
    config.max_concurrent_runs = 64;
    let runtime = Runtime::new(config, Arc::new(NoSecrets)).expect("runtime");
    let bytes = std::fs::read(NOOP).expect("noop plugin built");
    let plugin = runtime.load_plugin(&bytes).expect("noop loads");
    let bare = Arc::new(BareHarness::new(&runtime, &bytes).expect("bare harness"));
    let grants = Arc::new(
        runtime
            .grants(&Capabilities::default(), Limits::default())
            .expect("grants"),
    );
    let catalog = Arc::new(MemoryCatalog::new());
    let request = portico_tests::request(serde_json::json!({ "name": "payments", "replicas": 3 }));

    let job = {
        let (grants, catalog, request) = (grants.clone(), catalog.clone(), request.clone());
        move || RunJob {
            request: request.clone(),
            grants: grants.clone(),
            catalog: catalog.clone(),
            events: Arc::new(portico_tests::Discard),
            cancel: CancellationToken::new(),
        }
    };

    // Latency, one run at a time; runtime and bare alternate in blocks so drift hits both.
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    tokio.block_on(async {
        for _ in 0..2_000 {
            assert!(runtime.run(&plugin, job()).await.result.is_ok());
            assert!(bare.run_once(&request).await.expect("bare run"));
        }
        for _ in 0..LATENCY_RUNS / 1_000 {
            for _ in 0..1_000 {
                let t = Instant::now();
                let report = runtime.run(&plugin, job()).await;
                ours.push(t.elapsed().as_secs_f64() * 1e6);
                assert!(report.result.is_ok());
            }
            for _ in 0..1_000 {
                let t = Instant::now();
                let ok = bare.run_once(&request).await.expect("bare run");
                theirs.push(t.elapsed().as_secs_f64() * 1e6);
                assert!(ok);
            }
        }
    });

    // Throughput: two tasks on two worker threads, each running back to back.
    let count_ours = Arc::new(AtomicU64::new(0));
    let count_theirs = Arc::new(AtomicU64::new(0));
    let ours_rate = tokio.block_on(async {
        let tasks: Vec<_> = (0..2)
            .map(|_| {
                let (runtime, plugin, job, count) = (
                    runtime.clone(),
                    plugin.clone(),
                    job.clone(),
                    count_ours.clone(),
                );
                tokio::spawn(async move {
                    let end = Instant::now() + THROUGHPUT_FOR;
                    while Instant::now() < end {
                        assert!(runtime.run(&plugin, job()).await.result.is_ok());
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("task");
        }
        count_ours.load(Ordering::Relaxed) as f64 / THROUGHPUT_FOR.as_secs_f64()
    });
    let theirs_rate = tokio.block_on(async {
        let tasks: Vec<_> = (0..2)
            .map(|_| {
                let (bare, request, count) = (bare.clone(), request.clone(), count_theirs.clone());
                tokio::spawn(async move {
                    let end = Instant::now() + THROUGHPUT_FOR;
                    while Instant::now() < end {
                        assert!(bare.run_once(&request).await.expect("bare run"));
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("task");
        }
        count_theirs.load(Ordering::Relaxed) as f64 / THROUGHPUT_FOR.as_secs_f64()
    });

    // A native process doing the same work.
    let exe = env!("CARGO_BIN_EXE_native-noop");
    let arg = serde_json::to_string(&request).expect("request serializes");
    let spawn = || {
        let out = std::process::Command::new(exe)
            .arg(&arg)
            .output()
            .expect("spawn native-noop");
        assert!(out.status.success());
    };
    let mut process = Vec::new();
    for _ in 0..50 {
        spawn();
    }
    for _ in 0..PROCESS_RUNS {
        let t = Instant::now();
        spawn();
        process.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let spawned = Arc::new(AtomicU64::new(0));
    std::thread::scope(|s| {
        for _ in 0..2 {
            let spawned = spawned.clone();
            s.spawn(move || {
                let end = Instant::now() + THROUGHPUT_FOR;
                while Instant::now() < end {
                    spawn();
                    spawned.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    let process_rate = spawned.load(Ordering::Relaxed) as f64 / THROUGHPUT_FOR.as_secs_f64();

    let (ours, theirs, process) = (stats(ours), stats(theirs), stats(process));
    println!("no-op plugin, per run (us), {LATENCY_RUNS} runs each; runs/s on 2 threads");
    println!("| path | mean | p50 | p99 | runs/s (2 threads) |");
    println!("|---|---:|---:|---:|---:|");
    for (name, s, rate) in [
        ("portico runtime", &ours, ours_rate),
        ("bare wasmtime (same engine)", &theirs, theirs_rate),
        ("native process spawn", &process, process_rate),
    ] {
        println!(
            "| {name} | {:.1} | {:.1} | {:.1} | {:.0} |",
            s.mean, s.p50, s.p99, rate
        );
    }
    println!(
        "runtime / bare wasmtime (p50): {:.2}x (budget <= 1.25x); mean: {:.2}x",
        ours.p50 / theirs.p50,
        ours.mean / theirs.mean
    );
    println!(
        "process / runtime (p50): {:.0}x cheaper (budget >= 50x); runs/s: {:.0}x",
        process.p50 / ours.p50,
        ours_rate / process_rate
    );
}
