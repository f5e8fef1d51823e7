//! `/v1/plugins`: uploads are checked and compiled before they are stored, kept by digest, and
//! refused with a message that says what is wrong.

use portico_tests::api::{ADMIN_TOKEN, Portico};
use portico_tests::artifacts::{NOOP, PROBE, SCAFFOLD_SERVICE};
use serde_json::json;

async fn upload(
    p: &Portico,
    token: &str,
    name: &str,
    bytes: Vec<u8>,
) -> portico_tests::api::Answer {
    p.send(
        "PUT",
        &format!("/v1/plugins/{name}"),
        Some(token),
        Some(bytes),
    )
    .await
}

#[tokio::test]
async fn an_admin_uploads_lists_and_deletes_plugin_versions() {
    for p in Portico::each().await {
        let first = upload(&p, ADMIN_TOKEN, "probe", std::fs::read(NOOP).unwrap()).await;
        let v1 = first.expect(201)["plugin"].clone();
        assert!(v1["digest"].as_str().unwrap().starts_with("sha256:"));
        assert_eq!(v1["size"], std::fs::metadata(NOOP).unwrap().len());
        assert_eq!(v1["name"], "probe");
        assert!(v1["createdAt"].is_string());
        let again = upload(&p, ADMIN_TOKEN, "probe", std::fs::read(NOOP).unwrap()).await;
        assert_eq!(
            again.expect(200)["plugin"]["digest"],
            v1["digest"],
            "the same bytes are one version"
        );

        let v2 = upload(&p, ADMIN_TOKEN, "probe", std::fs::read(PROBE).unwrap()).await;
        let v2 = v2.expect(201)["plugin"].clone();
        let one = p.admin("GET", "/v1/plugins/probe", json!(null)).await;
        let one = &one.expect(200)["plugin"];
        assert_eq!(
            one["digest"], v2["digest"],
            "the newest version is the plugin's digest"
        );
        assert_eq!(one["versions"].as_array().unwrap().len(), 2);

        let list = p.admin("GET", "/v1/plugins", json!(null)).await;
        assert_eq!(list.expect(200)["plugins"].as_array().unwrap().len(), 1);

        p.admin("DELETE", "/v1/plugins/probe", json!(null))
            .await
            .expect(200);
        p.admin("GET", "/v1/plugins/probe", json!(null))
            .await
            .expect_error(404, "not_found", "plugin `probe` not found");
        p.admin("DELETE", "/v1/plugins/probe", json!(null))
            .await
            .expect(404);
    }
}

#[tokio::test]
async fn bad_uploads_say_what_is_wrong() {
    for p in Portico::each().await {
        upload(&p, ADMIN_TOKEN, "x", b"#!/bin/sh\necho hi\n".to_vec())
            .await
            .expect_error(400, "not_a_component", "magic number");
        upload(&p, ADMIN_TOKEN, "x", b"\0asm\x01\0\0\0".to_vec())
            .await
            .expect_error(
                400,
                "not_a_component",
                "core module; build with `--target wasm32-wasip2`",
            );
        upload(&p, ADMIN_TOKEN, "x", wat::parse_str("(component)").unwrap())
            .await
            .expect_error(
                422,
                "invalid_plugin",
                "does not fit the portico:action/action-backend world",
            );
        let importer = wat::parse_str(
            r#"(component (import "acme:vault/read@1.0.0" (instance (export "read" (func)))))"#,
        )
        .unwrap();
        upload(&p, ADMIN_TOKEN, "x", importer).await.expect_error(
            422,
            "invalid_plugin",
            "imports something Portico does not offer",
        );
        upload(&p, ADMIN_TOKEN, "Bad Name", std::fs::read(NOOP).unwrap())
            .await
            .expect_error(400, "bad_request", "a plugin name is");
        let too_big = vec![0u8; portico_runtime::MAX_PLUGIN_BYTES + 1];
        upload(&p, ADMIN_TOKEN, "x", too_big).await.expect_error(
            413,
            "payload_too_large",
            "the limit is",
        );
        assert!(
            p.admin("GET", "/v1/plugins", json!(null)).await.expect(200)["plugins"]
                .as_array()
                .unwrap()
                .is_empty()
        );
    }
}

#[tokio::test]
async fn members_may_read_plugins_but_not_change_them() {
    for p in Portico::each().await {
        p.send(
            "PUT",
            "/v1/plugins/noop",
            None,
            Some(std::fs::read(NOOP).unwrap()),
        )
        .await
        .expect_error(401, "unauthorized", "missing token");
        let bob = p.member("bob", &["payments"]).await;
        upload(&p, &bob, "noop", std::fs::read(NOOP).unwrap())
            .await
            .expect_error(403, "forbidden", "uploading plugins needs the admin role");
        upload(&p, ADMIN_TOKEN, "noop", std::fs::read(NOOP).unwrap())
            .await
            .expect(201);
        p.as_user(&bob, "GET", "/v1/plugins/noop", json!(null))
            .await
            .expect(200);
        p.as_user(&bob, "DELETE", "/v1/plugins/noop", json!(null))
            .await
            .expect_error(403, "forbidden", "deleting plugins needs the admin role");
    }
}

#[tokio::test]
async fn a_plugins_folder_is_loaded_at_start() {
    for p in Portico::each().await {
        let dir = std::path::Path::new(SCAFFOLD_SERVICE).parent().unwrap();
        let state = portico_api::AppState::new(
            portico_store::open(&p.database_url()).await.unwrap(),
            portico_tests::runtime().clone(),
        );
        let loaded = portico_api::startup::load_plugins_dir(&state, dir)
            .await
            .unwrap();
        let names: Vec<&str> = loaded.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "change-replicas",
                "dev-environment",
                "scaffold-service",
                "teardown",
                "webhook"
            ]
        );
        assert!(loaded.iter().all(|l| l.added));
        let listed = p.admin("GET", "/v1/plugins", json!(null)).await;
        assert_eq!(listed.expect(200)["plugins"].as_array().unwrap().len(), 5);
        let again = portico_api::startup::load_plugins_dir(&state, dir)
            .await
            .unwrap();
        assert!(
            again.iter().all(|l| !l.added),
            "a second start stores nothing new"
        );
    }
}

#[tokio::test]
async fn the_embedded_default_seeds_example_blueprints_and_actions_once() {
    for p in Portico::each().await {
        let dir = std::path::Path::new(SCAFFOLD_SERVICE).parent().unwrap();
        let state = portico_api::AppState::new(
            portico_store::open(&p.database_url()).await.unwrap(),
            portico_tests::runtime().clone(),
        );
        portico_api::startup::load_plugins_dir(&state, dir)
            .await
            .unwrap();
        let created = portico_api::startup::seed_examples(&state).await.unwrap();
        assert_eq!(
            created,
            [
                "blueprint team",
                "blueprint service",
                "blueprint environment",
                "team platform",
                "action scaffold_service",
                "action change_replicas",
                "action call_webhook",
                "action provision_dev_environment",
                "action teardown_expired_environment"
            ]
        );
        assert!(
            portico_api::startup::seed_examples(&state)
                .await
                .unwrap()
                .is_empty(),
            "a restart creates nothing"
        );

        let run = p
            .admin(
                "POST",
                "/v1/actions/scaffold_service/runs",
                json!({ "properties": { "name": "from-the-examples" } }),
            )
            .await;
        let id = run.expect(202)["run"]["id"].as_str().unwrap().to_owned();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let run = p
                .admin("GET", &format!("/v1/actions/runs/{id}"), json!(null))
                .await;
            if run.body["run"]["status"] == "SUCCESS" {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{}", run.body);
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}
