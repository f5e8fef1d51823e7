//! Every capability both ways: granted, it works; not granted, it is denied with a message that
//! names what was refused and which grant would allow it. Each test runs once per guest
//! language: the Rust, Python and JavaScript probes take the same steps through their SDKs.

use portico_runtime::{Entity, EntityChange, FailureKind, LogLevel, MemoryCatalog};
use portico_tests::server::TestServer;
use portico_tests::{TEST_SECRET, TestRun, runtime};
use serde_json::{Value, json};
use std::sync::Arc;

fn probe(guest: &'static str, steps: Value) -> TestRun {
    TestRun::new(guest).inputs(json!({ "steps": steps }))
}

fn probe_failing(guest: &'static str, steps: Value) -> TestRun {
    TestRun::new(guest).inputs(json!({ "steps": steps, "failOnError": true }))
}

fn service(id: &str) -> Entity {
    Entity {
        identifier: id.into(),
        blueprint: "service".into(),
        title: None,
        team: vec![],
        properties: json!({ "language": "rust" }),
        relations: json!({}),
    }
}

async fn logs_progress_and_links_are_always_available(guest: &'static str) {
    let run = probe(
        guest,
        json!([
            { "log": "hello from log.emit" },
            { "print": "hello from stdout" },
            { "progress": { "percent": 150, "label": "almost" } },
            { "link": { "title": "PR", "url": "https://example.com/pr/1" } },
        ]),
    )
    .run()
    .await;
    let recorded = run.events.snapshot();
    assert!(
        recorded
            .logs
            .contains(&(LogLevel::Info, "hello from log.emit".into()))
    );
    assert!(
        recorded
            .logs
            .contains(&(LogLevel::Info, "hello from stdout".into()))
    );
    assert_eq!(
        recorded.progress,
        [(Some(100), Some("almost".into()))],
        "percent is capped at 100"
    );
    assert_eq!(run.outcome().links[0].url, "https://example.com/pr/1");
}

async fn catalog_reads_need_a_read_grant(guest: &'static str) {
    let catalog = Arc::new(MemoryCatalog::new());
    catalog.insert(service("payments"));
    let steps = json!([{ "get": { "blueprint": "service", "identifier": "payments" } }]);

    let granted = probe(guest, steps.clone())
        .grant(json!({ "catalog": { "read": ["service"] } }))
        .catalog(catalog.clone())
        .run()
        .await;
    assert_eq!(
        granted.output()["results"][0]["ok"]["identifier"],
        "payments"
    );

    let denied = probe_failing(guest, steps)
        .grant(json!({ "catalog": { "read": ["team"] } }))
        .catalog(catalog)
        .run()
        .await;
    let failure = denied.failure();
    assert_eq!(failure.kind, FailureKind::Denied);
    assert!(
        failure
            .message
            .contains("catalog read of blueprint `service` denied")
            && failure.message.contains("capabilities.catalog.read")
            && failure.message.contains("granted: team"),
        "{failure}"
    );
}

async fn catalog_writes_need_a_write_grant_and_are_attributed_to_the_run(guest: &'static str) {
    let catalog = Arc::new(MemoryCatalog::new());
    let steps = json!([
        { "upsert": { "identifier": "billing", "blueprint": "service", "title": "Billing",
                      "team": ["payments"], "properties": { "replicas": 2 }, "relations": {} } },
        { "delete": { "blueprint": "service", "identifier": "billing" } },
        { "upsert": { "identifier": "orders", "blueprint": "service", "title": null,
                      "team": [], "properties": {}, "relations": {} } },
    ]);

    let granted = probe(guest, steps.clone())
        .grant(json!({ "catalog": { "write": ["service"] } }))
        .catalog(catalog.clone())
        .run()
        .await;
    let results = &granted.output()["results"];
    assert_eq!(results[0]["ok"]["properties"]["replicas"], 2);
    assert_eq!(results[1]["ok"], true, "the delete found the entity");
    let affected: Vec<_> = granted
        .report
        .affected_entities
        .iter()
        .map(|a| (a.identifier.as_str(), a.change))
        .collect();
    assert_eq!(
        affected,
        [
            ("billing", EntityChange::Deleted),
            ("orders", EntityChange::Upserted)
        ]
    );
    assert_eq!(catalog.entities().len(), 1);

    let read_only = probe_failing(guest, steps)
        .grant(json!({ "catalog": { "read": ["service"] } }))
        .catalog(catalog.clone())
        .run()
        .await;
    let failure = read_only.failure();
    assert_eq!(failure.kind, FailureKind::Denied);
    assert!(
        failure
            .message
            .contains("catalog write of blueprint `service` denied"),
        "{failure}"
    );
    assert!(failure.message.contains("granted: none"), "{failure}");
    assert!(read_only.report.affected_entities.is_empty());
}

