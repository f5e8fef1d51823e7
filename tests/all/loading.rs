//! Loading plugins: compiled once per digest, cached on disk across starts (and trusted only
//! with a MAC under the runtime's artifact key), and bad components refused with a message that
//! says what is wrong.

use portico_runtime::{
    Capabilities, Limits, LoadedFrom, MemoryCatalog, NoSecrets, PluginError, PluginStatus,
    RecordedEvents, RunJob, Runtime, RuntimeConfig,
};
use portico_tests::artifacts::{NOOP, PANIC, UNKNOWN_CONTRACT};
use portico_tests::{TestRun, runtime};
use std::sync::Arc;

const KEY: [u8; 32] = [7; 32];

fn small_runtime(data: &std::path::Path) -> Runtime {
    keyed_runtime(data, KEY)
}

fn keyed_runtime(data: &std::path::Path, artifact_key: [u8; 32]) -> Runtime {
    let mut config = RuntimeConfig::new(data);
    config.max_concurrent_runs = 4;
    config.artifact_key = artifact_key;
    Runtime::new(config, Arc::new(NoSecrets)).expect("runtime starts")
}

/// The cached artifact of the only plugin compiled under `data`, and its MAC file.
fn cached_files(data: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let engine_dir = std::fs::read_dir(data.join("cache"))
        .unwrap()
        .next()
        .expect("one folder per engine hash")
        .unwrap()
        .path();
    let mut artifacts: Vec<_> = std::fs::read_dir(&engine_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
        .collect();
    assert_eq!(artifacts.len(), 1, "{artifacts:?}");
    let artifact = artifacts.remove(0);
    let mac = artifact.with_extension("cwasm.mac");
    assert!(mac.exists(), "the MAC is written beside the artifact");
    (artifact, mac)
}

#[test]
fn a_second_start_loads_the_compiled_plugin_from_the_disk_cache() {
    let data = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(NOOP).unwrap();

    let first = small_runtime(data.path());
    let compiled = first.load_plugin(&bytes).unwrap();
    assert_eq!(compiled.loaded_from(), LoadedFrom::Compiled);
    assert!(compiled.digest().starts_with("sha256:"));
    let again = first.load_plugin(&bytes).unwrap();
    assert!(
        Arc::ptr_eq(&compiled, &again),
        "one compile per digest per process"
    );
    drop(first);

    let second = small_runtime(data.path());
    let cached = second.load_plugin(&bytes).unwrap();
    assert_eq!(cached.loaded_from(), LoadedFrom::Cache);
    assert_eq!(cached.digest(), compiled.digest());
}

/// A restart: a new runtime on the same cache loads what the last one compiled, whatever the
/// language (a Python or JavaScript component took seconds to compile, and loads in a fraction).
async fn a_plugin_loaded_from_the_cache_runs(guest: &'static str) {
    // The shared runtime caches every plugin it loads; a run makes sure it did.
    TestRun::new(guest).run().await.outcome();
    assert_eq!(
        runtime().config().cache_dir,
        std::path::Path::new(portico_tests::artifacts::CACHE_DIR)
    );
    let data = tempfile::tempdir().unwrap();
    let mut config = RuntimeConfig::new(data.path());
    config.max_concurrent_runs = 4;
    config.cache_dir = runtime().config().cache_dir.clone();
    config.artifact_key = runtime().config().artifact_key;
    let again = Runtime::new(config, Arc::new(NoSecrets)).unwrap();
    let plugin = again.load_plugin(&std::fs::read(guest).unwrap()).unwrap();
    assert_eq!(plugin.loaded_from(), LoadedFrom::Cache);
}

per_guest!(
    [rust = NOOP, python = PY_NOOP, javascript = JS_NOOP]
    a_plugin_loaded_from_the_cache_runs,
);

#[test]
fn loads_of_one_digest_at_once_compile_it_once_and_each_digest_has_a_status() {
    let data = tempfile::tempdir().unwrap();
    let runtime = small_runtime(data.path());
    let bytes = std::fs::read(NOOP).unwrap();
    let digest = portico_runtime::plugin_digest(&bytes);
    assert_eq!(runtime.plugin_status(&digest), PluginStatus::NotLoaded);
    let (a, b) = std::thread::scope(|s| {
        let first = s.spawn(|| runtime.load_plugin(&bytes).unwrap());
        let second = s.spawn(|| runtime.load_plugin(&bytes).unwrap());
        (first.join().unwrap(), second.join().unwrap())
    });
    assert!(Arc::ptr_eq(&a, &b), "the second load waited for the first");
    assert_eq!(a.loaded_from(), LoadedFrom::Compiled);
    assert_eq!(runtime.plugin_status(&digest), PluginStatus::Ready);

    let wrong = std::fs::read(UNKNOWN_CONTRACT).unwrap();
    assert!(runtime.load_plugin(&wrong).is_err());
    match runtime.plugin_status(&portico_runtime::plugin_digest(&wrong)) {
        PluginStatus::Failed(why) => assert!(why.contains("this host offers"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_artifact_altered_on_disk_is_compiled_again_not_loaded() {
    let data = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(NOOP).unwrap();
    drop(small_runtime(data.path()).load_plugin(&bytes).unwrap());
    let (artifact, _) = cached_files(data.path());
    let mut compiled = std::fs::read(&artifact).unwrap();
    let middle = compiled.len() / 2;
    compiled[middle] ^= 0x01;
    std::fs::write(&artifact, &compiled).unwrap();

    let runtime = small_runtime(data.path());
    let plugin = runtime.load_plugin(&bytes).unwrap();
    assert_eq!(plugin.loaded_from(), LoadedFrom::Compiled);
    // The recompiled plugin runs, and its rewritten artifact is trusted by the next start.
    let job = RunJob {
        request: portico_tests::request(serde_json::json!({})),
        grants: Arc::new(
            runtime
                .grants(&Capabilities::default(), Limits::default())
                .unwrap(),
        ),
        catalog: Arc::new(MemoryCatalog::new()),
        events: Arc::new(RecordedEvents::default()),
        cancel: Default::default(),
    };
    let report = runtime.run(&plugin, job).await;
    assert!(report.result.is_ok(), "{:?}", report.result);
    drop(runtime);
    let next = small_runtime(data.path()).load_plugin(&bytes).unwrap();
    assert_eq!(next.loaded_from(), LoadedFrom::Cache);
}

#[test]
fn an_artifact_without_its_mac_is_compiled_again() {
    let data = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(NOOP).unwrap();
    drop(small_runtime(data.path()).load_plugin(&bytes).unwrap());
    let (_, mac) = cached_files(data.path());
    std::fs::remove_file(&mac).unwrap();

    let plugin = small_runtime(data.path()).load_plugin(&bytes).unwrap();
    assert_eq!(plugin.loaded_from(), LoadedFrom::Compiled);
    assert!(mac.exists(), "written again with the new artifact");
}

#[test]
fn an_artifact_written_under_another_key_is_not_trusted() {
    let data = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(NOOP).unwrap();
    drop(
        keyed_runtime(data.path(), [1; 32])
            .load_plugin(&bytes)
            .unwrap(),
    );

    let other = keyed_runtime(data.path(), [2; 32])
        .load_plugin(&bytes)
        .unwrap();
    assert_eq!(other.loaded_from(), LoadedFrom::Compiled);
    let again = keyed_runtime(data.path(), [2; 32])
        .load_plugin(&bytes)
        .unwrap();
    assert_eq!(
        again.loaded_from(),
        LoadedFrom::Cache,
        "rewritten under its key"
    );
}

#[test]
fn one_plugins_artifact_cannot_stand_in_for_anothers() {
    // NOOP's artifact and MAC copied under PANIC's digest: the MAC binds the digest, so the copy
    // is refused although this very key wrote it.
    let data = tempfile::tempdir().unwrap();
    let noop = std::fs::read(NOOP).unwrap();
    let panic = std::fs::read(PANIC).unwrap();
    drop(small_runtime(data.path()).load_plugin(&noop).unwrap());
    let (artifact, mac) = cached_files(data.path());
    let elsewhere = tempfile::tempdir().unwrap();
    let panic_digest = small_runtime(elsewhere.path())
        .load_plugin(&panic)
        .unwrap()
        .digest()
        .trim_start_matches("sha256:")
        .to_owned();
    let dir = artifact.parent().unwrap();
    std::fs::copy(&artifact, dir.join(format!("{panic_digest}.cwasm"))).unwrap();
    std::fs::copy(&mac, dir.join(format!("{panic_digest}.cwasm.mac"))).unwrap();

    let loaded = small_runtime(data.path()).load_plugin(&panic).unwrap();
    assert_eq!(loaded.loaded_from(), LoadedFrom::Compiled);
}

#[test]
fn bytes_that_are_not_a_component_are_refused() {
    let err = runtime()
        .load_plugin(b"#!/bin/sh\necho hi\n")
        .err()
        .unwrap();
    assert!(matches!(err, PluginError::NotAComponent(_)), "{err}");
    assert!(err.to_string().contains("magic number"), "{err}");

    let core_module = b"\0asm\x01\0\0\0";
    let err = runtime().load_plugin(core_module).err().unwrap();
    assert!(
        err.to_string()
            .contains("core module; build with `--target wasm32-wasip2`"),
        "{err}"
    );
}

#[test]
fn a_component_without_the_run_export_is_refused() {
    let empty = wat::parse_str("(component)").unwrap();
    let err = runtime().load_plugin(&empty).err().unwrap();
    assert!(matches!(err, PluginError::MissingExport(_)), "{err}");
    assert!(err.to_string().contains("run"), "{err}");
}

#[test]
fn a_component_importing_what_portico_does_not_offer_is_refused() {
    let component = wat::parse_str(
        r#"(component (import "acme:secrets/vault@1.0.0" (instance (export "read" (func)))))"#,
    )
    .unwrap();
    let err = runtime().load_plugin(&component).err().unwrap();
    assert!(matches!(err, PluginError::UnsupportedImport(_)), "{err}");
    assert!(
        err.to_string().contains("acme:secrets/vault@1.0.0"),
        "{err}"
    );
}
