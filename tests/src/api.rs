//! A real Portico HTTP server on 127.0.0.1:0 for each backend under test, and a small client.

use portico_api::auth::bootstrap_admin;
use portico_api::{ApiConfig, AppState};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};

/// The admin token every test server starts with (as long as `PORTICO_ADMIN_TOKEN` must be).
pub const ADMIN_TOKEN: &str = "ptc_test_admin_token_0123456789abcdef";
/// The request body limit of test servers (small, so 413 is cheap to provoke).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Which database a test server uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A fresh SQLite file.
    Sqlite,
    /// A fresh database on `PORTICO_TEST_POSTGRES_URL`.
    Postgres,
}

/// SQLite always; Postgres too when `PORTICO_TEST_POSTGRES_URL` is set.
pub fn backends() -> Vec<Backend> {
    let mut all = vec![Backend::Sqlite];
    if std::env::var("PORTICO_TEST_POSTGRES_URL").is_ok() {
        all.push(Backend::Postgres);
    }
    all
}

/// Where a server keeps its data: a temp folder, and for Postgres a fresh database.
pub struct Database {
    /// `sqlite://...` or `postgres://...`.
    pub url: String,
    /// The data folder.
    pub dir: tempfile::TempDir,
    postgres: Option<(String, String)>,
}

impl Database {
    /// A fresh, empty database of the given kind.
    pub async fn fresh(backend: Backend) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        match backend {
            Backend::Sqlite => Self {
                url: format!("sqlite://{}", dir.path().join("portico.db").display()),
                dir,
                postgres: None,
            },
            Backend::Postgres => {
                static NEXT: AtomicU64 = AtomicU64::new(0);
                let base = std::env::var("PORTICO_TEST_POSTGRES_URL").expect("set");
                let name = format!(
                    "portico_t_{}_{}",
                    std::process::id(),
                    NEXT.fetch_add(1, Ordering::Relaxed)
                );
                admin_sql(&base, &format!("CREATE DATABASE {name}")).await;
                let url = match base.rsplit_once('/') {
                    Some((server, _)) => format!("{server}/{name}"),
                    None => panic!("PORTICO_TEST_POSTGRES_URL must end with /<database>"),
                };
                Self {
                    url,
                    dir,
                    postgres: Some((base, name)),
                }
            }
        }
    }
}

/// Runs `sql` on the Postgres server of `url` (e.g. `PORTICO_TEST_POSTGRES_URL`), panicking
/// on failure.
pub async fn admin_sql(url: &str, sql: &str) {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
    tokio::spawn(conn);
    client
        .batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Some((base, name)) = self.postgres.take() {
            // Drop is synchronous: use a thread with its own runtime.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(rt) = rt {
                    rt.block_on(admin_sql(
                        &base,
                        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                    ));
                }
            })
            .join();
        }
    }
}

/// The runner of test servers: the defaults, except that notifications may go to the
/// loopback receivers tests start ([`crate::server::TestServer`]).
pub fn runner_config() -> portico_runs::runner::RunnerConfig {
    let mut runner = portico_runs::runner::RunnerConfig::default();
    runner.notify.allow_private = true;
    runner
}

/// How a test server differs from [`Portico::start`]'s.
#[derive(Default)]
pub struct Options {
    /// The runner's settings ([`runner_config`] when `None`).
    pub runner: Option<portico_runs::runner::RunnerConfig>,
    /// Who may read `/metrics`.
    pub metrics: portico_api::metrics::MetricsAccess,
    /// Reaches the database (Postgres) through this address, e.g. a
    /// [`crate::partition::Partition`], instead of directly.
    pub database_via: Option<std::net::SocketAddr>,
    /// The first-party plugins and the examples, as `portico serve --examples true`.
    pub examples: bool,
}

