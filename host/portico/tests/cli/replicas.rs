//! Three `portico serve` processes on one Postgres database, as an operator scales out: runs
//! are accepted by all three, one replica is killed with SIGKILL in the middle of its runs, and
//! nothing is lost: every accepted run ends, automations fire exactly once for every entity
//! change made on any replica, the notification receiver sees every event, a run executed on one
//! replica streams its log from another, and a cancel sent to one replica stops a plugin on
//! another. Postgres only (`PORTICO_TEST_POSTGRES_URL`): SQLite is one process.

use portico_tests::api::{ADMIN_TOKEN, Backend, Database};
use portico_tests::artifacts::{NOOP, PROBE};
use portico_tests::server::TestServer;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The key every replica shares: it seals secret inputs and signs run tokens.
const HOST_KEY: &str = "5f1c2a9e8d7b6a5f4e3d2c1b0a99887766554433221100ffeeddccbbaa998877";
/// How long a replica holds a run or an event: short, so the test sees the takeover soon.
const LEASE: &str = "2s";

/// One `portico serve` process.
struct Replica {
    url: String,
    child: Child,
    _data: tempfile::TempDir,
}

impl Replica {
    /// Starts a replica on `database` and waits until it is ready.
    async fn start(database: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let data = tempfile::tempdir().expect("temp dir");
        let log = std::fs::File::create(data.path().join("serve.log")).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_portico"))
            .arg("serve")
            .env("PORTICO_DATABASE", database)
            .env("PORTICO_LISTEN", format!("127.0.0.1:{port}"))
            .env("PORTICO_DATA_DIR", data.path())
            .env("PORTICO_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("PORTICO_HOST_KEY", HOST_KEY)
            .env("PORTICO_WEBHOOK_SECRET", "replicas-test")
            .env("PORTICO_NOTIFY_ALLOW_PRIVATE", "true")
            .env("PORTICO_RUN_LEASE", LEASE)
            .env("PORTICO_WORKERS", "8")
            .env("PORTICO_CONFIG", data.path().join("none.toml"))
            .env("RUST_LOG", "warn")
            .env("RUST_BACKTRACE", "0")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("portico serve starts");
        let replica = Self {
            url: format!("http://127.0.0.1:{port}"),
            child,
            _data: data,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        let client = portico_tests::http_client();
        loop {
            let ready = client.get(format!("{}/readyz", replica.url)).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return replica;
            }
            assert!(Instant::now() < deadline, "{} never got ready", replica.url);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILL: no shutdown, no last write.
    fn kill(&mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("reaped");
    }

    async fn send(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = portico_tests::http_client()
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(ADMIN_TOKEN);
        if !body.is_null() {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the replica answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn expect(&self, method: &str, path: &str, body: Value, status: u16) -> Value {
        let (got, answer) = self.send(method, path, body).await;
        assert_eq!(got, status, "{method} {path} on {}: {answer}", self.url);
        answer
    }

    async fn upload(&self, name: &str, path: &str) {
        let bytes = std::fs::read(path).expect("plugin built");
        let answer = portico_tests::http_client()
            .put(format!("{}/v1/plugins/{name}", self.url))
            .bearer_auth(ADMIN_TOKEN)
            .body(bytes)
            .send()
            .await
            .expect("upload");
        assert!(answer.status().is_success(), "{}", answer.status());
    }

    /// Requests a run, answering its id.
    async fn run(&self, action: &str, properties: Value) -> String {
        let path = format!("/v1/actions/{action}/runs");
        let answer = self
            .expect("POST", &path, json!({ "properties": properties }), 202)
            .await;
        answer["run"]["id"].as_str().expect("a run id").to_owned()
    }

    async fn get_run(&self, id: &str) -> Value {
        let path = format!("/v1/actions/runs/{id}");
        self.expect("GET", &path, Value::Null, 200).await["run"].clone()
    }

    /// Waits until run `id` has one of `statuses`, answering it.
    async fn until(&self, id: &str, statuses: &[&str], within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let run = self.get_run(id).await;
            if statuses.contains(&run["status"].as_str().unwrap_or_default()) {
                return run;
            }
            assert!(
                Instant::now() < deadline,
                "run {id} never reached {statuses:?}: {run}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn runs_of(&self, action: &str) -> Vec<Value> {
        let path = format!("/v1/actions/runs?action={action}&limit=1000");
        let answer = self.expect("GET", &path, Value::Null, 200).await;
        answer["runs"].as_array().expect("runs").clone()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const ENDED: &[&str] = &["SUCCESS", "FAILURE", "CANCELLED", "DECLINED"];

#[tokio::test]
async fn three_replicas_lose_nothing_when_one_is_killed_mid_run() {
    if std::env::var("PORTICO_TEST_POSTGRES_URL").is_err() {
        eprintln!("skipped: set PORTICO_TEST_POSTGRES_URL to run replicas on Postgres");
        return;
    }
    let database = Database::fresh(Backend::Postgres).await;
    // The first replica creates the admin user; then the other two join it.
    let first = Replica::start(&database.url).await;
    let (second, third) =
        tokio::join!(Replica::start(&database.url), Replica::start(&database.url));
    let mut replicas = [first, second, third];
    let receiver = TestServer::start().await;

    let r0 = &replicas[0];
    r0.upload("noop", NOOP).await;
    r0.upload("probe", PROBE).await;
    r0.expect(
        "POST",
        "/v1/blueprints",
        json!({ "identifier": "service", "schema": { "properties": {} } }),
        201,
    )
    .await;
    r0.expect(
        "POST",
        "/v1/actions",
        json!({
        "identifier": "on-service",
        "trigger": { "type": "automation",
            "event": { "type": "ANY_ENTITY_CHANGE", "blueprintIdentifier": "service" } },
        "invocationMethod": { "type": "WASM", "plugin": "noop" } }),
        201,
    )
    .await;
    r0.expect(
        "POST",
        "/v1/actions",
        json!({
        "identifier": "deploy",
        "trigger": { "type": "self-service", "operation": "CREATE" },
        "invocationMethod": { "type": "WASM", "plugin": "noop" },
        "retry": { "onInterrupt": true },
        "notifications": [{ "url": receiver.url("/events"),
            "events": ["RUN_CREATED", "SUCCESS"] }] }),
        201,
    )
    .await;
    r0.expect(
        "POST",
        "/v1/actions",
        json!({
        "identifier": "slow",
        "trigger": { "type": "self-service", "operation": "CREATE",
            "userInputs": { "properties": { "steps": { "type": "array" } } } },
        "invocationMethod": { "type": "WASM", "plugin": "probe" } }),
        201,
    )
    .await;
    // Every replica reloads actions and automations within a second.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let mut changes = 0;
    let mut entity_changes = |replica: &Replica, from: usize| {
        changes += 10;
        let url = replica.url.clone();
        async move {
            let client = portico_tests::http_client();
            for i in from..from + 5 {
                let entity = json!({ "identifier": format!("svc-{i}"), "properties": {} });
                for method in ["POST", "PUT"] {
                    let path = match method {
                        "POST" => format!("{url}/v1/blueprints/service/entities"),
                        _ => format!("{url}/v1/blueprints/service/entities/svc-{i}"),
                    };
                    let sent = client
                        .request(
                            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                            path,
                        )
                        .bearer_auth(ADMIN_TOKEN)
                        .json(&entity)
                        .send()
                        .await
                        .expect("an entity write");
                    assert!(sent.status().is_success(), "{method}: {}", sent.status());
                }
            }
        }
    };

    // A run executed on the third replica streams its log from the first, and a cancel sent to
    // the first stops its plugin on the third.
    let steps = json!([{ "log": "one" }, { "sleepMs": 300 }, { "log": "two" },
        { "sleepMs": 60000 }, { "log": "never" }]);
    let watched = replicas[2].run("slow", json!({ "steps": steps })).await;
    let stream = portico_tests::http_client()
        .get(format!(
            "{}/v1/actions/runs/{watched}/logs",
            replicas[0].url
        ))
        .bearer_auth(ADMIN_TOKEN)
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("a stream");
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let mut stream = stream;
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !seen.contains("two") {
        assert!(Instant::now() < deadline, "the log never streamed: {seen}");
        let chunk = tokio::time::timeout(Duration::from_secs(20), stream.chunk())
            .await
            .expect("a chunk in time")
            .expect("the stream lasts");
        seen.push_str(&String::from_utf8_lossy(&chunk.expect("not ended")));
    }
    assert!(seen.find("one") < seen.find("two"), "{seen}");
    let cancel = format!("/v1/actions/runs/{watched}/cancel");
    replicas[0].expect("POST", &cancel, Value::Null, 200).await;
    let cancelled = replicas[0]
        .until(&watched, ENDED, Duration::from_secs(20))
        .await;
    assert_eq!(cancelled["status"], "CANCELLED", "{cancelled}");
    // The stream on the first replica ends with the run.
    let rest = tokio::time::timeout(Duration::from_secs(20), stream.text())
        .await
        .expect("the stream ends");
    assert!(rest.expect("text").contains("event: end"));

    // Runs in progress on the third replica when it dies.
    let long = json!([{ "log": "started" }, { "sleepMs": 60000 }]);
    let mut doomed = Vec::new();
    for _ in 0..3 {
        doomed.push(replicas[2].run("slow", json!({ "steps": long })).await);
    }
    for id in &doomed {
        replicas[0]
            .until(id, &["IN_PROGRESS"], Duration::from_secs(20))
            .await;
    }

    // Load on all three, and entity changes on all three, while the third is killed.
    let mut deploys = Vec::new();
    for round in 0..10 {
        for replica in &replicas {
            deploys.push(replica.run("deploy", json!({})).await);
        }
        if round == 4 {
            for (i, replica) in replicas.iter().enumerate() {
                entity_changes(replica, i * 5).await;
            }
        }
    }
    replicas[2].kill();
    for round in 0..10 {
        for replica in &replicas[..2] {
            deploys.push(replica.run("deploy", json!({})).await);
        }
        if round == 4 {
            entity_changes(&replicas[0], 100).await;
            entity_changes(&replicas[1], 200).await;
        }
    }
    let r0 = &replicas[0];

    // Every accepted run ends: a deploy the killed replica had in progress is run again (its
    // action says `retry.onInterrupt`), the slow runs fail as interrupted; a survivor finds
    // them once their lease ran out.
    for id in &deploys {
        let run = r0.until(id, ENDED, Duration::from_secs(60)).await;
        assert_eq!(run["status"], "SUCCESS", "{run}");
    }
    for id in &doomed {
        let run = r0.until(id, ENDED, Duration::from_secs(60)).await;
        assert_eq!(run["status"], "FAILURE", "{run}");
        assert_eq!(run["error"]["kind"], "interrupted", "{run}");
    }

    // Each entity change (a create and an update of each entity) fired the automation once.
    let deadline = Instant::now() + Duration::from_secs(60);
    let fired = loop {
        let runs = r0.runs_of("on-service").await;
        let ended = runs
            .iter()
            .all(|r| ENDED.contains(&r["status"].as_str().unwrap()));
        if runs.len() >= changes && ended {
            break runs;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {changes} automations",
            runs.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // A moment more, for a duplicate to show if there were one.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let fired_again = r0.runs_of("on-service").await;
    assert_eq!(fired_again.len(), changes, "exactly once per change");
    let mut per_change: HashMap<(String, String), usize> = HashMap::new();
    for run in &fired {
        let event = &run["properties"]["event"]["type"];
        let entity = &run["properties"]["entity"]["identifier"];
        *per_change
            .entry((event.to_string(), entity.to_string()))
            .or_default() += 1;
    }
    assert_eq!(per_change.len(), changes, "{per_change:?}");

    // The receiver saw RUN_CREATED and SUCCESS of every deploy, at least once.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut seen: HashSet<(String, String)> = HashSet::new();
        for request in receiver.requests() {
            let body: Value = serde_json::from_str(&request.body).unwrap_or_default();
            let (event, run) = (&body["event"], &body["run"]["id"]);
            seen.insert((
                event.as_str().unwrap_or_default().into(),
                run.as_str().unwrap_or_default().into(),
            ));
        }
        let missing: Vec<(&str, &String)> = deploys
            .iter()
            .flat_map(|id| [("RUN_CREATED", id), ("SUCCESS", id)])
            .filter(|(event, id)| !seen.contains(&((*event).to_owned(), (*id).clone())))
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "notifications never came: {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
