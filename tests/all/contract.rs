//! The versioned plugin contract: every published `portico:action` version is frozen (`wit/` is
//! the current one, `wit/since_v<version>/` the older ones) and linked by the host, so a plugin
//! keeps running after the contract grows; a plugin built for a version the host does not offer
//! is refused with a message naming both sides.

use portico_runtime::{Entity, MemoryCatalog, PluginError};
use portico_tests::artifacts::{NOOP, UNKNOWN_CONTRACT, V0_1_0_NOOP};
use portico_tests::{TestRun, plugin, runtime};
use serde_json::json;
use std::sync::Arc;

#[test]
fn plugins_built_with_the_sdk_target_the_current_contract() {
    assert_eq!(plugin(NOOP).contract(), "0.2.0");
}

#[test]
fn a_plugin_built_for_the_first_contract_still_loads() {
    assert_eq!(plugin(V0_1_0_NOOP).contract(), "0.1.0");
}

#[tokio::test]
async fn a_plugin_built_for_0_1_0_runs_with_every_0_1_0_import_answered() {
    let catalog = Arc::new(MemoryCatalog::new());
    catalog.insert(Entity {
        identifier: "payments".into(),
        blueprint: "service".into(),
        title: None,
        team: vec![],
        properties: json!({}),
        relations: json!({}),
    });
    let run = TestRun::new(V0_1_0_NOOP)
        .grant(json!({ "catalog": { "read": ["service"] } }))
        .catalog(catalog)
        .inputs(json!({ "name": "billing" }))
        .run()
        .await;

    let outcome = run.outcome();
    assert_eq!(
        outcome.summary.as_deref(),
        Some("0.1.0 plugin ran; catalog found payments")
    );
    assert_eq!(outcome.output, Some(json!({ "name": "billing" })));
    assert_eq!(outcome.links[0].url, "https://example.com/docs");
    let events = run.events.snapshot();
    assert!(
        run.logs().contains("built for 0.1.0, run "),
        "{}",
        run.logs()
    );
    assert_eq!(
        events.progress,
        vec![(Some(50), Some("halfway".to_owned()))]
    );
}

#[tokio::test]
async fn a_0_1_0_plugin_sees_the_catalog_grant_as_a_0_2_0_plugin_does() {
    let run = TestRun::new(V0_1_0_NOOP).run().await;
    let summary = run.outcome().summary.clone().unwrap_or_default();
    assert!(
        summary.starts_with("0.1.0 plugin ran; catalog denied: "),
        "{summary}"
    );
}

#[test]
fn a_plugin_built_for_a_version_this_host_does_not_offer_is_refused_naming_both() {
    let bytes = std::fs::read(UNKNOWN_CONTRACT).unwrap();
    let err = runtime().load_plugin(&bytes).err().unwrap();
    assert!(matches!(err, PluginError::UnsupportedImport(_)), "{err}");
    assert!(
        err.to_string()
            .contains("built for portico:action@9.9.0; this host offers 0.1.0, 0.2.0"),
        "{err}"
    );
}