/// A running server and a client for it.
pub struct Portico {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// Which backend it runs on.
    pub backend: Backend,
    http: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
    workers: tokio::task::JoinHandle<()>,
    stop_workers: tokio_util::sync::CancellationToken,
    runner: portico_runs::runner::Runner,
    database_url: String,
    /// The database, dropped with the first server on it (a replica shares it).
    _database: Option<Database>,
}

impl Drop for Portico {
    fn drop(&mut self) {
        self.server.abort();
        self.workers.abort();
    }
}

/// An answer: status and JSON body.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The body (`null` when it is not JSON).
    pub body: Value,
}

impl Answer {
    /// Panics unless the status is `status`; returns the body.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Value {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.body
        );
        &self.body
    }

    /// Panics unless this is a 422 whose `details` list `path` with a message containing `text`.
    #[track_caller]
    pub fn expect_violation(&self, path: &str, text: &str) {
        self.expect(422);
        let details = self.body["details"]
            .as_array()
            .expect("a 422 lists details");
        assert!(
            details
                .iter()
                .any(|d| d["path"] == path
                    && d["message"].as_str().unwrap_or_default().contains(text)),
            "{path}: {text:?} not in {details:?}"
        );
    }

    /// Panics unless this is an error with `status` and `code` whose message contains `text`.
    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str, text: &str) -> &Value {
        self.expect(status);
        assert_eq!(self.body["ok"], false, "{}", self.body);
        assert_eq!(self.body["error"], code, "{}", self.body);
        let message = self.body["message"].as_str().unwrap_or_default();
        assert!(message.contains(text), "message {message:?} lacks {text:?}");
        &self.body
    }
}

