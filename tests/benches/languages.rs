//! The same no-op plugin written in Rust, Python (componentize-py) and JavaScript (jco),
//! side by side through Portico's runtime: component size, compile time, the time to load the
//! precompiled artifact (what a restart costs), per-run overhead (p50/p99) and runs/s on two
//! threads, and the resident memory each concurrent run adds.
//!
//!     cargo bench -p portico-tests --bench languages
//!
//! A process spawn costs about 1.1 ms on this machine (`--bench runtime`): the interpreter
//! plugins' per-run cost is read against that. A second table splits a run's time with bare
//! wasmtime on the same engine: instantiation alone, then instantiation and the guest's `run`.

use portico_runtime::{
    Capabilities, Limits, LoadedFrom, MemoryCatalog, NoSecrets, Plugin, RunJob, Runtime,
    RuntimeConfig,
};
use portico_tests::artifacts::{JS_NOOP, JS_PROBE, NOOP, PROBE, PY_NOOP, PY_PROBE};
use portico_tests::rss_kib;
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const THROUGHPUT_FOR: Duration = Duration::from_secs(3);
/// Runs held open at once to measure what each adds to the resident set.
const CONCURRENT: usize = 32;

struct Language {
    name: &'static str,
    noop: &'static str,
    probe: &'static str,
    runs: usize,
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
}

fn runtime(cache: &Path) -> Runtime {
    let mut config = RuntimeConfig::new(cache);
    config.max_concurrent_runs = 64;
    config.cache_dir = cache.join("cache");
    // One key for both engines, as a restarted host reads its key file.
    config.artifact_key = [7; 32];
    Runtime::new(config, Arc::new(NoSecrets)).expect("runtime")
}

fn job(inputs: serde_json::Value, limits: Limits, runtime: &Runtime) -> RunJob {
    RunJob {
        request: portico_tests::request(inputs),
        grants: Arc::new(
            runtime
                .grants(&Capabilities::default(), limits)
                .expect("grants"),
        ),
        catalog: Arc::new(MemoryCatalog::new()),
        events: Arc::new(portico_tests::Discard),
        cancel: CancellationToken::new(),
    }
}

