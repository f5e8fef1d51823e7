//! The first-party plugins in `plugins/`, run as an action would run them.

use portico_runtime::{Entity, FailureKind, MemoryCatalog};
use portico_tests::artifacts::{CHANGE_REPLICAS, SCAFFOLD_SERVICE, WEBHOOK};
use portico_tests::server::{ERROR_BODY, TestServer};
use portico_tests::{TEST_SECRET, TestRun};
use serde_json::json;
use std::sync::Arc;

fn scaffold(catalog: &Arc<MemoryCatalog>, name: &str) -> TestRun {
    TestRun::new(SCAFFOLD_SERVICE)
        .inputs(json!({ "name": name, "language": "go", "team": "payments" }))
        .config(json!({ "org": "acme" }))
        .grant(json!({ "catalog": { "write": ["service"] } }))
        .catalog(catalog.clone())
}

#[tokio::test]
async fn scaffold_service_registers_the_service_with_progress_and_a_link() {
    let catalog = Arc::new(MemoryCatalog::new());
    let run = scaffold(&catalog, "payments-api").run().await;

    let outcome = run.outcome();
    assert_eq!(
        outcome.summary.as_deref(),
        Some("Service payments-api scaffolded")
    );
    assert_eq!(outcome.links[0].url, "https://github.com/acme/payments-api");
    let entity = &catalog.entities()[0];
    assert_eq!(
        (entity.blueprint.as_str(), entity.identifier.as_str()),
        ("service", "payments-api")
    );
    assert_eq!(entity.properties["language"], "go");
    assert_eq!(entity.team, ["payments"]);
    assert_eq!(run.report.affected_entities[0].identifier, "payments-api");
    let progress = run.events.snapshot().progress;
    assert_eq!(progress.last().unwrap().0, Some(100));
}

#[tokio::test]
async fn scaffold_service_refuses_a_bad_name_and_an_existing_service() {
    let catalog = Arc::new(MemoryCatalog::new());
    let bad = scaffold(&catalog, "Payments_API").run().await;
    assert_eq!(bad.failure().kind, FailureKind::Plugin);
    assert!(
        bad.failure()
            .message
            .contains("invalid input: service name `Payments_API` must be")
    );

    scaffold(&catalog, "orders").run().await.outcome();
    let again = scaffold(&catalog, "orders").run().await;
    assert!(
        again
            .failure()
            .message
            .contains("a service named `orders` already exists")
    );
}

#[tokio::test]
async fn scaffold_service_without_the_write_grant_is_denied() {
    let catalog = Arc::new(MemoryCatalog::new());
    let run = scaffold(&catalog, "payments-api")
        .grant(json!({ "catalog": { "read": ["service"] } }))
        .run()
        .await;
    assert_eq!(run.failure().kind, FailureKind::Denied);
    assert!(catalog.entities().is_empty());
}

#[tokio::test]
async fn change_replicas_updates_the_entity_and_logs_before_and_after() {
    let catalog = Arc::new(MemoryCatalog::new());
    let service = Entity {
        identifier: "payments-api".into(),
        blueprint: "service".into(),
        title: Some("Payments".into()),
        team: vec!["payments".into()],
        properties: json!({ "replicas": 2, "language": "go" }),
        relations: json!({}),
    };
    catalog.insert(service.clone());

    let run = TestRun::new(CHANGE_REPLICAS)
        .on_entity(service)
        .inputs(json!({ "replicas": 5 }))
        .grant(json!({ "catalog": { "write": ["service"] } }))
        .catalog(catalog.clone())
        .run()
        .await;
    assert_eq!(
        run.outcome().summary.as_deref(),
        Some("payments-api scaled from 2 to 5 replicas")
    );
    let logs = run.logs();
    assert!(
        logs.contains("replicas before = 2") && logs.contains("replicas after = 5"),
        "{logs}"
    );
    let stored = &catalog.entities()[0];
    assert_eq!(
        stored.properties,
        json!({ "replicas": 5, "language": "go" })
    );
}

#[tokio::test]
async fn change_replicas_needs_an_entity() {
    let run = TestRun::new(CHANGE_REPLICAS)
        .inputs(json!({ "replicas": 1 }))
        .run()
        .await;
    assert!(
        run.failure().message.contains("must run on an entity"),
        "{}",
        run.failure()
    );
}

#[tokio::test]
async fn webhook_posts_the_payload_with_the_injected_auth_header() {
    let server = TestServer::start().await;
    let run = TestRun::new(WEBHOOK)
        .inputs(json!({ "tag": "v1.2.3" }))
        .config(json!({ "url": server.url("/deploy") }))
        .grant(json!({ "http": [ { "url": server.origin(),
            "headers": { "Authorization": "Bearer {{ .secrets.test_token }}" } } ] }))
        .run()
        .await;
    assert_eq!(
        run.outcome().summary.as_deref(),
        Some("Webhook answered 200")
    );
    let received = &server.requests()[0];
    assert_eq!(received.path, "/deploy");
    assert_eq!(
        received.header("authorization"),
        Some(format!("Bearer {TEST_SECRET}").as_str())
    );
    assert_eq!(received.header("content-type"), Some("application/json"));
    let body: serde_json::Value = serde_json::from_str(&received.body).unwrap();
    assert_eq!(body["inputs"]["tag"], "v1.2.3");
    assert_eq!(body["triggeredBy"]["identifier"], "alice");
}

#[tokio::test]
async fn webhook_fails_on_a_non_2xx_answer_with_the_status_and_the_start_of_the_body() {
    let server = TestServer::start().await;
    let run = TestRun::new(WEBHOOK)
        .config(json!({ "url": server.url("/status/502") }))
        .grant(json!({ "http": [ { "url": server.origin() } ] }))
        .run()
        .await;
    let failure = run.failure();
    assert_eq!(failure.kind, FailureKind::Plugin);
    let preview: String = ERROR_BODY.chars().take(200).collect();
    assert_eq!(
        failure.message,
        format!("the webhook answered 502: {preview}")
    );
}
