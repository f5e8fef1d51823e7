//! A write answered 2xx survives `kill -9` of the server: the test runs the server as a child
//! process (this test binary, re-run as `child_server`), kills it with SIGKILL right after its
//! answers, starts it again on the same database and reads everything back.

use portico_tests::api::{ADMIN_TOKEN, Backend, Database, backends};
use serde_json::{Value, json};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// Not a test by itself: when `PORTICO_CHILD_DATABASE` is set, serves until killed.
#[test]
fn child_server() {
    let (Ok(database), Ok(port_file)) = (
        std::env::var("PORTICO_CHILD_DATABASE"),
        std::env::var("PORTICO_CHILD_PORT_FILE"),
    ) else {
        return;
    };
    let data_dir = std::env::var("PORTICO_CHILD_DATA_DIR").expect("data dir");
    // Never outlive the test that started us (it may have panicked without killing us).
    let parent = std::os::unix::process::parent_id();
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(200));
            if std::os::unix::process::parent_id() != parent {
                std::process::exit(1);
            }
        }
    });
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async move {
        let store = portico_store::open(&database).await.expect("store");
        portico_api::auth::bootstrap_admin(
            store.as_ref(),
            data_dir.as_ref(),
            Some(ADMIN_TOKEN.into()),
        )
        .await
        .expect("admin");
        // A short lease, so runs a killed worker held are recovered quickly on Postgres too.
        let runner = portico_runs::runner::RunnerConfig {
            lease: std::time::Duration::from_secs(2),
            ..Default::default()
        };
        let state =
            portico_api::AppState::with_runner(store, portico_tests::runtime().clone(), runner);
        let _workers = state
            .runner
            .start(tokio_util::sync::CancellationToken::new());
        let app = portico_api::app(state, Default::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::fs::write(&port_file, addr.to_string()).expect("port file");
        portico_api::serve(listener, app, std::future::pending())
            .await
            .expect("serve");
    });
}

fn spawn(db: &Database, port_file: &std::path::Path) -> Child {
    let _ = std::fs::remove_file(port_file);
    Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "durability::child_server",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("PORTICO_CHILD_DATABASE", &db.url)
        .env("PORTICO_CHILD_DATA_DIR", db.dir.path())
        .env("PORTICO_CHILD_PORT_FILE", port_file)
        .spawn()
        .expect("child server starts")
}

async fn wait_for_port(port_file: &std::path::Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(addr) = std::fs::read_to_string(port_file)
            && !addr.is_empty()
        {
            return format!("http://{addr}");
        }
        assert!(Instant::now() < deadline, "the child server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Value,
) -> (u16, Value) {
    let response = client
        .request(method, url)
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .expect("answer");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn writes_answered_2xx_survive_kill_9() {
    for backend in backends() {
        let db = Database::fresh(backend).await;
        let port_file = db.dir.path().join("port");
        let client = portico_tests::http_client();

        let mut child = spawn(&db, &port_file);
        let url = wait_for_port(&port_file).await;
        let (status, _) = call(
            &client,
            reqwest::Method::POST,
            format!("{url}/v1/blueprints"),
            json!({ "identifier": "service" }),
        )
        .await;
        assert_eq!(status, 201);
        // Writes in flight together, so they share SQLite's group commits.
        let writes: Vec<_> = (0..100)
            .map(|i| {
                let (client, url) = (client.clone(), url.clone());
                tokio::spawn(async move {
                    call(
                        &client,
                        reqwest::Method::POST,
                        format!("{url}/v1/blueprints/service/entities"),
                        json!({ "identifier": format!("s{i}") }),
                    )
                    .await
                    .0
                })
            })
            .collect();
        for w in writes {
            assert_eq!(w.await.expect("write task"), 201);
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");

        let mut child = spawn(&db, &port_file);
        let url = wait_for_port(&port_file).await;
        let (status, body) = call(
            &client,
            reqwest::Method::GET,
            format!("{url}/v1/blueprints/service/entities?limit=1000"),
            Value::Null,
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(
            body["entities"].as_array().unwrap().len(),
            100,
            "{backend:?}: every answered write is there"
        );
        let (_, audit) = call(
            &client,
            reqwest::Method::GET,
            format!("{url}/v1/audit-log?resource=entity&limit=1000"),
            Value::Null,
        )
        .await;
        assert_eq!(
            audit["audit"].as_array().unwrap().len(),
            100,
            "and so is its audit entry"
        );
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
        if backend == Backend::Postgres {
            drop(db);
        }
    }
}

#[tokio::test]
async fn two_hundred_runs_in_flight_are_all_accounted_for_after_kill_9() {
    for backend in backends() {
        let db = Database::fresh(backend).await;
        let port_file = db.dir.path().join("port");
        let client = portico_tests::http_client();
        let mut child = spawn(&db, &port_file);
        let url = wait_for_port(&port_file).await;

        let probe = std::fs::read(portico_tests::artifacts::PROBE).expect("probe built");
        let uploaded = client
            .put(format!("{url}/v1/plugins/probe"))
            .bearer_auth(ADMIN_TOKEN)
            .body(probe)
            .send()
            .await
            .unwrap();
        assert_eq!(uploaded.status().as_u16(), 201);
        let action = json!({ "identifier": "slow", "trigger": { "type": "self-service", "operation": "CREATE",
            "userInputs": { "properties": { "steps": { "type": "array" } } } },
            "invocationMethod": { "type": "WASM", "plugin": "probe" } });
        assert_eq!(
            call(
                &client,
                reqwest::Method::POST,
                format!("{url}/v1/actions"),
                action
            )
            .await
            .0,
            201
        );

        let posts: Vec<_> = (0..200)
            .map(|_| {
                let (client, url) = (client.clone(), url.clone());
                tokio::spawn(async move {
                    let body = json!({ "properties": { "steps": [ { "sleepMs": 300 } ] } });
                    call(
                        &client,
                        reqwest::Method::POST,
                        format!("{url}/v1/actions/slow/runs"),
                        body,
                    )
                    .await
                })
            })
            .collect();
        let mut ids = Vec::new();
        for post in posts {
            let (status, body) = post.await.expect("post task");
            assert_eq!(status, 202, "{body}");
            ids.push(body["run"]["id"].as_str().expect("run id").to_owned());
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");

        let mut child = spawn(&db, &port_file);
        let url = wait_for_port(&port_file).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        let runs = loop {
            let (_, body) = call(
                &client,
                reqwest::Method::GET,
                format!("{url}/v1/actions/runs?limit=1000"),
                Value::Null,
            )
            .await;
            let runs = body["runs"]
                .as_array()
                .unwrap_or_else(|| panic!("{body}"))
                .clone();
            let open = runs
                .iter()
                .filter(|r| r["status"] == "PENDING" || r["status"] == "IN_PROGRESS")
                .count();
            if open == 0 {
                break runs;
            }
            assert!(Instant::now() < deadline, "{open} runs never ended");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(runs.len(), 200, "{backend:?}: no accepted run is lost");
        for id in &ids {
            let run = runs
                .iter()
                .find(|r| r["id"] == *id)
                .unwrap_or_else(|| panic!("run {id} is missing"));
            let ok = run["status"] == "SUCCESS"
                || (run["status"] == "FAILURE" && run["error"]["kind"] == "interrupted");
            assert!(ok, "{backend:?}: {run}");
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
    }
}