impl Portico {
    /// Starts a server on a fresh database with the `admin` user (token [`ADMIN_TOKEN`]),
    /// configured by [`runner_config`].
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, runner_config()).await
    }

    /// Like [`Portico::start`], with the runner configured.
    pub async fn start_with(backend: Backend, runner: portico_runs::runner::RunnerConfig) -> Self {
        let options = Options {
            runner: Some(runner),
            ..Options::default()
        };
        Self::start_options(backend, options).await
    }

    /// A server as `portico serve --examples true` starts: the first-party plugins loaded and
    /// the example blueprints, team and actions created.
    pub async fn with_examples(backend: Backend) -> Self {
        let options = Options {
            examples: true,
            ..Options::default()
        };
        Self::start_options(backend, options).await
    }

    /// A server set up as `options` say, on a fresh database.
    pub async fn start_options(backend: Backend, options: Options) -> Self {
        let database = Database::fresh(backend).await;
        Self::start_on(backend, options, database.url.clone(), Some(database)).await
    }

    /// Another replica on this server's database, configured by `runner`: a second
    /// `portico serve` sharing the store (on SQLite, a second process on the same file, which
    /// Portico does not support: use it on Postgres). It must be dropped before this one.
    pub async fn replica(&self, runner: portico_runs::runner::RunnerConfig) -> Self {
        let options = Options {
            runner: Some(runner),
            ..Options::default()
        };
        Self::start_on(self.backend, options, self.database_url.clone(), None).await
    }

    /// A server on the database at `database_url`; `database` when this server owns it (creates
    /// the admin there, and drops it).
    async fn start_on(
        backend: Backend,
        options: Options,
        database_url: String,
        database: Option<Database>,
    ) -> Self {
        let Options {
            runner,
            metrics,
            database_via,
            examples,
        } = options;
        let mut runner = runner.unwrap_or_else(runner_config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        runner.public_url = url.clone();
        let store_url = match database_via {
            Some(via) => crate::partition::with_address(&database_url, via),
            None => database_url.clone(),
        };
        let store = portico_store::open(&store_url).await.expect("store opens");
        // The first server on a database creates the admin; a replica finds it there.
        if let Some(database) = &database {
            bootstrap_admin(
                store.as_ref(),
                database.dir.path(),
                Some(ADMIN_TOKEN.into()),
            )
            .await
            .expect("admin created");
        }
        let state = AppState::with_runner(store, crate::runtime().clone(), runner);
        let stop_workers = tokio_util::sync::CancellationToken::new();
        let workers = state.runner.start(stop_workers.clone());
        let runner = state.runner.clone();
        if examples {
            // The first-party plugins by name, copied: their build folder may also hold what
            // another test builds there (the CLI's scaffolded plugin).
            let plugins = tempfile::tempdir().expect("temp dir");
            for built in [
                crate::artifacts::SCAFFOLD_SERVICE,
                crate::artifacts::CHANGE_REPLICAS,
                crate::artifacts::WEBHOOK,
                crate::artifacts::DEV_ENVIRONMENT,
                crate::artifacts::TEARDOWN,
                crate::artifacts::NOTIFY_PY,
                crate::artifacts::OPEN_PULL_REQUEST,
            ] {
                let built = std::path::Path::new(built);
                let name = built.file_name().expect("a file name");
                std::fs::copy(built, plugins.path().join(name)).expect("the plugin is copied");
            }
            portico_api::startup::load_plugins_dir(&state, plugins.path())
                .await
                .expect("the plugins load");
            portico_api::startup::seed_examples(&state)
                .await
                .expect("the examples are created");
        }
        // The portal too, as `portico serve` mounts it: the browser suite drives it.
        let portal = portico_portal::PortalConfig::for_public_url(&url);
        let app = portico_api::app(
            state.clone(),
            ApiConfig {
                max_body_bytes: MAX_BODY_BYTES,
                metrics,
            },
        )
        .merge(portico_portal::router(state, portal));
        let server = tokio::spawn(async move {
            let _ = portico_api::serve(listener, app, std::future::pending()).await;
        });
        Self {
            url,
            backend,
            http: crate::http_client(),
            server,
            workers,
            stop_workers,
            runner,
            database_url,
            _database: database,
        }
    }

    /// The server's runner (e.g. to see which runs execute in this replica).
    pub fn runner(&self) -> &portico_runs::runner::Runner {
        &self.runner
    }

    /// Stops the server's worker loop (as `portico serve` does on shutdown); HTTP goes on.
    pub async fn stop_workers(&mut self) {
        self.stop_workers.cancel();
        (&mut self.workers).await.expect("the worker loop ends");
    }

    /// The database's name on the Postgres server (`None` on SQLite, or on a replica).
    pub fn postgres_database(&self) -> Option<&str> {
        self._database
            .as_ref()
            .and_then(|d| d.postgres.as_ref())
            .map(|(_, name)| name.as_str())
    }

    /// The URL of the server's database (to open a second store on it).
    pub fn database_url(&self) -> String {
        self.database_url.clone()
    }

    /// One server per backend under test.
    pub async fn each() -> Vec<Self> {
        let mut servers = Vec::new();
        for backend in backends() {
            servers.push(Self::start(backend).await);
        }
        servers
    }

    /// Sends a request with an optional token and raw body.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self.http.request(method, format!("{}{path}", self.url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        let response = request.send().await.expect("server answers");
        let status = response.status().as_u16();
        let bytes = response.bytes().await.expect("body");
        Answer {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    /// Uploads the plugin at `path` as `name` (201 new, 200 already there, or 202 while it
    /// compiles in the background on a busy machine: then waits until it is ready).
    pub async fn upload(&self, name: &str, path: &str) {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let answer = self
            .send(
                "PUT",
                &format!("/v1/plugins/{name}"),
                Some(ADMIN_TOKEN),
                Some(bytes),
            )
            .await;
        assert!([200, 201, 202].contains(&answer.status), "{}", answer.body);
        if answer.status != 202 {
            return;
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            let described = self
                .admin("GET", &format!("/v1/plugins/{name}"), Value::Null)
                .await;
            match described.expect(200)["plugin"]["status"].as_str() {
                Some("ready") => return,
                Some("compiling") => {}
                other => panic!(
                    "plugin {name} did not compile: {other:?} {}",
                    described.body
                ),
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{name} never compiled"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Creates a run of `action` as the admin, answering its id.
    pub async fn run(&self, action: &str, body: Value) -> String {
        let answer = self
            .admin("POST", &format!("/v1/actions/{action}/runs"), body)
            .await;
        answer.expect(202)["run"]["id"]
            .as_str()
            .expect("a run id")
            .to_owned()
    }

    /// Polls a run until its status is one of `statuses` (or 30 s pass), answering it.
    pub async fn until(&self, id: &str, statuses: &[&str]) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let answer = self
                .admin("GET", &format!("/v1/actions/runs/{id}"), Value::Null)
                .await;
            let run = answer.expect(200)["run"].clone();
            if statuses.contains(&run["status"].as_str().unwrap_or_default()) {
                return run;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "run {id} never reached {statuses:?}: {run}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Polls a run until it ends, answering it.
    pub async fn finished(&self, id: &str) -> Value {
        self.until(id, &["SUCCESS", "FAILURE", "CANCELLED", "DECLINED"])
            .await
    }

    /// Sends JSON as the admin.
    pub async fn admin(&self, method: &str, path: &str, body: Value) -> Answer {
        self.as_user(ADMIN_TOKEN, method, path, body).await
    }

    /// Sends JSON with a token (`Value::Null` for no body).
    pub async fn as_user(&self, token: &str, method: &str, path: &str, body: Value) -> Answer {
        let body = (!body.is_null()).then(|| body.to_string().into_bytes());
        self.send(method, path, Some(token), body).await
    }

    /// Creates team(s) and a member in them; returns the member's token.
    pub async fn member(&self, identifier: &str, teams: &[&str]) -> String {
        for team in teams {
            let created = self
                .admin("POST", "/v1/teams", json!({ "name": team }))
                .await;
            assert!(
                created.status == 201 || created.status == 409,
                "{}",
                created.body
            );
        }
        let user = self
            .admin(
                "POST",
                "/v1/users",
                json!({ "identifier": identifier, "role": "member", "teams": teams }),
            )
            .await;
        user.expect(201)["token"]
            .as_str()
            .expect("token")
            .to_owned()
    }
}

/// What signing in through the portal's `/login` form gave (see [`portal_sign_in`]).
pub struct PortalSignIn {
    /// The session cookie as the server set it, attributes and all.
    pub set_cookie: String,
    /// `portico_session=...`, to send back.
    pub cookie: String,
    /// Where the server sent the browser next.
    pub location: String,
}

/// The `Set-Cookie` named `name` in an answer, attributes and all.
pub fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

/// Signs in at `url`'s `/login` with `token` as a browser does (the form's nonce cookie, then
/// the post), asking to go to `next`; `Err` holds the status of a refusal. `http` must not
/// follow redirects.
pub async fn portal_sign_in(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    next: &str,
) -> Result<PortalSignIn, u16> {
    let form = http
        .get(format!("{url}/login"))
        .send()
        .await
        .expect("login page");
    let nonce = set_cookie(&form, "portico_login").expect("the form sets its nonce cookie");
    let nonce = nonce
        .split(';')
        .next()
        .unwrap_or_default()
        .trim_start_matches("portico_login=")
        .to_owned();
    let answer = http
        .post(format!("{url}/login"))
        .header(reqwest::header::COOKIE, format!("portico_login={nonce}"))
        .form(&[("token", token), ("next", next), ("nonce", &nonce)])
        .send()
        .await
        .expect("login post");
    if answer.status() != 303 {
        return Err(answer.status().as_u16());
    }
    let set_cookie = set_cookie(&answer, "portico_session").expect("a session cookie");
    Ok(PortalSignIn {
        cookie: set_cookie.split(';').next().unwrap_or_default().to_owned(),
        set_cookie,
        location: answer.headers()["location"]
            .to_str()
            .unwrap_or_default()
            .to_owned(),
    })
}
