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
        let app = portico_api::app(
            portico_api::AppState::new(store, portico_tests::runtime().clone()),
            Default::default(),
        );
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
        let client = reqwest::Client::new();

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
