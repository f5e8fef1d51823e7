//! `/v1/plugins`: uploads are checked and compiled before they are stored, kept by digest, and
//! refused with a message that says what is wrong.

use portico_tests::api::{ADMIN_TOKEN, Backend, Portico};
use portico_tests::artifacts::{
    NOOP, NOTIFY_PY, OPEN_PULL_REQUEST, PROBE, PY_PROBE, SCAFFOLD_SERVICE,
};
use portico_tests::server::TestServer;
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
        // The Python and TypeScript examples, as scripts/run builds them into that folder.
        let interpreted = tempfile::tempdir().unwrap();
        for built in [NOTIFY_PY, OPEN_PULL_REQUEST] {
            let built = std::path::Path::new(built);
            std::fs::copy(built, interpreted.path().join(built.file_name().unwrap())).unwrap();
        }
        portico_api::startup::load_plugins_dir(&state, interpreted.path())
            .await
            .unwrap();
        let created = portico_api::startup::seed_examples(&state).await.unwrap();
        assert_eq!(
            created,
            [
                "blueprint team",
                "blueprint service",
                "blueprint environment",
                "blueprint pull_request",
                "team platform",
                "action scaffold_service",
                "action change_replicas",
                "action call_webhook",
                "action provision_dev_environment",
                "action teardown_expired_environment",
                "action announce_deployment",
                "action open_pull_request"
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

/// `bytes` with a custom section appended: the same component under a digest no cache has seen.
fn never_seen(bytes: &[u8]) -> Vec<u8> {
    fn leb128(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let name = b"portico-test";
    let payload = format!("{:?}", std::time::SystemTime::now()).into_bytes();
    let mut section = Vec::new();
    leb128(name.len(), &mut section);
    section.extend_from_slice(name);
    section.extend_from_slice(&payload);
    let mut out = bytes.to_vec();
    out.push(0);
    leb128(section.len(), &mut out);
    out.extend_from_slice(&section);
    out
}

#[tokio::test]
async fn a_large_component_is_stored_at_once_and_a_run_waits_for_its_compile() {
    let p = Portico::start(Backend::Sqlite).await;
    // A Python component (18 MB, an interpreter inside) that this host never compiled.
    let answer = upload(
        &p,
        ADMIN_TOKEN,
        "big",
        never_seen(&std::fs::read(PY_PROBE).unwrap()),
    )
    .await;
    let body = answer.expect(202);
    assert_eq!(body["status"], "compiling");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("runs of it wait")
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("GET /v1/plugins/big shows"),
        "the message names the plugin: {body}"
    );
    let listed = p.admin("GET", "/v1/plugins/big", json!(null)).await;
    assert_eq!(listed.expect(200)["plugin"]["status"], "compiling");

    // An action can name it at once, and its run waits for the compile instead of failing.
    let action = json!({
        "identifier": "big_run", "title": "Big",
        "trigger": { "type": "self-service", "operation": "CREATE", "userInputs": { "properties": {} } },
        "invocationMethod": { "type": "WASM", "plugin": "big",
            "config": { "steps": [{ "summary": "ran after the compile" }] } }
    });
    p.admin("POST", "/v1/actions", action).await.expect(201);
    let id = p.run("big_run", json!({ "properties": {} })).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(240);
    let run = loop {
        let run = p
            .admin("GET", &format!("/v1/actions/runs/{id}"), json!(null))
            .await
            .expect(200)["run"]
            .clone();
        if run["status"] == "SUCCESS" || run["status"] == "FAILURE" {
            break run;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the compile never ended: {run}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(run["status"], "SUCCESS", "{run}");
    assert_eq!(run["summary"], "ran after the compile");
    let listed = p.admin("GET", "/v1/plugins/big", json!(null)).await;
    assert_eq!(listed.expect(200)["plugin"]["status"], "ready");
}

#[tokio::test]
async fn a_version_that_failed_to_compile_is_withdrawn_alone_and_audited() {
    for p in Portico::each().await {
        upload(&p, ADMIN_TOKEN, "probe", std::fs::read(NOOP).unwrap())
            .await
            .expect(201);
        let v2 = upload(&p, ADMIN_TOKEN, "probe", std::fs::read(PROBE).unwrap()).await;
        let v2 = v2.expect(201)["plugin"]["digest"]
            .as_str()
            .unwrap()
            .to_owned();
        // What the upload's background task does when the compile fails.
        let store = portico_store::open(&p.database_url()).await.unwrap();
        let mut audit =
            portico_store::AuditRecord::success("admin", "api", "WITHDRAW", "plugin", "probe");
        audit.after = Some(json!({ "reason": "the component cannot be compiled" }));
        assert!(
            store
                .withdraw_plugin_version("probe", &v2, audit.clone())
                .await
                .unwrap()
        );
        assert!(
            !store
                .withdraw_plugin_version("probe", &v2, audit)
                .await
                .unwrap()
        );
        let listed = p.admin("GET", "/v1/plugins/probe", json!(null)).await;
        let versions = listed.expect(200)["plugin"]["versions"].clone();
        assert_eq!(
            versions.as_array().unwrap().len(),
            1,
            "the older version stays"
        );
        assert_ne!(versions[0]["digest"], v2.as_str());
        let audit = p
            .admin("GET", "/v1/audit-log?resource=plugin", json!(null))
            .await;
        let audit = audit.expect(200)["audit"].clone();
        let withdrawn = audit
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["operation"] == "WITHDRAW")
            .expect("the withdrawal is audited");
        assert_eq!(
            withdrawn["after"]["reason"],
            "the component cannot be compiled"
        );
    }
}

#[tokio::test]
async fn the_python_and_typescript_examples_run_end_to_end() {
    let p = Portico::with_examples(Backend::Sqlite).await;
    let upstream = TestServer::start().await;

    // The Python plugin announces a deployment of a service to the chat webhook.
    let mut announce = p
        .admin("GET", "/v1/actions/announce_deployment", json!(null))
        .await
        .expect(200)["action"]
        .clone();
    announce["invocationMethod"]["config"]["webhookUrl"] =
        upstream.url("/hooks/deployments").into();
    announce["invocationMethod"]["capabilities"]["http"] = json!([{ "url": upstream.origin() }]);
    p.admin("PUT", "/v1/actions/announce_deployment", announce)
        .await
        .expect(200);
    p.admin(
        "POST",
        "/v1/blueprints/service/entities",
        json!({ "identifier": "payments-api", "title": "Payments API", "properties": {} }),
    )
    .await
    .expect(201);
    let id = p
        .run(
            "announce_deployment",
            json!({ "entity": "payments-api", "properties": { "version": "v1.4.2" } }),
        )
        .await;
    let run = p.finished(&id).await;
    assert_eq!(run["status"], "SUCCESS", "{run}");
    let posted = upstream.requests();
    assert_eq!(posted[0].path, "/hooks/deployments");
    assert!(
        posted[0].body.contains("Payments API") && posted[0].body.contains("v1.4.2"),
        "{}",
        posted[0].body
    );

    // The TypeScript plugin opens a pull request and records it in the catalog.
    let mut open = p
        .admin("GET", "/v1/actions/open_pull_request", json!(null))
        .await
        .expect(200)["action"]
        .clone();
    open["invocationMethod"]["config"]["apiUrl"] = upstream.url("/github").into();
    open["invocationMethod"]["capabilities"]["http"] = json!([{ "url": upstream.origin() }]);
    p.admin("PUT", "/v1/actions/open_pull_request", open)
        .await
        .expect(200);
    let id = p
        .run(
            "open_pull_request",
            json!({ "properties": { "repository": "acme/docs", "title": "Add the queues ADR",
                "path": "docs/adr/0012-queues.md", "content": "# Queues\n" } }),
        )
        .await;
    let run = p.finished(&id).await;
    assert_eq!(run["status"], "SUCCESS", "{run}");
    let calls: Vec<String> = upstream.requests()[1..]
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        calls,
        [
            "GET /github/repos/acme/docs/git/ref/heads/main",
            "POST /github/repos/acme/docs/git/refs",
            "PUT /github/repos/acme/docs/contents/docs/adr/0012-queues.md",
            "POST /github/repos/acme/docs/pulls"
        ]
    );
    assert!(
        run.to_string()
            .contains("https://github.example/acme/docs/pull/42"),
        "{run}"
    );
    let recorded = p
        .admin("GET", "/v1/blueprints/pull_request/entities", json!(null))
        .await;
    assert_eq!(
        recorded.expect(200)["entities"][0]["properties"]["number"],
        42
    );
}