fn main() {
    // SAFETY: no other thread exists yet.
    unsafe { std::env::remove_var("RUST_BACKTRACE") };
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let languages = [
        Language {
            name: "Rust",
            noop: NOOP,
            probe: PROBE,
            runs: 20_000,
        },
        Language {
            name: "Python",
            noop: PY_NOOP,
            probe: PY_PROBE,
            runs: 2_000,
        },
        Language {
            name: "JavaScript",
            noop: JS_NOOP,
            probe: JS_PROBE,
            runs: 2_000,
        },
    ];
    let limits = || Limits {
        memory_mib: 128,
        ..Limits::default()
    };

    let mut split = Vec::new();
    println!(
        "| no-op plugin | size | compile | load precompiled | per run p50 | p99 | runs/s (2 threads) | RSS per concurrent run |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for language in &languages {
        let data = tempfile::tempdir().expect("temp dir");
        let bytes = std::fs::read(language.noop).expect("built");

        // Compile (a fresh cache), then load what was cached with a new engine, as a restart.
        let first = runtime(data.path());
        let t = Instant::now();
        let compiled = first.load_plugin(&bytes).expect("loads");
        let compile = t.elapsed();
        assert_eq!(compiled.loaded_from(), LoadedFrom::Compiled);
        drop((compiled, first));
        let runtime = runtime(data.path());
        let t = Instant::now();
        let plugin: Arc<Plugin> = runtime.load_plugin(&bytes).expect("loads");
        let load = t.elapsed();
        assert_eq!(plugin.loaded_from(), LoadedFrom::Cache);

        // One run at a time.
        let mut micros = tokio.block_on(async {
            for _ in 0..language.runs / 10 {
                let report = runtime
                    .run(&plugin, job(json!({}), limits(), &runtime))
                    .await;
                assert!(report.result.is_ok(), "{:?}", report.result);
            }
            let mut micros = Vec::with_capacity(language.runs);
            for _ in 0..language.runs {
                let job = job(json!({}), limits(), &runtime);
                let t = Instant::now();
                let report = runtime.run(&plugin, job).await;
                micros.push(t.elapsed().as_secs_f64() * 1e6);
                assert!(report.result.is_ok());
            }
            micros
        });
        micros.sort_by(f64::total_cmp);

        // Two tasks running back to back.
        let count = Arc::new(AtomicU64::new(0));
        tokio.block_on(async {
            let tasks: Vec<_> = (0..2)
                .map(|_| {
                    let (runtime, plugin, count) = (runtime.clone(), plugin.clone(), count.clone());
                    tokio::spawn(async move {
                        let end = Instant::now() + THROUGHPUT_FOR;
                        while Instant::now() < end {
                            let report = runtime
                                .run(&plugin, job(json!({}), limits(), &runtime))
                                .await;
                            assert!(report.result.is_ok());
                            count.fetch_add(1, Ordering::Relaxed);
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.expect("task");
            }
        });
        let rate = count.load(Ordering::Relaxed) as f64 / THROUGHPUT_FOR.as_secs_f64();

        // Resident memory: CONCURRENT probes of the language each sleeping 1.5 s, sampled while
        // all are alive, against the resident set before they started.
        let probe = runtime
            .load_plugin(&std::fs::read(language.probe).expect("built"))
            .expect("probe loads");
        let per_run_kib = tokio.block_on(async {
            let sleeper = || {
                job(
                    json!({ "steps": [{ "sleepMs": 1500 }] }),
                    limits(),
                    &runtime,
                )
            };
            // Warm the pool's slots first, so the figure is the steady state.
            let warm: Vec<_> = (0..CONCURRENT)
                .map(|_| {
                    let (runtime, probe, job) = (runtime.clone(), probe.clone(), sleeper());
                    tokio::spawn(async move { runtime.run(&probe, job).await })
                })
                .collect();
            for run in warm {
                assert!(run.await.expect("run").result.is_ok());
            }
            let before = rss_kib();
            let runs: Vec<_> = (0..CONCURRENT)
                .map(|_| {
                    let (runtime, probe, job) = (runtime.clone(), probe.clone(), sleeper());
                    tokio::spawn(async move { runtime.run(&probe, job).await })
                })
                .collect();
            tokio::time::sleep(Duration::from_millis(1000)).await;
            let during = rss_kib();
            for run in runs {
                assert!(run.await.expect("run").result.is_ok());
            }
            during.saturating_sub(before) as f64 / CONCURRENT as f64
        });

        // Where a run's time goes, with bare wasmtime on the same engine.
        let bare = portico_runtime::bare::BareHarness::new(&runtime, &bytes).expect("bare");
        let request = portico_tests::request(json!({}));
        let (instantiate, call, second) = tokio.block_on(async {
            let (mut instantiate, mut call, mut second) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..language.runs / 2 {
                let t = Instant::now();
                bare.instantiate_once().await.expect("instantiates");
                instantiate.push(t.elapsed().as_secs_f64() * 1e6);
                let t = Instant::now();
                assert!(bare.run_once(&request).await.expect("runs"));
                call.push(t.elapsed().as_secs_f64() * 1e6);
                let again = bare.second_call(&request).await.expect("runs twice");
                second.push(again.as_secs_f64() * 1e6);
            }
            for sample in [&mut instantiate, &mut call, &mut second] {
                sample.sort_by(f64::total_cmp);
            }
            (instantiate, call, second)
        });
        split.push(format!(
            "| {} | {:.0} us | {:.0} us | {:.0} us | {:.0} us |",
            language.name,
            percentile(&instantiate, 0.5),
            percentile(&call, 0.5),
            percentile(&second, 0.5),
            percentile(&micros, 0.5),
        ));

        println!(
            "| {} | {:.1} MB | {:.2} s | {:.0} ms | {:.0} us | {:.0} us | {:.0} | {:.1} MiB |",
            language.name,
            bytes.len() as f64 / 1e6,
            compile.as_secs_f64(),
            load.as_secs_f64() * 1e3,
            percentile(&micros, 0.50),
            percentile(&micros, 0.99),
            rate,
            per_run_kib / 1024.0,
        );
    }
    println!();
    println!(
        "| p50 | bare: instantiate | bare: instantiate + run | bare: a second run in that instance | Portico: run |"
    );
    println!("|---|---:|---:|---:|---:|");
    for line in split {
        println!("{line}");
    }
}
