//! Loading plugins: compiled once per digest, cached on disk across starts, and bad components
//! refused with a message that says what is wrong.

use portico_runtime::{LoadedFrom, NoSecrets, PluginError, Runtime, RuntimeConfig};
use portico_tests::artifacts::NOOP;
use portico_tests::{TestRun, runtime};
use std::sync::Arc;

fn small_runtime(data: &std::path::Path) -> Runtime {
    let mut config = RuntimeConfig::new(data);
    config.max_concurrent_runs = 4;
    Runtime::new(config, Arc::new(NoSecrets)).expect("runtime starts")
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

#[tokio::test]
async fn a_plugin_loaded_from_the_cache_runs() {
    // The shared runtime caches every plugin it loads; a run of NOOP makes sure it did.
    TestRun::new(NOOP).run().await.outcome();
    assert_eq!(
        runtime().config().cache_dir,
        std::path::Path::new(portico_tests::artifacts::CACHE_DIR)
    );
    let data = tempfile::tempdir().unwrap();
    let mut config = RuntimeConfig::new(data.path());
    config.max_concurrent_runs = 4;
    config.cache_dir = runtime().config().cache_dir.clone();
    let again = Runtime::new(config, Arc::new(NoSecrets)).unwrap();
    let plugin = again.load_plugin(&std::fs::read(NOOP).unwrap()).unwrap();
    assert_eq!(plugin.loaded_from(), LoadedFrom::Cache);
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