async fn catalog_search_sees_only_granted_blueprints(guest: &'static str) {
    let catalog = Arc::new(MemoryCatalog::new());
    catalog.insert(service("payments"));
    let mut team = service("platform");
    team.blueprint = "team".into();
    catalog.insert(team);
    let steps = json!([{ "search": { "combinator": "and", "rules": [
        { "property": "language", "operator": "=", "value": "rust" } ] } }]);

    let granted = probe(guest, steps.clone())
        .grant(json!({ "catalog": { "read": ["service"] } }))
        .catalog(catalog.clone())
        .run()
        .await;
    let found = granted.output()["results"][0]["ok"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(
        found.len(),
        1,
        "the team entity matches too but is not readable"
    );
    assert_eq!(found[0]["blueprint"], "service");

    let none = probe_failing(guest, steps).catalog(catalog).run().await;
    assert_eq!(none.failure().kind, FailureKind::Denied);
    assert!(
        none.failure()
            .message
            .contains("capabilities.catalog.read is empty")
    );
}

async fn http_reaches_granted_origins_with_the_grant_headers_injected(guest: &'static str) {
    let server = TestServer::start().await;
    let run = probe(
        guest,
        json!([
            { "http": { "method": "POST", "url": server.url("/deploy"), "body": "tag=v1",
                        "headers": { "authorization": "Bearer forged-by-the-plugin" } } },
            { "env": null },
        ]),
    )
    .grant(json!({ "http": [ { "url": server.origin(), "headers": {
        "Authorization": "Bearer {{ .secrets.test_token }}",
        "X-Static": "plain value" } } ] }))
    .run()
    .await;

    let results = &run.output()["results"];
    assert_eq!(results[0]["ok"]["status"], 200);
    let received = server.requests();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].method, "POST");
    assert_eq!(received[0].body, "tag=v1");
    assert_eq!(
        received[0].header("authorization"),
        Some(format!("Bearer {TEST_SECRET}").as_str()),
        "the host's header replaces the one the plugin forged"
    );
    assert_eq!(received[0].header("x-static"), Some("plain value"));

    // Nothing the plugin can see (response, environment, its own output, its log) holds it.
    assert_eq!(results[1]["ok"]["vars"], json!({}));
    let everything = format!("{}\n{}", run.output(), run.logs());
    assert!(
        !everything.contains(TEST_SECRET),
        "the secret leaked to the plugin"
    );
}

async fn http_to_an_origin_not_granted_is_denied(guest: &'static str) {
    let server = TestServer::start().await;
    let other = TestServer::start().await;
    let run = probe_failing(guest, json!([{ "http": { "url": other.url("/") } }]))
        .grant(json!({ "http": [ { "url": server.origin() } ] }))
        .run()
        .await;
    let failure = run.failure();
    assert_eq!(failure.kind, FailureKind::Denied);
    assert!(
        failure
            .message
            .contains(&format!("HTTP request to {} denied", other.origin()))
            && failure
                .message
                .contains("not in the action's capabilities.http grant")
            && failure
                .message
                .contains(&format!("granted: {}", server.origin())),
        "{failure}"
    );
    assert!(
        other.requests().is_empty(),
        "nothing reached the origin that was not granted"
    );
}

async fn http_without_any_grant_is_denied(guest: &'static str) {
    let server = TestServer::start().await;
    let run = probe_failing(guest, json!([{ "http": { "url": server.url("/") } }]))
        .run()
        .await;
    assert_eq!(run.failure().kind, FailureKind::Denied);
    assert!(
        run.failure().message.contains("granted: none"),
        "{}",
        run.failure()
    );
    assert!(server.requests().is_empty());
}

async fn a_grant_naming_a_missing_secret_denies_the_request_and_says_which(guest: &'static str) {
    let server = TestServer::start().await;
    let run = probe_failing(guest, json!([{ "http": { "url": server.url("/") } }]))
        .grant(json!({ "http": [ { "url": server.origin(),
            "headers": { "Authorization": "Bearer {{ .secrets.not_configured }}" } } ] }))
        .run()
        .await;
    assert_eq!(run.failure().kind, FailureKind::Denied);
    assert!(
        run.failure()
            .message
            .contains("secret `not_configured`, which is not configured"),
        "{}",
        run.failure()
    );
    assert!(server.requests().is_empty());
}

async fn scratch_folder_only_when_granted_and_gone_after_the_run(guest: &'static str) {
    // A file named after the guest: the three languages' runs share the scratch root.
    let name = format!(
        "notes-{}.txt",
        std::path::Path::new(guest)
            .file_stem()
            .unwrap()
            .to_string_lossy()
    );
    let path = format!("/scratch/{name}");
    let steps = json!([
        { "writeFile": { "path": path, "content": "draft" } },
        { "readFile": path },
        { "listDir": "/scratch" },
    ]);
    let granted = probe(guest, steps.clone())
        .grant(json!({ "filesystem": "scratch" }))
        .run()
        .await;
    let results = &granted.output()["results"];
    assert_eq!(results[1]["ok"], "draft");
    assert_eq!(results[2]["ok"], json!([name]));
    let scratch_root = &runtime().config().scratch_dir;
    let leftovers: Vec<_> = std::fs::read_dir(scratch_root)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(
        !leftovers.iter().any(|p| p.join(&name).exists()),
        "the run's folder is removed: {leftovers:?}"
    );

    let denied = probe_failing(guest, steps).run().await;
    let failure = denied.failure();
    assert_eq!(failure.kind, FailureKind::Denied);
    assert!(
        // Each language words the OS error its own way.
        failure.message.contains("No such file or directory")
            || failure.message.contains("not found")
            || failure.message.contains("no-entry"),
        "{failure}"
    );
}

async fn the_environment_is_empty(guest: &'static str) {
    assert!(std::env::var("PATH").is_ok(), "the host has an environment");
    let run = probe(guest, json!([{ "env": null }])).run().await;
    assert_eq!(
        run.output()["results"][0]["ok"],
        json!({ "vars": {}, "args": [] })
    );
}

per_guest!(
    [rust = PROBE, python = PY_PROBE, javascript = JS_PROBE]
    logs_progress_and_links_are_always_available,
    catalog_reads_need_a_read_grant,
    catalog_writes_need_a_write_grant_and_are_attributed_to_the_run,
    catalog_search_sees_only_granted_blueprints,
    http_reaches_granted_origins_with_the_grant_headers_injected,
    http_to_an_origin_not_granted_is_denied,
    http_without_any_grant_is_denied,
    a_grant_naming_a_missing_secret_denies_the_request_and_says_which,
    scratch_folder_only_when_granted_and_gone_after_the_run,
    the_environment_is_empty,
);
