//! The store's behaviour, scenario by scenario, on every backend: SQLite (in a temporary
//! directory) always, and Postgres too when `PORTICO_TEST_POSTGRES_URL` names a server, e.g.
//! `postgres://postgres@127.0.0.1:5432/postgres`. Both backends must pass the very same
//! assertions, so they give the same answers.
//!
//! Each Postgres scenario gets a database of its own, created through the URL's database and
//! dropped afterwards, so the tests run in parallel. The databases are created with a linguistic
//! default collation (ICU `en-US`, as managed Postgres services usually have) when the server
//! supports it, so that anything sorting differently from SQLite's byte order shows up.

use chrono::{DateTime, TimeZone, Utc};
use portico_store::{
    ActionRecord, ActionVersion, ApiToken, Approval, AuditFilter, AuditRecord, AuditStatus,
    Blueprint, Change, Direction, Entity, EntityRef, Field, NewEvent, Op, Order, PluginVersion,
    Query, Relation, Role, Rule, RunFilter, RunInsert, RunLimit, RunLimits, RunLogLine, RunRecord,
    RunStatus, SortKey, Store, StoreError, Team, User, Write,
};
use serde_json::{Value, json};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

// ---------------------------------------------------------------------------------------------
// Running a scenario on each backend
// ---------------------------------------------------------------------------------------------

/// The environment variable naming the Postgres server to test against.
const POSTGRES_URL: &str = "PORTICO_TEST_POSTGRES_URL";

/// An empty database for one scenario, and what removing it takes.
enum Database {
    Sqlite {
        url: String,
        _dir: tempfile::TempDir,
    },
    Postgres {
        url: String,
        server_url: String,
        name: String,
    },
}

impl Database {
    fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("portico.db").display());
        Self::Sqlite { url, _dir: dir }
    }

    /// Creates `portico_t_<unique>` on the server `server_url` points at.
    async fn postgres(server_url: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos();
        let name = format!(
            "portico_t_{}_{nanos}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let admin = admin(server_url).await;
        let linguistic = format!(
            "CREATE DATABASE {name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'"
        );
        if admin.batch_execute(&linguistic).await.is_err() {
            admin
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .await
                .expect("CREATE DATABASE");
        }
        Self::Postgres {
            url: with_database(server_url, &name),
            server_url: server_url.to_owned(),
            name,
        }
    }

    fn url(&self) -> &str {
        match self {
            Self::Sqlite { url, .. } | Self::Postgres { url, .. } => url,
        }
    }

    async fn remove(self) {
        if let Self::Postgres {
            server_url, name, ..
        } = self
        {
            let admin = admin(&server_url).await;
            if let Err(e) = admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await
            {
                eprintln!("could not drop test database {name}: {e}");
            }
        }
    }
}

/// A plain connection to the server's own database, to create and drop test databases.
async fn admin(server_url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(server_url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("{POSTGRES_URL}={server_url}: {e}"));
    tokio::spawn(connection);
    client
}

/// `url` with its database name replaced by `name` (keeping any `?options`).
fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a postgres:// URL");
    let (location, options) = match rest.split_once('?') {
        Some((location, options)) => (location, format!("?{options}")),
        None => (rest, String::new()),
    };
    let server = location.split('/').next().unwrap_or(location);
    format!("{scheme}://{server}/{name}{options}")
}

/// Runs `scenario` with the URL of an empty database of each backend, then removes the
/// database, even when the scenario fails.
async fn on_each_database<F, Fut>(scenario: F)
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut databases = vec![Database::sqlite()];
    if let Ok(server_url) = std::env::var(POSTGRES_URL) {
        databases.push(Database::postgres(&server_url).await);
    }
    for database in databases {
        let url = database.url().to_owned();
        let outcome = tokio::spawn(scenario(url.clone())).await;
        database.remove().await;
        if let Err(e) = outcome {
            eprintln!("the scenario failed on {url}");
            std::panic::resume_unwind(e.into_panic());
        }
    }
}

/// Runs `scenario` on a freshly opened, empty store of each backend.
async fn on_each_backend<F, Fut>(scenario: F)
where
    F: Fn(Arc<dyn Store>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let scenario = Arc::new(scenario);
    on_each_database(move |url| {
        let scenario = scenario.clone();
        async move { scenario(open(&url).await).await }
    })
    .await;
}

async fn open(url: &str) -> Arc<dyn Store> {
    portico_store::open(url)
        .await
        .unwrap_or_else(|e| panic!("opening {url}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Building blocks
// ---------------------------------------------------------------------------------------------

/// A point in time, in milliseconds since the epoch.
fn t(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).unwrap()
}

fn audit(actor: &str, operation: &str, resource_type: &str, resource_id: &str) -> AuditRecord {
    AuditRecord {
        id: 0,
        at: t(1_700_000_000_000),
        actor: actor.into(),
        operation: operation.into(),
        resource_type: resource_type.into(),
        resource_id: resource_id.into(),
        blueprint: None,
        run_id: None,
        before: None,
        after: None,
        status: AuditStatus::Success,
        reason: None,
        origin: "api".into(),
    }
}

fn blueprint(identifier: &str, relations: Value) -> Blueprint {
    Blueprint {
        identifier: identifier.into(),
        title: Some(identifier.to_uppercase()),
        icon: None,
        description: None,
        schema: json!({"properties": {}, "required": []}),
        relations,
        created_at: t(1_000),
        created_by: "alice".into(),
        updated_at: t(1_000),
        updated_by: "alice".into(),
    }
}

fn entity(blueprint: &str, identifier: &str, properties: Value) -> Entity {
    Entity {
        identifier: identifier.into(),
        blueprint: blueprint.into(),
        title: None,
        icon: None,
        team: Vec::new(),
        properties,
        relations: json!({}),
        created_at: t(1_000),
        created_by: "alice".into(),
        updated_at: t(1_000),
        updated_by: "alice".into(),
    }
}

fn entity_ref(blueprint: &str, identifier: &str) -> EntityRef {
    EntityRef {
        blueprint: blueprint.into(),
        identifier: identifier.into(),
    }
}

fn relation(name: &str, blueprint: &str, identifier: &str) -> Relation {
    Relation {
        name: name.into(),
        target: entity_ref(blueprint, identifier),
    }
}

fn user(identifier: &str, role: Role) -> User {
    User {
        identifier: identifier.into(),
        email: Some(format!("{identifier}@example.com")),
        role,
        teams: vec!["platform".into()],
        disabled: false,
        created_at: t(1_000),
    }
}

/// A token of `user` created at `created` (ms), with no value prefix.
fn token(id: &str, user: &str, created: i64) -> ApiToken {
    ApiToken {
        id: id.into(),
        user: user.into(),
        name: None,
        prefix: None,
        created_at: t(created),
        rotated_at: None,
        last_used_at: None,
    }
}

/// Creates `u` with one token (`tok_<identifier>`) whose hash is `hash`.
async fn create_user(store: &dyn Store, u: &User, hash: &str) {
    store
        .create_user(
            u.clone(),
            token(&format!("tok_{}", u.identifier), &u.identifier, 1_000),
            hash.into(),
            audit("setup", "CREATE", "user", &u.identifier),
        )
        .await
        .unwrap_or_else(|e| panic!("creating {}: {e}", u.identifier));
}

/// Who a token hash authenticates, by identifier.
async fn who(store: &dyn Store, hash: &str) -> Option<String> {
    store
        .authenticate(hash)
        .await
        .unwrap()
        .map(|c| c.user.identifier)
}

async fn create_blueprint(store: &dyn Store, bp: Blueprint) {
    let id = bp.identifier.clone();
    store
        .put_blueprint(
            bp,
            Write::Create,
            audit("alice", "CREATE", "blueprint", &id),
        )
        .await
        .unwrap();
}

/// Creates an entity with the relation edges its `relations` name (targets of the relation
/// `database` are databases; every other relation points at services).
async fn create_entity(store: &dyn Store, e: Entity) {
    let edges = e.relation_targets(&|name| {
        Some(
            if name == "database" {
                "database"
            } else {
                "service"
            }
            .to_owned(),
        )
    });
    let id = format!("{}/{}", e.blueprint, e.identifier);
    store
        .put_entity(
            e,
            edges,
            Write::Create,
            audit("alice", "CREATE", "entity", &id),
        )
        .await
        .unwrap();
}

/// The audit log, newest first, as `operation resource_type resource_id` lines.
async fn audit_lines(store: &dyn Store, filter: AuditFilter) -> Vec<String> {
    store
        .audit_log(&AuditFilter {
            limit: 100,
            ..filter
        })
        .await
        .unwrap()
        .iter()
        .map(|a| format!("{} {} {}", a.operation, a.resource_type, a.resource_id))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Search building blocks
// ---------------------------------------------------------------------------------------------

fn prop(name: &str, op: Op, value: Value) -> Rule {
    Rule::Compare {
        field: Field::Property(name.into()),
        op,
        value,
    }
}

fn meta(field: Field, op: Op, value: Value) -> Rule {
    Rule::Compare { field, op, value }
}

fn all(rules: Vec<Rule>) -> Rule {
    Rule::Group {
        combinator: portico_store::Combinator::And,
        rules,
    }
}

fn any(rules: Vec<Rule>) -> Rule {
    Rule::Group {
        combinator: portico_store::Combinator::Or,
        rules,
    }
}

fn related(blueprint: &str, identifier: &str, direction: Direction) -> Rule {
    Rule::RelatedTo {
        blueprint: blueprint.into(),
        identifier: identifier.into(),
        direction,
    }
}

/// The identifiers of the entities matching `rule`, in the order search returns them.
async fn find(store: &dyn Store, rule: Rule) -> Vec<String> {
    let query = Query {
        rule,
        blueprints: None,
        order: Order::default(),
    };
    search(store, &query, 1_000, None).await
}

async fn search(
    store: &dyn Store,
    query: &Query,
    limit: usize,
    after: Option<EntityRef>,
) -> Vec<String> {
    store
        .search(query, limit, after)
        .await
        .unwrap_or_else(|e| panic!("{} search {query:?}: {e}", store.backend()))
        .into_iter()
        .map(|e| e.identifier)
        .collect()
}

/// The catalog the search scenarios look at. In search order (blueprint, then identifier, as
/// bytes: upper case sorts before lower case):
///
/// | entity               | team                | notable properties                             |
/// |----------------------|---------------------|------------------------------------------------|
/// | database/orders-db   | payments            | engine postgres, size_gb 120                   |
/// | database/users-db    | platform            | engine mysql, size_gb 40                       |
/// | service/Legacy-app   | platform            | language Java, replicas 1.5, no description    |
/// | service/api          | platform            | rust, replicas 3, public, owner alice          |
/// | service/billing      | payments            | go, replicas 2, description "", owner null     |
/// | service/search       | platform, data      | rust, replicas 5, tags [], settings {}         |
/// | service/worker       | (none), no title    | python, replicas 1, owner bob, no public       |
///
/// Relations: api depends on billing and search, worker on billing; billing uses orders-db.
async fn seed_catalog(store: &dyn Store) {
    create_blueprint(store, blueprint("database", json!({}))).await;
    create_blueprint(
        store,
        blueprint(
            "service",
            json!({
                "dependsOn": {"target": "service", "many": true},
                "database": {"target": "database", "many": false}
            }),
        ),
    )
    .await;
    let catalog = [
        (
            "database",
            "orders-db",
            Some("Orders DB"),
            vec!["payments"],
            json!({"engine": "postgres", "size_gb": 120}),
            json!({}),
            (100, 100),
        ),
        (
            "database",
            "users-db",
            Some("Users DB"),
            vec!["platform"],
            json!({"engine": "mysql", "size_gb": 40}),
            json!({}),
            (200, 200),
        ),
        (
            "service",
            "Legacy-app",
            Some("legacy monolith"),
            vec!["platform"],
            json!({
                "language": "Java", "replicas": 1.5, "public": false,
                "tags": ["legacy"], "launched": "2019-06-30"
            }),
            json!({}),
            (500, 500),
        ),
        (
            "service",
            "api",
            Some("API gateway"),
            vec!["platform"],
            json!({
                "language": "rust", "replicas": 3, "public": true, "tags": ["edge", "http"],
                "launched": "2023-04-01T09:00:00Z", "description": "Routes requests to services",
                "owner": "alice"
            }),
            json!({"dependsOn": ["billing", "search"]}),
            (1_000, 5_000),
        ),
        (
            "service",
            "billing",
            Some("Billing"),
            vec!["payments"],
            json!({
                "language": "go", "replicas": 2, "public": false, "tags": ["pci"],
                "launched": "2022-11-15T00:00:00Z", "description": "", "owner": null
            }),
            json!({"database": "orders-db"}),
            (2_000, 2_000),
        ),
        (
            "service",
            "search",
            Some("Search"),
            vec!["platform", "data"],
            json!({
                "language": "rust", "replicas": 5, "public": true, "tags": [],
                "launched": "2024-01-20T12:30:00Z", "description": "Full-text search",
                "settings": {}
            }),
            json!({}),
            (3_000, 4_000),
        ),
        (
            "service",
            "worker",
            None,
            vec![],
            json!({
                "language": "python", "replicas": 1, "tags": ["batch", "edge"],
                "description": "Runs jobs nightly", "owner": "bob"
            }),
            json!({"dependsOn": "billing"}),
            (4_000, 6_000),
        ),
    ];
    for (bp, id, title, team, properties, relations, (created, updated)) in catalog {
        create_entity(
            store,
            Entity {
                title: title.map(str::to_owned),
                team: team.into_iter().map(str::to_owned).collect(),
                relations,
                created_at: t(created),
                updated_at: t(updated),
                ..entity(bp, id, properties)
            },
        )
        .await;
    }
}

/// Every entity of the catalog, in search order.
const EVERYTHING: [&str; 7] = [
    "orders-db",
    "users-db",
    "Legacy-app",
    "api",
    "billing",
    "search",
    "worker",
];

/// [`EVERYTHING`] but `except`.
fn everything_but(except: &[&str]) -> Vec<String> {
    EVERYTHING
        .iter()
        .filter(|id| !except.contains(id))
        .map(|id| id.to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Opening
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_new_store_answers_pings_and_is_empty() {
    on_each_backend(|store| async move {
        store.ping().await.unwrap();
        assert!(["sqlite", "postgres"].contains(&store.backend()));
        assert!(store.list_blueprints().await.unwrap().is_empty());
        assert!(store.list_users().await.unwrap().is_empty());
        assert!(store.list_teams().await.unwrap().is_empty());
        assert_eq!(store.count_users().await.unwrap(), 0);
    })
    .await;
}

#[tokio::test]
async fn reopening_keeps_the_data_and_does_not_migrate_again() {
    on_each_database(|url| async move {
        let store = open(&url).await;
        create_blueprint(&*store, blueprint("service", json!({}))).await;
        drop(store);

        let store = open(&url).await;
        let names: Vec<String> = store
            .list_blueprints()
            .await
            .unwrap()
            .into_iter()
            .map(|b| b.identifier)
            .collect();
        assert_eq!(names, ["service"]);
    })
    .await;
}

/// Closing a store closes its writer's connection on the writer thread while its readers close
/// on the caller's, and a server's database is opened again by tools and tests while it runs.
/// SQLite 3.51.1 could deadlock there (a lock-order inversion in its unix VFS when a WAL
/// connection closes, fixed in 3.51.3): such a store must never hang.
#[test]
fn sqlite_stores_opened_and_closed_together_never_hang() {
    let database = Database::sqlite();
    let url = database.url().to_owned();
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            // Created and migrated first: the server does that before anything else opens it.
            drop(open(&url).await);
            for round in 0..500 {
                let stores = (0..3).map(|i| {
                    let url = url.clone();
                    tokio::spawn(async move {
                        let store = open(&url).await;
                        let name = format!("team-{round}-{i}");
                        let team = Team {
                            name: name.clone(),
                            description: None,
                            created_at: t(1_000),
                        };
                        store
                            .create_team(team, audit("alice", "CREATE", "team", &name))
                            .await
                            .unwrap();
                        store.list_teams().await.unwrap();
                    })
                });
                for store in stores.collect::<Vec<_>>() {
                    store.await.unwrap();
                }
            }
        });
        let _ = done.send(());
    });
    finished
        .recv_timeout(std::time::Duration::from_secs(120))
        .expect("1,500 stores opened, written, read and closed within 2 minutes (no deadlock)");
}

/// Stores opened at once on a new SQLite file (a server and a tool started together) all open
/// it: one creates and migrates it, the others wait and find it migrated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_stores_opened_together_on_a_new_file_all_open() {
    for _ in 0..50 {
        let database = Database::sqlite();
        let opens = (0..4).map(|_| {
            let url = database.url().to_owned();
            tokio::spawn(async move { portico_store::open(&url).await.map(|_| ()) })
        });
        for opened in opens.collect::<Vec<_>>() {
            opened.await.unwrap().expect("every store opens");
        }
        let store = open(database.url()).await;
        assert!(store.list_blueprints().await.unwrap().is_empty());
    }
}

/// Replicas that start together must not apply the migrations twice (Postgres only: SQLite
/// is one process's file).
#[tokio::test]
async fn postgres_replicas_starting_together_migrate_once() {
    on_each_database(|url| async move {
        if !url.starts_with("postgres") {
            return;
        }
        let opens = (0..4).map(|_| {
            let url = url.clone();
            tokio::spawn(async move { portico_store::open(&url).await.map(|_| ()) })
        });
        for opened in opens.collect::<Vec<_>>() {
            opened.await.unwrap().expect("every replica opens");
        }
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        let versions: Vec<i64> = client
            .query(
                "SELECT version FROM schema_migrations ORDER BY version",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let expected: Vec<i64> = (1..=versions.len() as i64).collect();
        assert!(!versions.is_empty(), "the migrations ran");
        assert_eq!(versions, expected, "each migration is recorded once");
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Blueprints
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn blueprints_are_created_once_then_replaced() {
    on_each_backend(|store| async move {
        let service = blueprint("service", json!({"database": {"target": "database"}}));
        create_blueprint(&*store, service.clone()).await;
        assert_eq!(
            store.get_blueprint("service").await.unwrap(),
            Some(service.clone())
        );
        assert_eq!(store.get_blueprint("nope").await.unwrap(), None);

        // Creating it again is a conflict that names it.
        let again = store
            .put_blueprint(
                service.clone(),
                Write::Create,
                audit("bob", "CREATE", "blueprint", "service"),
            )
            .await;
        match again {
            Err(StoreError::Conflict(what)) => assert_eq!(what, "blueprint `service`"),
            other => panic!("expected a conflict, got {other:?}"),
        }

        // Replacing it stores the new version.
        let replaced = Blueprint {
            title: Some("Services".into()),
            schema: json!({"properties": {"language": {"type": "string"}}, "required": []}),
            updated_by: "bob".into(),
            updated_at: t(2_000),
            ..service
        };
        store
            .put_blueprint(
                replaced.clone(),
                Write::Replace,
                audit("bob", "UPDATE", "blueprint", "service"),
            )
            .await
            .unwrap();
        // Replacing one that does not exist creates it.
        store
            .put_blueprint(
                blueprint("database", json!({})),
                Write::Replace,
                audit("bob", "CREATE", "blueprint", "database"),
            )
            .await
            .unwrap();
        assert_eq!(
            store.list_blueprints().await.unwrap(),
            [blueprint("database", json!({})), replaced]
        );
    })
    .await;
}

#[tokio::test]
async fn a_blueprint_with_entities_is_deleted_only_with_them() {
    on_each_backend(|store| async move {
        create_blueprint(&*store, blueprint("service", json!({}))).await;
        create_blueprint(&*store, blueprint("database", json!({}))).await;
        create_entity(&*store, entity("database", "db", json!({}))).await;
        for id in ["a", "b"] {
            create_entity(
                &*store,
                Entity {
                    relations: json!({"database": "db"}),
                    ..entity("service", id, json!({}))
                },
            )
            .await;
        }
        let delete = |with_entities| {
            let store = store.clone();
            async move {
                store
                    .delete_blueprint(
                        "service",
                        with_entities,
                        audit("alice", "DELETE", "blueprint", "service"),
                    )
                    .await
            }
        };

        match delete(false).await {
            Err(StoreError::InUse(message)) => assert_eq!(
                message,
                "blueprint `service` has 2 entities; delete them first or pass \
                 ?delete_entities=true"
            ),
            other => panic!("expected InUse, got {other:?}"),
        }
        assert_eq!(store.count_entities("service").await.unwrap(), 2);

        assert!(delete(true).await.unwrap());
        assert_eq!(store.get_blueprint("service").await.unwrap(), None);
        assert_eq!(store.count_entities("service").await.unwrap(), 0);
        assert!(
            store
                .dependents(&entity_ref("database", "db"))
                .await
                .unwrap()
                .is_empty(),
            "the entities' relation edges go too"
        );

        // Deleting what is not there says so and records nothing.
        assert!(!delete(true).await.unwrap());
        let deletes = audit_lines(
            &*store,
            AuditFilter {
                resource_type: Some("blueprint".into()),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(
            deletes,
            [
                "DELETE blueprint service",
                "CREATE blueprint database",
                "CREATE blueprint service"
            ]
        );

        // An empty blueprint is deleted without the flag.
        create_blueprint(&*store, blueprint("empty", json!({}))).await;
        assert!(
            store
                .delete_blueprint(
                    "empty",
                    false,
                    audit("alice", "DELETE", "blueprint", "empty")
                )
                .await
                .unwrap()
        );
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Entities
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn entities_are_created_once_replaced_and_read_back_whole() {
    on_each_backend(|store| async move {
        create_blueprint(&*store, blueprint("service", json!({}))).await;
        let api = Entity {
            title: Some("API — gateway ✓".into()),
            icon: Some("rust".into()),
            team: vec!["platform".into(), "edge".into()],
            created_at: t(1_700_000_000_123),
            updated_at: t(1_700_000_000_456),
            ..entity(
                "service",
                "api",
                json!({
                    "language": "rust", "replicas": 3, "ratio": 0.25, "big": 9_007_199_254_740_993_i64,
                    "negative": -7, "public": true, "owner": null, "tags": ["a", "b"],
                    "nested": {"z": 1, "a": [1, {"b": "c"}]}, "empty": "", "quote": "it's \"x\""
                }),
            )
        };
        create_entity(&*store, api.clone()).await;
        assert_eq!(
            store.get_entity("service", "api").await.unwrap(),
            Some(api.clone())
        );
        assert_eq!(store.get_entity("service", "nope").await.unwrap(), None);
        assert_eq!(store.get_entity("database", "api").await.unwrap(), None);

        let again = store
            .put_entity(
                api.clone(),
                Vec::new(),
                Write::Create,
                audit("bob", "CREATE", "entity", "service/api"),
            )
            .await;
        match again {
            Err(StoreError::Conflict(what)) => {
                assert_eq!(what, "entity `api` of blueprint `service`")
            }
            other => panic!("expected a conflict, got {other:?}"),
        }

        let replaced = Entity {
            title: None,
            icon: None,
            team: Vec::new(),
            properties: json!({"language": "go"}),
            updated_by: "bob".into(),
            updated_at: t(1_800_000_000_000),
            ..api
        };
        store
            .put_entity(
                replaced.clone(),
                Vec::new(),
                Write::Replace,
                audit("bob", "UPDATE", "entity", "service/api"),
            )
            .await
            .unwrap();
        assert_eq!(
            store.get_entity("service", "api").await.unwrap(),
            Some(replaced)
        );
        assert_eq!(store.count_entities("service").await.unwrap(), 1);

        // The same identifier in another blueprint is another entity.
        create_blueprint(&*store, blueprint("database", json!({}))).await;
        create_entity(&*store, entity("database", "api", json!({}))).await;
        assert_eq!(store.count_entities("database").await.unwrap(), 1);
    })
    .await;
}

#[tokio::test]
async fn relation_edges_follow_the_entity_and_dependents_lists_their_sources() {
    on_each_backend(|store| async move {
        create_blueprint(&*store, blueprint("service", json!({}))).await;
        create_blueprint(&*store, blueprint("database", json!({}))).await;
        create_entity(&*store, entity("database", "db", json!({}))).await;
        create_entity(&*store, entity("service", "billing", json!({}))).await;
        for id in ["worker", "api"] {
            store
                .put_entity(
                    entity("service", id, json!({})),
                    vec![
                        relation("dependsOn", "service", "billing"),
                        relation("database", "database", "db"),
                        // The same edge twice is stored once.
                        relation("database", "database", "db"),
                    ],
                    Write::Create,
                    audit("alice", "CREATE", "entity", id),
                )
                .await
                .unwrap();
        }
        let billing = entity_ref("service", "billing");
        assert_eq!(
            store.dependents(&billing).await.unwrap(),
            [
                entity_ref("service", "api"),
                entity_ref("service", "worker")
            ]
        );
        assert_eq!(
            store
                .dependents(&entity_ref("database", "db"))
                .await
                .unwrap(),
            [
                entity_ref("service", "api"),
                entity_ref("service", "worker")
            ]
        );

        // Replacing an entity replaces its edges.
        store
            .put_entity(
                entity("service", "api", json!({})),
                vec![relation("database", "database", "db")],
                Write::Replace,
                audit("alice", "UPDATE", "entity", "service/api"),
            )
            .await
            .unwrap();
        assert_eq!(
            store.dependents(&billing).await.unwrap(),
            [entity_ref("service", "worker")]
        );
        assert!(
            store
                .dependents(&entity_ref("service", "api"))
                .await
                .unwrap()
                .is_empty()
        );
    })
    .await;
}

#[tokio::test]
async fn deleting_entities_removes_them_and_their_edges_with_one_audit_record_each() {
    on_each_backend(|store| async move {
        seed_catalog(&*store).await;
        let gone = vec![
            entity_ref("service", "api"),
            entity_ref("service", "worker"),
        ];
        let records = gone
            .iter()
            .map(|e| {
                audit(
                    "alice",
                    "DELETE",
                    "entity",
                    &format!("{}/{}", e.blueprint, e.identifier),
                )
            })
            .collect();
        store.delete_entities(gone, records).await.unwrap();

        assert_eq!(store.get_entity("service", "api").await.unwrap(), None);
        assert_eq!(store.get_entity("service", "worker").await.unwrap(), None);
        assert_eq!(store.count_entities("service").await.unwrap(), 3);
        assert!(
            store
                .dependents(&entity_ref("service", "billing"))
                .await
                .unwrap()
                .is_empty(),
            "their outgoing edges are gone"
        );
        assert_eq!(
            find(
                &*store,
                related("service", "billing", Direction::Downstream)
            )
            .await,
            Vec::<String>::new()
        );
        let deletes = audit_lines(
            &*store,
            AuditFilter {
                resource_type: Some("entity".into()),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(
            deletes[..2],
            ["DELETE entity service/worker", "DELETE entity service/api"]
        );
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Users and teams
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn users_are_unique_and_found_by_their_token_hash() {
    on_each_backend(|store| async move {
        let alice = user("alice", Role::Admin);
        let bob = User {
            email: None,
            teams: Vec::new(),
            ..user("bob", Role::Member)
        };
        create_user(&*store, &bob, "hash-b").await;
        create_user(&*store, &alice, "hash-a").await;
        assert_eq!(store.count_users().await.unwrap(), 2);
        assert_eq!(
            store.list_users().await.unwrap(),
            [alice.clone(), bob.clone()]
        );
        assert_eq!(store.get_user("bob").await.unwrap(), Some(bob.clone()));
        assert_eq!(store.get_user("carol").await.unwrap(), None);
        let credential = store.authenticate("hash-a").await.unwrap().unwrap();
        assert_eq!(credential.user, alice);
        assert_eq!(credential.token_id, "tok_alice");
        assert_eq!(credential.last_used_at, None);
        assert_eq!(store.authenticate("hash-x").await.unwrap(), None);

        // The identifier is taken; so is a token hash, reported the same way.
        for (identifier, hash) in [("alice", "hash-new"), ("carol", "hash-b")] {
            match store
                .create_user(
                    user(identifier, Role::Member),
                    token(&format!("tok_new_{identifier}"), identifier, 1_000),
                    hash.into(),
                    audit("setup", "CREATE", "user", identifier),
                )
                .await
            {
                Err(StoreError::Conflict(what)) => {
                    assert_eq!(what, format!("user `{identifier}`"))
                }
                other => panic!("expected a conflict, got {other:?}"),
            }
        }
        assert_eq!(store.count_users().await.unwrap(), 2);
        assert_eq!(who(&*store, "hash-new").await, None, "nothing half-created");
    })
    .await;
}

#[tokio::test]
async fn a_user_holds_several_tokens_each_rotated_and_revoked_on_its_own() {
    on_each_backend(|store| async move {
        create_user(&*store, &user("alice", Role::Member), "hash-a1").await;
        create_user(&*store, &user("bob", Role::Member), "hash-b1").await;
        let ci = ApiToken {
            name: Some("ci".into()),
            prefix: Some("ptc_ci12".into()),
            ..token("tok_ci", "alice", 2_000)
        };
        store
            .create_token(
                ci.clone(),
                "hash-a2".into(),
                audit("alice", "CREATE", "token", "alice/tok_ci"),
            )
            .await
            .unwrap();
        assert_eq!(
            store.list_tokens("alice").await.unwrap(),
            [token("tok_alice", "alice", 1_000), ci.clone()],
            "oldest first, without their values"
        );
        assert_eq!(who(&*store, "hash-a1").await.as_deref(), Some("alice"));
        assert_eq!(who(&*store, "hash-a2").await.as_deref(), Some("alice"));

        // A taken id or value is a conflict naming the token.
        for (id, hash) in [("tok_ci", "hash-other"), ("tok_other", "hash-b1")] {
            match store
                .create_token(
                    token(id, "alice", 3_000),
                    hash.into(),
                    audit("alice", "CREATE", "token", id),
                )
                .await
            {
                Err(StoreError::Conflict(what)) => assert_eq!(what, format!("token `{id}`")),
                other => panic!("expected a conflict, got {other:?}"),
            }
        }

        // Use is recorded by hash.
        store.touch_token("hash-a2", t(5_000)).await.unwrap();
        store.touch_token("hash-gone", t(5_000)).await.unwrap();
        let used = store.authenticate("hash-a2").await.unwrap().unwrap();
        assert_eq!(
            (used.token_id.as_str(), used.last_used_at),
            ("tok_ci", Some(t(5_000)))
        );

        // Rotating gives the token a new value: the old one stops working with the commit.
        let rotated = store
            .rotate_token(
                "alice",
                "tok_ci",
                "hash-a3".into(),
                "ptc_new1".into(),
                t(6_000),
                audit("alice", "ROTATE", "token", "alice/tok_ci"),
            )
            .await
            .unwrap()
            .expect("alice has tok_ci");
        assert_eq!(
            rotated,
            ApiToken {
                prefix: Some("ptc_new1".into()),
                rotated_at: Some(t(6_000)),
                last_used_at: None,
                ..ci.clone()
            }
        );
        assert_eq!(who(&*store, "hash-a2").await, None);
        assert_eq!(who(&*store, "hash-a3").await.as_deref(), Some("alice"));
        // A touch by the old value, racing the rotation, changes nothing.
        store.touch_token("hash-a2", t(7_000)).await.unwrap();
        assert_eq!(store.list_tokens("alice").await.unwrap()[1], rotated);

        // Another user's token id, or an unknown one, is not found: nothing changes.
        for (owner, id) in [("bob", "tok_ci"), ("alice", "tok_nope")] {
            let none = store
                .rotate_token(
                    owner,
                    id,
                    "hash-x".into(),
                    "ptc_x".into(),
                    t(8_000),
                    audit(owner, "ROTATE", "token", id),
                )
                .await
                .unwrap();
            assert_eq!(none, None);
            assert!(
                !store
                    .delete_token(owner, id, audit(owner, "DELETE", "token", id))
                    .await
                    .unwrap()
            );
        }
        assert_eq!(who(&*store, "hash-a3").await.as_deref(), Some("alice"));

        // Revoking deletes it; the user's other token still works.
        assert!(
            store
                .delete_token(
                    "alice",
                    "tok_ci",
                    audit("alice", "DELETE", "token", "alice/tok_ci")
                )
                .await
                .unwrap()
        );
        assert!(
            !store
                .delete_token(
                    "alice",
                    "tok_ci",
                    audit("alice", "DELETE", "token", "alice/tok_ci")
                )
                .await
                .unwrap()
        );
        assert_eq!(who(&*store, "hash-a3").await, None);
        assert_eq!(who(&*store, "hash-a1").await.as_deref(), Some("alice"));
        assert_eq!(
            store.list_tokens("alice").await.unwrap(),
            [token("tok_alice", "alice", 1_000)]
        );

        // One audit record per change; none for what changed nothing.
        let tokens = audit_lines(
            &*store,
            AuditFilter {
                resource_type: Some("token".into()),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(
            tokens,
            [
                "DELETE token alice/tok_ci",
                "ROTATE token alice/tok_ci",
                "CREATE token alice/tok_ci"
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn a_disabled_or_deleted_user_authenticates_no_more_and_the_last_admin_stays() {
    on_each_backend(|store| async move {
        let root = user("root", Role::Admin);
        let alice = user("alice", Role::Admin);
        let bob = user("bob", Role::Member);
        for (u, hash) in [(&root, "hash-r"), (&alice, "hash-a"), (&bob, "hash-b")] {
            create_user(&*store, u, hash).await;
        }
        let change = |u: &User| audit("root", "UPDATE", "user", &u.identifier);

        // Disabling keeps the user and its tokens, which stop working until it is enabled.
        let disabled = User {
            disabled: true,
            teams: vec!["data".into()],
            ..bob.clone()
        };
        assert!(
            store
                .update_user(disabled.clone(), change(&bob))
                .await
                .unwrap()
        );
        assert_eq!(store.get_user("bob").await.unwrap(), Some(disabled.clone()));
        assert_eq!(who(&*store, "hash-b").await, None);
        assert_eq!(store.list_tokens("bob").await.unwrap().len(), 1);
        assert!(store.update_user(bob.clone(), change(&bob)).await.unwrap());
        assert_eq!(who(&*store, "hash-b").await.as_deref(), Some("bob"));
        assert!(
            !store
                .update_user(user("carol", Role::Member), change(&bob))
                .await
                .unwrap()
        );

        // An admin may be demoted while another enabled admin remains.
        let demoted = User {
            role: Role::Member,
            ..alice.clone()
        };
        assert!(
            store
                .update_user(demoted.clone(), change(&alice))
                .await
                .unwrap()
        );
        // Then root is the last: it cannot be demoted, disabled or deleted.
        let last = crate_last_admin("root");
        for refused in [
            store
                .update_user(
                    User {
                        role: Role::Member,
                        ..root.clone()
                    },
                    change(&root),
                )
                .await,
            store
                .update_user(
                    User {
                        disabled: true,
                        ..root.clone()
                    },
                    change(&root),
                )
                .await,
            store
                .delete_user("root", audit("root", "DELETE", "user", "root"))
                .await,
        ] {
            match refused {
                Err(StoreError::InUse(message)) => assert_eq!(message, last),
                other => panic!("expected the last admin to stay, got {other:?}"),
            }
        }
        assert_eq!(store.get_user("root").await.unwrap(), Some(root.clone()));
        // A disabled admin does not count as one.
        assert!(
            store
                .update_user(
                    User {
                        disabled: true,
                        ..alice.clone()
                    },
                    change(&alice)
                )
                .await
                .unwrap()
        );
        assert!(matches!(
            store
                .update_user(
                    User {
                        role: Role::Member,
                        ..root.clone()
                    },
                    change(&root)
                )
                .await,
            Err(StoreError::InUse(_))
        ));
        // With alice enabled again, root may go.
        assert!(
            store
                .update_user(alice.clone(), change(&alice))
                .await
                .unwrap()
        );
        assert!(
            store
                .update_user(
                    User {
                        disabled: true,
                        ..root.clone()
                    },
                    change(&root)
                )
                .await
                .unwrap()
        );
        assert_eq!(who(&*store, "hash-r").await, None);

        // Deleting a user deletes its tokens.
        let extra = token("tok_bob2", "bob", 2_000);
        store
            .create_token(
                extra,
                "hash-b2".into(),
                audit("bob", "CREATE", "token", "bob/tok_bob2"),
            )
            .await
            .unwrap();
        assert!(
            store
                .delete_user("bob", audit("root", "DELETE", "user", "bob"))
                .await
                .unwrap()
        );
        assert!(
            !store
                .delete_user("bob", audit("root", "DELETE", "user", "bob"))
                .await
                .unwrap()
        );
        assert_eq!(store.get_user("bob").await.unwrap(), None);
        assert_eq!(store.list_tokens("bob").await.unwrap(), []);
        assert_eq!(who(&*store, "hash-b").await, None);
        assert_eq!(who(&*store, "hash-b2").await, None);
        // A new user of the same name does not inherit them.
        create_user(&*store, &bob, "hash-b3").await;
        assert_eq!(store.list_tokens("bob").await.unwrap().len(), 1);

        let users = audit_lines(
            &*store,
            AuditFilter {
                resource_type: Some("user".into()),
                actor: Some("root".into()),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(
            users,
            [
                "DELETE user bob",
                "UPDATE user root",
                "UPDATE user alice",
                "UPDATE user alice",
                "UPDATE user alice",
                "UPDATE user bob",
                "UPDATE user bob",
            ],
            "one record per change, none for a refusal or a user not found"
        );
    })
    .await;
}

/// The message both backends give for the last enabled admin.
fn crate_last_admin(identifier: &str) -> String {
    format!(
        "user `{identifier}` is the last enabled admin; make another user an admin first, so \
         that someone can still manage users"
    )
}

#[tokio::test]
async fn tokens_made_before_migration_6_keep_working() {
    on_each_database(|url| async move {
        // The schema as migrations 1 to 5 left it, with a user and its token's hash.
        let v5 = [
            include_str!("../migrations/sqlite/0001_catalog.sql"),
            include_str!("../migrations/sqlite/0002_plugins.sql"),
            include_str!("../migrations/sqlite/0003_actions.sql"),
            include_str!("../migrations/sqlite/0004_runs.sql"),
            include_str!("../migrations/sqlite/0005_approvals.sql"),
        ];
        let insert = "INSERT INTO users (identifier, email, role, teams, token_hash, created_at) \
                      VALUES ('admin', NULL, 'admin', '[]', 'hash-old', 1000)";
        if let Some(path) = url.strip_prefix("sqlite://") {
            let conn = rusqlite::Connection::open(path).unwrap();
            for sql in v5 {
                conn.execute_batch(sql).unwrap();
            }
            conn.execute_batch(&format!("{insert}; PRAGMA user_version = 5;"))
                .unwrap();
        } else {
            let v5 = [
                include_str!("../migrations/postgres/0001_catalog.sql"),
                include_str!("../migrations/postgres/0002_plugins.sql"),
                include_str!("../migrations/postgres/0003_actions.sql"),
                include_str!("../migrations/postgres/0004_runs.sql"),
                include_str!("../migrations/postgres/0005_approvals.sql"),
            ];
            let client = admin(&url).await;
            for sql in v5 {
                client.batch_execute(sql).await.unwrap();
            }
            client
                .batch_execute(&format!(
                    "{insert}; CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY); \
                     INSERT INTO schema_migrations VALUES (1), (2), (3), (4), (5);"
                ))
                .await
                .unwrap();
        }
        let store = open(&url).await;
        let credential = store
            .authenticate("hash-old")
            .await
            .unwrap()
            .expect("the old token works");
        assert_eq!(credential.user.identifier, "admin");
        assert!(!credential.user.disabled);
        let tokens = store.list_tokens("admin").await.unwrap();
        assert_eq!(tokens.len(), 1);
        assert_eq!(tokens[0].id, credential.token_id);
        assert!(
            tokens[0].id.starts_with("tok_") && tokens[0].id.len() == 20,
            "{}",
            tokens[0].id
        );
        assert_eq!(
            (tokens[0].prefix.as_deref(), tokens[0].created_at),
            (None, t(1_000))
        );
    })
    .await;
}

#[tokio::test]
async fn teams_are_unique_and_listed_by_name() {
    on_each_backend(|store| async move {
        let platform = Team {
            name: "platform".into(),
            description: Some("Runs the platform".into()),
            created_at: t(1_000),
        };
        let data = Team {
            name: "data".into(),
            description: None,
            created_at: t(2_000),
        };
        for team in [&platform, &data] {
            store
                .create_team(team.clone(), audit("alice", "CREATE", "team", &team.name))
                .await
                .unwrap();
        }
        assert_eq!(store.list_teams().await.unwrap(), [data, platform.clone()]);
        match store
            .create_team(platform, audit("alice", "CREATE", "team", "platform"))
            .await
        {
            Err(StoreError::Conflict(what)) => assert_eq!(what, "team `platform`"),
            other => panic!("expected a conflict, got {other:?}"),
        }
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Audit log
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn every_mutation_stores_its_audit_record_and_a_refused_one_stores_none() {
    on_each_backend(|store| async move {
        let record = AuditRecord {
            at: t(1_700_000_000_789),
            blueprint: Some("service".into()),
            run_id: Some("run-1".into()),
            before: None,
            after: Some(json!({"identifier": "api", "properties": {"replicas": 3}})),
            origin: "run".into(),
            ..audit("run:run-1", "CREATE", "entity", "service/api")
        };
        create_blueprint(&*store, blueprint("service", json!({}))).await;
        store
            .put_entity(
                entity("service", "api", json!({})),
                Vec::new(),
                Write::Create,
                record.clone(),
            )
            .await
            .unwrap();

        let log = store
            .audit_log(&AuditFilter {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(log.len(), 2);
        assert!(log[0].id > log[1].id, "newest first");
        assert_eq!(
            AuditRecord {
                id: 0,
                ..log[0].clone()
            },
            record
        );

        // A write that fails leaves no record; `record` stores refusals on their own.
        let conflict = store
            .put_entity(
                entity("service", "api", json!({})),
                Vec::new(),
                Write::Create,
                audit("bob", "CREATE", "entity", "service/api"),
            )
            .await;
        assert!(matches!(conflict, Err(StoreError::Conflict(_))));
        let refusal = AuditRecord {
            status: AuditStatus::Failure,
            reason: Some("entity `api` of blueprint `service` already exists".into()),
            before: Some(json!(null)),
            ..audit("bob", "CREATE", "entity", "service/api")
        };
        store.record(refusal.clone()).await.unwrap();
        let log = store
            .audit_log(&AuditFilter {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(log.len(), 3);
        assert_eq!(
            AuditRecord {
                id: 0,
                ..log[0].clone()
            },
            refusal
        );
    })
    .await;
}

#[tokio::test]
async fn the_audit_log_is_filtered_by_every_field_and_paged_backwards() {
    on_each_backend(|store| async move {
        // id 1..=6, one per line, each a millisecond later than the one before.
        let entries = [
            ("alice", "blueprint", "service", None),
            ("alice", "user", "bob", None),
            ("bob", "entity", "service/api", Some("run-1")),
            ("bob", "team", "data", None),
            ("carol", "entity", "service/api", Some("run-2")),
            ("alice", "entity", "service/web", Some("run-1")),
        ];
        for (i, (actor, kind, id, run)) in entries.into_iter().enumerate() {
            store
                .record(AuditRecord {
                    at: t(10_000 + i as i64),
                    run_id: run.map(str::to_owned),
                    ..audit(actor, "UPDATE", kind, id)
                })
                .await
                .unwrap();
        }
        let lines = |filter: AuditFilter| {
            let store = store.clone();
            async move {
                store
                    .audit_log(&filter)
                    .await
                    .unwrap()
                    .iter()
                    .map(|a| format!("{} {}", a.actor, a.resource_id))
                    .collect::<Vec<_>>()
            }
        };
        let all = || AuditFilter {
            limit: 100,
            ..Default::default()
        };

        assert_eq!(
            lines(all()).await,
            [
                "alice service/web",
                "carol service/api",
                "bob data",
                "bob service/api",
                "alice bob",
                "alice service"
            ]
        );
        assert_eq!(
            lines(AuditFilter {
                resource_type: Some("entity".into()),
                resource_id: Some("service/api".into()),
                ..all()
            })
            .await,
            ["carol service/api", "bob service/api"]
        );
        assert_eq!(
            lines(AuditFilter {
                actor: Some("bob".into()),
                ..all()
            })
            .await,
            ["bob data", "bob service/api"]
        );
        assert_eq!(
            lines(AuditFilter {
                run_id: Some("run-1".into()),
                ..all()
            })
            .await,
            ["alice service/web", "bob service/api"]
        );
        // `from` is inclusive, `to` exclusive.
        assert_eq!(
            lines(AuditFilter {
                from: Some(t(10_002)),
                to: Some(t(10_004)),
                ..all()
            })
            .await,
            ["bob data", "bob service/api"]
        );
        // A member sees catalog changes and their own entries.
        assert_eq!(
            lines(AuditFilter {
                visible_to: Some("bob".into()),
                ..all()
            })
            .await,
            [
                "alice service/web",
                "carol service/api",
                "bob data",
                "bob service/api",
                "alice service"
            ]
        );
        // Paging backwards: the newest two, then the two before them.
        let newest = store
            .audit_log(&AuditFilter { limit: 2, ..all() })
            .await
            .unwrap();
        assert_eq!(newest.len(), 2);
        assert_eq!(
            lines(AuditFilter {
                before_id: Some(newest[1].id),
                limit: 2,
                ..all()
            })
            .await,
            ["bob data", "bob service/api"]
        );
        assert!(lines(AuditFilter { limit: 0, ..all() }).await.is_empty());
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Search: properties
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn search_equals_and_not_equals() {
    on_each_backend(|store| async move {
        let s = &*store;
        seed_catalog(s).await;
        assert_eq!(
            find(s, prop("language", Op::Eq, json!("rust"))).await,
            ["api", "search"]
        );
        // Case matters.
        assert!(
            find(s, prop("language", Op::Eq, json!("Rust")))
                .await
                .is_empty()
        );
        // Numbers compare as numbers: 3 and 3.0 are equal.
        assert_eq!(
            find(s, prop("replicas", Op::Eq, json!(2))).await,
            ["billing"]
        );
        assert_eq!(find(s, prop("replicas", Op::Eq, json!(3.0))).await, ["api"]);
        assert_eq!(
            find(s, prop("replicas", Op::Eq, json!(1.5))).await,
            ["Legacy-app"]
        );
        // A value of another JSON type never matches: "2" is not 2.
        assert!(
            find(s, prop("replicas", Op::Eq, json!("2")))
                .await
                .is_empty()
        );
        // `!=` matches entities that do not have the property at all.
        assert_eq!(
            find(s, prop("language", Op::Ne, json!("rust"))).await,
            ["orders-db", "users-db", "Legacy-app", "billing", "worker"]
        );
        assert_eq!(
            find(s, prop("owner", Op::Ne, json!("alice"))).await,
            everything_but(&["api"])
        );
    })
    .await;
}

#[tokio::test]
async fn search_orders_numbers() {
    on_each_backend(|store| async move {
        let s = &*store;
        seed_catalog(s).await;
        assert_eq!(
            find(s, prop("replicas", Op::Gt, json!(2))).await,
            ["api", "search"]
        );
        assert_eq!(
            find(s, prop("replicas", Op::Ge, json!(2))).await,
            ["api", "billing", "search"]
        );
        assert_eq!(
            find(s, prop("replicas", Op::Lt, json!(2))).await,
            ["Legacy-app", "worker"]
        );
        assert_eq!(
            find(s, prop("replicas", Op::Le, json!(1.5))).await,
            ["Legacy-app", "worker"]
        );
        assert_eq!(
            find(s, prop("size_gb", Op::Gt, json!(50))).await,
            ["orders-db"]
        );
        // Only numbers are ordered against a number.
        assert!(
            find(s, prop("replicas", Op::Gt, json!("2")))
                .await
                .is_empty()
        );
        assert!(find(s, prop("language", Op::Gt, json!(0))).await.is_empty());
    })
    .await;
}

#[tokio::test]
async fn search_orders_iso_dates_and_strings_as_text() {
    on_each_backend(|store| async move {
        let s = &*store;
        seed_catalog(s).await;
        assert_eq!(
            find(s, prop("launched", Op::Gt, json!("2023-01-01T00:00:00Z"))).await,
            ["api", "search"]
        );
        assert_eq!(
            find(s, prop("launched", Op::Ge, json!("2023-04-01T09:00:00Z"))).await,
            ["api", "search"]
        );
        assert_eq!(
            find(s, prop("launched", Op::Gt, json!("2023-04-01T09:00:00Z"))).await,
            ["search"]
        );
        assert_eq!(
            find(s, prop("launched", Op::Lt, json!("2023-01-01"))).await,
            ["Legacy-app", "billing"]
        );
        assert_eq!(
            find(s, prop("launched", Op::Le, json!("2022-11-15T00:00:00Z"))).await,
            ["Legacy-app", "billing"]
        );
        // Strings compare as bytes, so upper case sorts before lower case.
        assert_eq!(
            find(s, prop("language", Op::Lt, json!("a"))).await,
            ["Legacy-app"]
        );
        assert_eq!(
            find(s, prop("language", Op::Ge, json!("p"))).await,
            ["api", "search", "worker"]
        );
    })
    .await;
}

#[tokio::test]
async fn search_between_is_inclusive() {
    on_each_backend(|store| async move {
        let s = &*store;
        seed_catalog(s).await;
        assert_eq!(
            find(s, prop("replicas", Op::Between, json!([1.5, 3]))).await,
            ["Legacy-app", "api", "billing"]
        );
        assert_eq!(
            find(
                s,
                prop("launched", Op::Between, json!(["2022-01-01", "2023-12-31"]))
            )
            .await,
            ["api", "billing"]
        );
        assert_eq!(
            find(
                s,
                prop(
                    "launched",
                    Op::Between,
                    json!(["2023-04-01T09:00:00Z", "2024-01-20T12:30:00Z"])
                )
            )
            .await,
            ["api", "search"]
        );
    })
    .await;
}

#[tokio::test]
async fn search_contains_on_strings_and_arrays() {
    on_each_backend(|store| async move {
        let s = &*store;
        seed_catalog(s).await;
        // A substring of a string, case-sensitively.
        assert_eq!(
            find(s, prop("description", Op::Contains, json!("search"))).await,
            ["search"]
        );
        assert_eq!(
            find(s, prop("language", Op::Contains, json!("us"))).await,
            ["api", "search"]
        );
        assert!(
            find(s, prop("description", Op::Contains, json!("full")))
                .await
                .is_empty()
        );
        // An element of an array.
        assert_eq!(
            find(s, prop("tags", Op::Contains, json!("edge"))).await,
            ["api", "worker"]
        );
        assert_eq!(
            find(s, prop("tags", Op::Contains, json!("pci"))).await,
            ["billing"]
        );
        // Only whole elements: "edg" is in no array.
        assert!(
            find(s, prop("tags", Op::Contains, json!("edg")))
                .await
                .is_empty()
        );
        // Numbers contain nothing.
        assert!(
            find(s, prop("replicas", Op::Contains, json!(3)))
                .await
                .is_empty()
        );
    })
    .await;
}

#[tokio::test]
async fn search_contains_matches_whole_array_elements_not_parts_of_them() {
    on_each_backend(|store| async move {
        let s = &*store;
        create_blueprint(s, blueprint("service", json!({}))).await;
        create_entity(
            s,
            entity(
                "service",
                "a",
                json!({"maintainers": [{"name": "ana", "role": "lead"}], "matrix": [[1, 2]]}),
            ),
        )
        .await;
        create_entity(
            s,
            entity(
                "service",
                "b",
                json!({"maintainers": ["ana"], "matrix": [1, 2]}),
            ),
        )
        .await;
        let contains = |name: &str, value: Value| prop(name, Op::Contains, value);
        assert_eq!(
            find(
                s,
                contains("maintainers", json!({"name": "ana", "role": "lead"}))
            )
            .await,
            ["a"]
        );
        assert!(
            find(s, contains("maintainers", json!({"name": "ana"})))
                .await
                .is_empty()
        );
        assert_eq!(find(s, contains("maintainers", json!("ana"))).await, ["b"]);
        assert_eq!(find(s, contains("matrix", json!([1, 2]))).await, ["a"]);
        assert!(find(s, contains("matrix", json!([1]))).await.is_empty());
        assert_eq!(find(s, contains("matrix", json!(1))).await, ["b"]);
    })
    .await;
}

#[tokio::test]
async fn search_begins_with_and_ends_with() {
    on_each_backend(|store| async move {
        let s = &*store;
        seed_catalog(s).await;
        assert_eq!(
            find(s, prop("language", Op::BeginsWith, json!("py"))).await,
            ["worker"]
        );
        assert_eq!(
            find(s, prop("description", Op::BeginsWith, json!("Routes"))).await,
            ["api"]
        );
        assert_eq!(
            find(s, prop("description", Op::EndsWith, json!("nightly"))).await,
            ["worker"]
        );
        // The empty string begins and ends every string, and only strings.
        assert_eq!(
            find(s, prop("description", Op::EndsWith, json!(""))).await,
            ["api", "billing", "search", "worker"]
        );
        assert_eq!(
            find(s, prop("description", Op::BeginsWith, json!(""))).await,
            ["api", "billing", "search", "worker"]
        );
        assert!(
            find(s, prop("tags", Op::BeginsWith, json!("edge")))
                .await
                .is_empty()
        );
        assert!(
            find(s, prop("replicas", Op::EndsWith, json!("5")))
                .await
                .is_empty()
        );
    })
    .await;
}

#[tokio::test]
async fn search_in_and_not_in() {
    on_each_backend(|store| async move {
        let s = &*store;
        seed_catalog(s).await;
        assert_eq!(
            find(s, prop("language", Op::In, json!(["go", "python"]))).await,
            ["billing", "worker"]
        );
        assert_eq!(
            find(s, prop("replicas", Op::In, json!([1, 5]))).await,
            ["search", "worker"]
        );
        assert!(
            find(s, prop("language", Op::In, json!([])))
                .await
                .is_empty()
        );
        // `notIn` matches entities without the property.
        assert_eq!(
            find(s, prop("language", Op::NotIn, json!(["rust", "go"]))).await,
            ["orders-db", "users-db", "Legacy-app", "worker"]
        );
        assert_eq!(
            find(s, prop("language", Op::NotIn, json!([]))).await,
            EVERYTHING
        );
    })
    .await;
}

#[tokio::test]
async fn search_is_empty_and_is_not_empty() {
    on_each_backend(|store| async move {
        let s = &*store;
        seed_catalog(s).await;
        // Empty: missing, null, "", [] or {}.
        assert_eq!(
            find(s, prop("description", Op::IsEmpty, json!(null))).await,
            ["orders-db", "users-db", "Legacy-app", "billing"]
        );
        assert_eq!(
            find(s, prop("tags", Op::IsEmpty, json!(null))).await,
            ["orders-db", "users-db", "search"]
        );
        assert_eq!(
            find(s, prop("settings", Op::IsEmpty, json!(null))).await,
            EVERYTHING
        );
        assert_eq!(
            find(s, prop("owner", Op::IsEmpty, json!(null))).await,
            ["orders-db", "users-db", "Legacy-app", "billing", "search"]
        );
        assert_eq!(
            find(s, prop("owner", Op::IsNotEmpty, json!(null))).await,
            ["api", "worker"]
        );
        assert_eq!(
            find(s, prop("tags", Op::IsNotEmpty, json!(null))).await,
            ["Legacy-app", "api", "billing", "worker"]
        );
        // Zero and false are values.
        assert_eq!(
            find(s, prop("public", Op::IsNotEmpty, json!(null))).await,
            ["Legacy-app", "api", "billing", "search"]
        );
    })
    .await;
}

#[tokio::test]
async fn search_booleans_and_null() {
    on_each_backend(|store| async move {
        let s = &*store;
        seed_catalog(s).await;
        assert_eq!(
            find(s, prop("public", Op::Eq, json!(true))).await,
            ["api", "search"]
        );
        assert_eq!(
            find(s, prop("public", Op::Eq, json!(false))).await,
            ["Legacy-app", "billing"]
        );
        assert_eq!(
            find(s, prop("public", Op::Ne, json!(true))).await,
            ["orders-db", "users-db", "Legacy-app", "billing", "worker"]
        );
        // A boolean is not its text, nor a number.
        assert!(
            find(s, prop("public", Op::Eq, json!("true")))
                .await
                .is_empty()
        );
        assert!(find(s, prop("public", Op::Eq, json!(1))).await.is_empty());
        // `= null` matches null and missing; `!= null` the rest.
        assert_eq!(
            find(s, prop("owner", Op::Eq, json!(null))).await,
            ["orders-db", "users-db", "Legacy-app", "billing", "search"]
        );
        assert_eq!(
            find(s, prop("owner", Op::Ne, json!(null))).await,
            ["api", "worker"]
        );
        // Ordering against null matches nothing.
        for op in [Op::Gt, Op::Ge, Op::Lt, Op::Le] {
            assert!(
                find(s, prop("owner", op, json!(null))).await.is_empty(),
                "{op:?}"
            );
        }
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Search: meta fields
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn search_identifier_title_and_blueprint() {
    on_each_backend(|store| async move {
        let s = &*store;
        seed_catalog(s).await;
        assert_eq!(
            find(s, meta(Field::Identifier, Op::Eq, json!("api"))).await,
            ["api"]
        );
        assert_eq!(
            find(s, meta(Field::Identifier, Op::Contains, json!("-"))).await,
            ["orders-db", "users-db", "Legacy-app"]
        );
        assert_eq!(
            find(s, meta(Field::Identifier, Op::EndsWith, json!("-db"))).await,
            ["orders-db", "users-db"]
        );
        assert_eq!(
            find(
                s,
                meta(Field::Identifier, Op::In, json!(["api", "worker", "nope"]))
            )
            .await,
            ["api", "worker"]
        );
        // As bytes: "Legacy-app" < "a".
        assert_eq!(
            find(s, meta(Field::Identifier, Op::Lt, json!("a"))).await,
            ["Legacy-app"]
        );

        assert_eq!(
            find(s, meta(Field::Title, Op::Eq, json!("Billing"))).await,
            ["billing"]
        );
        assert_eq!(
            find(s, meta(Field::Title, Op::BeginsWith, json!("Bill"))).await,
            ["billing"]
        );
        assert_eq!(
            find(s, meta(Field::Title, Op::EndsWith, json!("DB"))).await,
            ["orders-db", "users-db"]
        );
        // `!=` matches the entity without a title.
        assert_eq!(
            find(s, meta(Field::Title, Op::Ne, json!("Billing"))).await,
            everything_but(&["billing"])
        );
        assert_eq!(
            find(s, meta(Field::Title, Op::IsEmpty, json!(null))).await,
            ["worker"]
        );
        assert_eq!(
            find(s, meta(Field::Title, Op::Lt, json!("a"))).await,
            ["orders-db", "users-db", "api", "billing", "search"]
        );
        assert_eq!(
            find(s, meta(Field::Title, Op::Ge, json!("a"))).await,
            ["Legacy-app"]
        );

        assert_eq!(
            find(s, meta(Field::Blueprint, Op::Eq, json!("database"))).await,
            ["orders-db", "users-db"]
        );
        assert_eq!(
            find(s, meta(Field::Blueprint, Op::NotIn, json!(["service"]))).await,
            ["orders-db", "users-db"]
        );
    })
    .await;
}

#[tokio::test]
async fn search_team() {
    on_each_backend(|store| async move {
        let s = &*store;
        seed_catalog(s).await;
        assert_eq!(
            find(s, meta(Field::Team, Op::Contains, json!("platform"))).await,
            ["users-db", "Legacy-app", "api", "search"]
        );
        assert_eq!(
            find(s, meta(Field::Team, Op::Eq, json!("data"))).await,
            ["search"]
        );
        assert_eq!(
            find(s, meta(Field::Team, Op::In, json!(["payments", "data"]))).await,
            ["orders-db", "billing", "search"]
        );
        assert_eq!(
            find(s, meta(Field::Team, Op::NotIn, json!(["platform"]))).await,
            ["orders-db", "billing", "worker"]
        );
        assert_eq!(
            find(s, meta(Field::Team, Op::Ne, json!("platform"))).await,
            ["orders-db", "billing", "worker"]
        );
        assert_eq!(
            find(s, meta(Field::Team, Op::IsEmpty, json!(null))).await,
            ["worker"]
        );
        assert_eq!(
            find(s, meta(Field::Team, Op::IsNotEmpty, json!(null))).await,
            everything_but(&["worker"])
        );
        // Whole team names only.
        assert!(
            find(s, meta(Field::Team, Op::Contains, json!("plat")))
                .await
                .is_empty()
        );
    })
    .await;
}

#[tokio::test]
async fn search_created_at_and_updated_at_in_milliseconds() {
    on_each_backend(|store| async move {
        let s = &*store;
        seed_catalog(s).await;
        assert_eq!(
            find(s, meta(Field::CreatedAt, Op::Gt, json!(1_000))).await,
            ["billing", "search", "worker"]
        );
        assert_eq!(
            find(s, meta(Field::CreatedAt, Op::Ge, json!(1_000))).await,
            ["api", "billing", "search", "worker"]
        );
        assert_eq!(
            find(s, meta(Field::CreatedAt, Op::Between, json!([500, 2_000]))).await,
            ["Legacy-app", "api", "billing"]
        );
        assert_eq!(
            find(s, meta(Field::CreatedAt, Op::In, json!([100, 3_000]))).await,
            ["orders-db", "search"]
        );
        assert_eq!(
            find(s, meta(Field::UpdatedAt, Op::Lt, json!(2_500))).await,
            ["orders-db", "users-db", "Legacy-app", "billing"]
        );
        assert_eq!(
            find(s, meta(Field::UpdatedAt, Op::Le, json!(200))).await,
            ["orders-db", "users-db"]
        );
        assert_eq!(
            find(s, meta(Field::UpdatedAt, Op::Eq, json!(6_000))).await,
            ["worker"]
        );
        assert_eq!(
            find(s, meta(Field::UpdatedAt, Op::Ne, json!(6_000))).await,
            everything_but(&["worker"])
        );
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Search: groups, relations, scope and paging
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn search_nested_and_or_groups() {
    on_each_backend(|store| async move {
        let s = &*store;
        seed_catalog(s).await;
        // Platform services in Java or with at least 5 replicas.
        let rule = all(vec![
            meta(Field::Team, Op::Contains, json!("platform")),
            any(vec![
                prop("language", Op::Eq, json!("Java")),
                prop("replicas", Op::Ge, json!(5)),
            ]),
        ]);
        assert_eq!(find(s, rule).await, ["Legacy-app", "search"]);

        // Small databases, or private services whose identifier begins with "b".
        let rule = any(vec![
            all(vec![
                meta(Field::Blueprint, Op::Eq, json!("database")),
                prop("size_gb", Op::Lt, json!(100)),
            ]),
            all(vec![
                prop("public", Op::Eq, json!(false)),
                meta(Field::Identifier, Op::BeginsWith, json!("b")),
            ]),
        ]);
        assert_eq!(find(s, rule).await, ["users-db", "billing"]);

        // An empty `and` matches everything, an empty `or` nothing.
        assert_eq!(find(s, all(vec![])).await, EVERYTHING);
        assert!(find(s, any(vec![])).await.is_empty());
    })
    .await;
}

#[tokio::test]
async fn search_related_to_upstream_and_downstream() {
    on_each_backend(|store| async move {
        let s = &*store;
        seed_catalog(s).await;
        // Upstream: what the entity relates to (its dependencies).
        assert_eq!(
            find(s, related("service", "api", Direction::Upstream)).await,
            ["billing", "search"]
        );
        assert_eq!(
            find(s, related("service", "billing", Direction::Upstream)).await,
            ["orders-db"]
        );
        // Downstream: what relates to the entity (its dependents).
        assert_eq!(
            find(s, related("service", "billing", Direction::Downstream)).await,
            ["api", "worker"]
        );
        assert_eq!(
            find(s, related("database", "orders-db", Direction::Downstream)).await,
            ["billing"]
        );
        assert!(
            find(s, related("service", "search", Direction::Upstream))
                .await
                .is_empty()
        );
        // Combined with other rules.
        let rule = all(vec![
            related("service", "billing", Direction::Downstream),
            prop("language", Op::Eq, json!("rust")),
        ]);
        assert_eq!(find(s, rule).await, ["api"]);
        assert_eq!(
            store
                .dependents(&entity_ref("service", "billing"))
                .await
                .unwrap(),
            [
                entity_ref("service", "api"),
                entity_ref("service", "worker")
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn search_restricted_to_some_blueprints() {
    on_each_backend(|store| async move {
        let s = &*store;
        seed_catalog(s).await;
        let within = |blueprints: &[&str], rule: Rule| Query {
            rule,
            blueprints: Some(blueprints.iter().map(|b| b.to_string()).collect()),
            order: Order::default(),
        };
        assert_eq!(
            search(s, &within(&["database"], all(vec![])), 100, None).await,
            ["orders-db", "users-db"]
        );
        assert_eq!(
            search(
                s,
                &within(
                    &["service", "nope"],
                    meta(Field::Team, Op::Contains, json!("platform"))
                ),
                100,
                None
            )
            .await,
            ["Legacy-app", "api", "search"]
        );
        assert!(
            search(s, &within(&[], all(vec![])), 100, None)
                .await
                .is_empty()
        );
    })
    .await;
}

#[tokio::test]
async fn search_sorts_by_title_or_last_update_either_way_and_pages_in_that_order() {
    on_each_backend(|store| async move {
        let s = &*store;
        seed_catalog(s).await;
        let services = Rule::Compare {
            field: Field::Blueprint,
            op: Op::Eq,
            value: json!("service"),
        };
        let all = s
            .search(
                &Query {
                    rule: services.clone(),
                    blueprints: None,
                    order: Order::default(),
                },
                100,
                None,
            )
            .await
            .unwrap();
        assert!(all.len() >= 3, "the seed has services to sort");
        for key in [SortKey::Identifier, SortKey::Title, SortKey::UpdatedAt] {
            for descending in [false, true] {
                let order = Order { key, descending };
                let mut expected = all.clone();
                expected.sort_by(|a, b| {
                    let by = match key {
                        SortKey::Identifier => std::cmp::Ordering::Equal,
                        SortKey::Title => a
                            .title
                            .clone()
                            .unwrap_or_default()
                            .cmp(&b.title.clone().unwrap_or_default()),
                        SortKey::UpdatedAt => a.updated_at.cmp(&b.updated_at),
                    };
                    by.then_with(|| a.identifier.cmp(&b.identifier))
                });
                if descending {
                    expected.reverse();
                }
                let expected: Vec<String> = expected.into_iter().map(|e| e.identifier).collect();
                // Two at a time, each page after the last entity of the one before.
                let query = Query {
                    rule: services.clone(),
                    blueprints: None,
                    order,
                };
                let mut got = Vec::new();
                let mut after = None;
                loop {
                    let page = s.search(&query, 2, after.clone()).await.unwrap();
                    if page.is_empty() {
                        break;
                    }
                    after = page.last().map(|e| entity_ref("service", &e.identifier));
                    got.extend(page.into_iter().map(|e| e.identifier));
                }
                assert_eq!(got, expected, "{} {order:?}", s.backend());
            }
        }
    })
    .await;
}

#[tokio::test]
async fn search_pages_with_limit_and_after() {
    on_each_backend(|store| async move {
        let s = &*store;
        seed_catalog(s).await;
        let everything = Query {
            rule: all(vec![]),
            blueprints: None,
            order: Order::default(),
        };
        assert_eq!(
            search(s, &everything, 3, None).await,
            ["orders-db", "users-db", "Legacy-app"]
        );
        // `after` is the last entity of the previous page; it crosses blueprints.
        assert_eq!(
            search(s, &everything, 3, Some(entity_ref("database", "users-db"))).await,
            ["Legacy-app", "api", "billing"]
        );
        assert_eq!(
            search(s, &everything, 3, Some(entity_ref("service", "search"))).await,
            ["worker"]
        );
        assert!(
            search(s, &everything, 3, Some(entity_ref("service", "worker")))
                .await
                .is_empty()
        );
        assert!(search(s, &everything, 0, None).await.is_empty());

        // Walking a filtered search two at a time finds each match once, in order.
        let platform = Query {
            rule: meta(Field::Team, Op::Contains, json!("platform")),
            blueprints: None,
            order: Order::default(),
        };
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = store.search(&platform, 2, after.clone()).await.unwrap();
            let Some(last) = page.last() else { break };
            after = Some(entity_ref(&last.blueprint, &last.identifier));
            seen.extend(page.into_iter().map(|e| e.identifier));
        }
        assert_eq!(seen, ["users-db", "Legacy-app", "api", "search"]);
    })
    .await;
}

#[tokio::test]
async fn search_returns_whole_entities() {
    on_each_backend(|store| async move {
        let s = &*store;
        seed_catalog(s).await;
        let found = store
            .search(
                &Query {
                    rule: meta(Field::Identifier, Op::Eq, json!("billing")),
                    blueprints: None,
                    order: Order::default(),
                },
                10,
                None,
            )
            .await
            .unwrap();
        assert_eq!(
            found,
            [store
                .get_entity("service", "billing")
                .await
                .unwrap()
                .unwrap()]
        );
        assert_eq!(found[0].team, ["payments"]);
        assert_eq!(found[0].relations, json!({"database": "orders-db"}));
        assert_eq!(found[0].properties["owner"], json!(null));
        assert_eq!(found[0].created_at, t(2_000));
    })
    .await;
}

#[tokio::test]
async fn plugin_versions_are_kept_by_digest_and_deleted_together() {
    on_each_backend(|store| async move {
        let version = |digest: &str, at: i64| PluginVersion {
            name: "webhook".into(),
            digest: digest.into(),
            size: 3,
            created_at: t(at),
            created_by: "admin".into(),
        };
        let upload = |v: PluginVersion, bytes: &[u8]| {
            let store = store.clone();
            let bytes = bytes.to_vec();
            async move {
                store
                    .put_plugin(v, bytes, audit("admin", "UPLOAD", "plugin", "webhook"))
                    .await
                    .unwrap()
            }
        };
        assert!(upload(version("sha256:aa", 1_000), b"one").await);
        assert!(
            !upload(version("sha256:aa", 2_000), b"one").await,
            "the same digest is stored once"
        );
        assert!(upload(version("sha256:bb", 3_000), b"two").await);

        let listed = store.list_plugins().await.unwrap();
        let digests: Vec<&str> = listed.iter().map(|v| v.digest.as_str()).collect();
        assert_eq!(digests, ["sha256:bb", "sha256:aa"], "newest first");
        assert_eq!(
            store
                .plugin_bytes("webhook", "sha256:aa")
                .await
                .unwrap()
                .as_deref(),
            Some(&b"one"[..])
        );
        assert_eq!(
            store.plugin_bytes("webhook", "sha256:cc").await.unwrap(),
            None
        );

        let uploads = audit_lines(
            store.as_ref(),
            AuditFilter {
                resource_type: Some("plugin".into()),
                limit: 10,
                ..Default::default()
            },
        )
        .await;
        assert_eq!(
            uploads.len(),
            2,
            "one audit record per stored version: {uploads:?}"
        );

        assert!(
            store
                .delete_plugin("webhook", audit("admin", "DELETE", "plugin", "webhook"))
                .await
                .unwrap()
        );
        assert!(store.list_plugins().await.unwrap().is_empty());
        assert!(
            !store
                .delete_plugin("webhook", audit("admin", "DELETE", "plugin", "webhook"))
                .await
                .unwrap()
        );
    })
    .await;
}

#[tokio::test]
async fn actions_are_stored_whole_and_keep_their_plugin_in_use() {
    on_each_backend(|store| async move {
        let plugin = PluginVersion {
            name: "scaffold".into(),
            digest: "sha256:aa".into(),
            size: 1,
            created_at: t(1_000),
            created_by: "admin".into(),
        };
        store
            .put_plugin(
                plugin,
                b"x".to_vec(),
                audit("admin", "UPLOAD", "plugin", "scaffold"),
            )
            .await
            .unwrap();
        let action = ActionRecord {
            identifier: "create_service".into(),
            plugin: "scaffold".into(),
            data: json!({ "identifier": "create_service", "trigger": { "operation": "CREATE" } }),
            created_at: t(2_000),
            updated_at: t(2_000),
        };
        let put = |a: ActionRecord, write: Write| {
            let store = store.clone();
            async move {
                store
                    .put_action(
                        a,
                        write,
                        audit("admin", "CREATE", "action", "create_service"),
                    )
                    .await
            }
        };
        put(action.clone(), Write::Create).await.unwrap();
        let again = put(action.clone(), Write::Create).await.unwrap_err();
        assert!(
            matches!(&again, StoreError::Conflict(what) if what == "action `create_service`"),
            "{again}"
        );
        let changed = ActionRecord {
            data: json!({ "identifier": "create_service", "title": "Create" }),
            updated_at: t(3_000),
            ..action.clone()
        };
        put(changed.clone(), Write::Replace).await.unwrap();
        assert_eq!(
            store.get_action("create_service").await.unwrap(),
            Some(changed.clone())
        );
        assert_eq!(store.list_actions().await.unwrap(), vec![changed]);

        let in_use = store
            .delete_plugin("scaffold", audit("admin", "DELETE", "plugin", "scaffold"))
            .await
            .unwrap_err();
        assert!(
            matches!(&in_use, StoreError::InUse(m) if m.contains("used by 1 action(s)")),
            "{in_use}"
        );
        assert!(
            store
                .delete_action(
                    "create_service",
                    audit("admin", "DELETE", "action", "create_service")
                )
                .await
                .unwrap()
        );
        assert!(
            !store
                .delete_action(
                    "create_service",
                    audit("admin", "DELETE", "action", "create_service")
                )
                .await
                .unwrap()
        );
        assert!(
            store
                .delete_plugin("scaffold", audit("admin", "DELETE", "plugin", "scaffold"))
                .await
                .unwrap()
        );
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Runs
// ---------------------------------------------------------------------------------------------

/// A PENDING run of `action` asked for by `alice` at `created` (milliseconds).
fn run(id: &str, action: &str, created: i64) -> RunRecord {
    RunRecord {
        blueprint: Some("service".into()),
        properties: json!({ "name": "checkout", "token": "[REDACTED]" }),
        created_at: t(created),
        updated_at: t(created),
        payload: json!({ "inputs": { "name": "checkout", "token": "s3cret" } }).into(),
        ..RunRecord::accepted(id, action, "API", "alice")
    }
}

async fn create_run(store: &dyn Store, r: RunRecord) {
    let id = r.id.clone();
    store
        .create_run(r, audit("alice", "RUN", "run", &id))
        .await
        .unwrap_or_else(|e| panic!("creating run {id}: {e}"));
}

/// Creates `r1`..`rN` of action `deploy`, `r1` the oldest.
async fn create_runs(store: &dyn Store, n: usize) {
    for i in 1..=n {
        create_run(store, run(&format!("r{i:03}"), "deploy", 10_000 + i as i64)).await;
    }
}

fn ids(runs: &[RunRecord]) -> Vec<String> {
    runs.iter().map(|r| r.id.clone()).collect()
}

async fn listed(store: &dyn Store, filter: RunFilter) -> Vec<String> {
    ids(&store.list_runs(&filter).await.unwrap())
}

fn all_runs() -> RunFilter {
    RunFilter {
        limit: 100,
        ..RunFilter::default()
    }
}

#[tokio::test]
async fn runs_are_created_once_with_their_audit_record_and_read_back_whole() {
    on_each_backend(|store| async move {
        let mut whole = run("r_1", "scaffold", 5_000);
        whole.entity = Some("checkout".into());
        whole.status_label = Some("Queued".into());
        whole.link = vec![json!({ "title": "Pipeline", "url": "https://ci/1" })];
        whole.summary = Some("waiting".into());
        whole.progress = Some(json!({ "percent": 0, "label": "queued" }));
        whole.error = Some(json!({ "kind": "none", "message": "" }));
        whole.affected_entities = json!([{ "blueprint": "service", "identifier": "checkout" }]);
        whole.output = Some(json!({ "url": "https://git/checkout" }));
        whole.ended_at = Some(t(6_000));
        whole.attempts = 2;
        create_run(&*store, whole.clone()).await;
        assert_eq!(store.get_run("r_1").await.unwrap(), Some(whole.clone()));
        assert_eq!(store.get_run("r_2").await.unwrap(), None);

        // Optional fields left empty read back empty.
        let bare = run("r_2", "scaffold", 5_001);
        create_run(&*store, bare.clone()).await;
        assert_eq!(store.get_run("r_2").await.unwrap(), Some(bare));

        // The id is the key: a second create is a conflict and stores no audit record.
        let again = store
            .create_run(whole.clone(), audit("bob", "RUN", "run", "r_1"))
            .await
            .unwrap_err();
        assert!(
            matches!(&again, StoreError::Conflict(what) if what == "run `r_1`"),
            "{again}"
        );
        assert_eq!(
            audit_lines(
                &*store,
                AuditFilter {
                    resource_type: Some("run".into()),
                    limit: 10,
                    ..AuditFilter::default()
                }
            )
            .await,
            vec!["RUN run r_2", "RUN run r_1"]
        );

        // The payload (which may hold secrets) is stored but never serialized.
        let shown = serde_json::to_value(&whole).unwrap();
        assert_eq!(shown["statusLabel"], "Queued");
        assert_eq!(shown["affectedEntities"][0]["identifier"], "checkout");
        assert!(shown.get("payload").is_none(), "{shown}");
    })
    .await;
}

#[tokio::test]
async fn a_failing_write_among_concurrent_ones_fails_alone() {
    on_each_backend(|store| async move {
        create_run(&*store, run("r_taken", "deploy", 1_000)).await;
        // Writes sent together (SQLite commits them in one batch): one of them conflicts.
        let writes: Vec<_> = (0..20)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let id = if i == 7 {
                        "r_taken".to_owned()
                    } else {
                        format!("r_{i:02}")
                    };
                    let record = audit("bob", "RUN", "run", &id);
                    store
                        .create_run(run(&id, "deploy", 2_000 + i), record)
                        .await
                })
            })
            .collect();
        let mut results = Vec::new();
        for write in writes {
            results.push(write.await.unwrap());
        }
        for (i, result) in results.iter().enumerate() {
            if i == 7 {
                assert!(matches!(result, Err(StoreError::Conflict(_))), "{result:?}");
            } else {
                assert!(result.is_ok(), "write {i}: {result:?}");
            }
        }
        assert_eq!(
            listed(&*store, all_runs()).await.len(),
            20,
            "19 new and r_taken"
        );
        let by_bob = audit_lines(
            &*store,
            AuditFilter {
                actor: Some("bob".into()),
                limit: 100,
                ..AuditFilter::default()
            },
        )
        .await;
        assert_eq!(by_bob.len(), 19, "no audit record of the failed write");
    })
    .await;
}

#[tokio::test]
async fn a_run_created_claimed_is_in_progress_and_leased_to_its_worker() {
    on_each_backend(|store| async move {
        let mut started = run("r_now", "deploy", 1_000);
        started.status = RunStatus::InProgress;
        started.attempts = 1;
        store
            .create_claimed_run(
                started.clone(),
                audit("alice", "RUN", "run", "r_now"),
                "w1",
                t(10_000),
            )
            .await
            .unwrap();
        assert_eq!(store.get_run("r_now").await.unwrap(), Some(started));
        // No other worker claims it; only its worker renews it; it expires with its lease.
        assert!(
            store
                .claim_runs("w2", 10, t(10_000))
                .await
                .unwrap()
                .is_empty()
        );
        let mine = ["r_now".to_owned()];
        assert_eq!(store.renew_leases("w2", &mine, t(50_000)).await.unwrap(), 0);
        assert!(store.expired_runs(t(10_000)).await.unwrap().is_empty());
        assert_eq!(store.renew_leases("w1", &mine, t(50_000)).await.unwrap(), 1);
        assert!(store.expired_runs(t(40_000)).await.unwrap().is_empty());
        assert_eq!(
            ids(&store.expired_runs(t(50_001)).await.unwrap()),
            ["r_now"]
        );
    })
    .await;
}

#[tokio::test]
async fn runs_are_listed_newest_first_by_every_filter_and_paged_with_a_cursor() {
    on_each_backend(|store| async move {
        // r_a and r_b share a creation time: the id breaks the tie.
        let mut a = run("r_a", "deploy", 1_000);
        a.entity = Some("checkout".into());
        let mut b = run("r_b", "deploy", 1_000);
        b.created_by = "bob".into();
        let mut c = run("r_c", "scaffold", 2_000);
        c.entity = Some("checkout".into());
        c.status = RunStatus::Success;
        let mut d = run("r_d", "deploy", 3_000);
        d.created_by = "bob".into();
        d.status = RunStatus::Success;
        for r in [c, a, d, b] {
            create_run(&*store, r).await;
        }

        assert_eq!(
            listed(&*store, all_runs()).await,
            ["r_d", "r_c", "r_b", "r_a"]
        );
        let by = |f: fn(&mut RunFilter)| {
            let mut filter = all_runs();
            f(&mut filter);
            filter
        };
        assert_eq!(
            listed(&*store, by(|f| f.action = Some("deploy".into()))).await,
            ["r_d", "r_b", "r_a"]
        );
        assert_eq!(
            listed(&*store, by(|f| f.status = Some(RunStatus::Success))).await,
            ["r_d", "r_c"]
        );
        assert_eq!(
            listed(&*store, by(|f| f.created_by = Some("bob".into()))).await,
            ["r_d", "r_b"]
        );
        assert_eq!(
            listed(&*store, by(|f| f.entity = Some("checkout".into()))).await,
            ["r_c", "r_a"]
        );
        // Filters combine.
        assert_eq!(
            listed(
                &*store,
                by(|f| {
                    f.action = Some("deploy".into());
                    f.created_by = Some("bob".into());
                    f.status = Some(RunStatus::Pending);
                })
            )
            .await,
            ["r_b"]
        );
        assert!(
            listed(&*store, by(|f| f.action = Some("nothing".into())))
                .await
                .is_empty()
        );

        // Paging: `limit` per page, `before` = the last id of the previous page.
        let page = |before: Option<&str>| RunFilter {
            before: before.map(str::to_owned),
            limit: 2,
            ..RunFilter::default()
        };
        assert_eq!(listed(&*store, page(None)).await, ["r_d", "r_c"]);
        assert_eq!(listed(&*store, page(Some("r_c"))).await, ["r_b", "r_a"]);
        // The cursor orders by (createdAt, id): r_b and r_a were created at the same time.
        assert_eq!(listed(&*store, page(Some("r_b"))).await, ["r_a"]);
        assert!(listed(&*store, page(Some("r_a"))).await.is_empty());
        // The cursor combines with filters.
        assert_eq!(
            listed(
                &*store,
                RunFilter {
                    action: Some("deploy".into()),
                    before: Some("r_d".into()),
                    limit: 1,
                    ..RunFilter::default()
                }
            )
            .await,
            ["r_b"]
        );
        // A cursor that names no run gives nothing.
        assert!(listed(&*store, page(Some("r_zz"))).await.is_empty());
        assert!(
            listed(&*store, RunFilter::default()).await.is_empty(),
            "limit 0"
        );
    })
    .await;
}

#[tokio::test]
async fn claiming_takes_the_oldest_pending_runs_up_to_the_limit() {
    on_each_backend(|store| async move {
        create_runs(&*store, 5).await;
        let mut done = run("r_done", "deploy", 1);
        done.status = RunStatus::Success;
        create_run(&*store, done).await;

        let first = store.claim_runs("w1", 2, t(60_000)).await.unwrap();
        assert_eq!(ids(&first), ["r001", "r002"]);
        for r in &first {
            assert_eq!(r.status, RunStatus::InProgress);
            assert_eq!(r.attempts, 1);
            assert_eq!(r.payload.value()["inputs"]["token"], "s3cret");
        }
        assert_eq!(store.get_run("r001").await.unwrap().unwrap(), first[0]);

        assert_eq!(
            ids(&store.claim_runs("w2", 10, t(60_000)).await.unwrap()),
            ["r003", "r004", "r005"]
        );
        assert!(
            store
                .claim_runs("w1", 10, t(60_000))
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(store.count_runs(RunStatus::InProgress).await.unwrap(), 5);
        assert_eq!(store.count_runs(RunStatus::Success).await.unwrap(), 1);

        create_run(&*store, run("r_new", "deploy", 20_000)).await;
        assert!(
            store
                .claim_runs("w1", 0, t(60_000))
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(store.count_runs(RunStatus::Pending).await.unwrap(), 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claimers_never_take_the_same_run_and_together_take_them_all() {
    on_each_backend(|store| async move {
        create_runs(&*store, 50).await;
        let workers: Vec<_> = (0..8)
            .map(|w| {
                let store = store.clone();
                tokio::spawn(async move {
                    let mut mine = Vec::new();
                    loop {
                        let claimed = store
                            .claim_runs(&format!("w{w}"), 1, t(60_000))
                            .await
                            .unwrap();
                        if claimed.is_empty() {
                            return mine;
                        }
                        assert_eq!(claimed.len(), 1);
                        mine.extend(claimed);
                    }
                })
            })
            .collect();
        let mut claimed = Vec::new();
        for worker in workers {
            claimed.extend(worker.await.unwrap());
        }
        let mut claimed_ids = ids(&claimed);
        claimed_ids.sort();
        let expected: Vec<String> = (1..=50).map(|i| format!("r{i:03}")).collect();
        assert_eq!(claimed_ids, expected, "each run exactly once");
        assert!(claimed.iter().all(|r| r.attempts == 1));
        assert_eq!(store.count_runs(RunStatus::Pending).await.unwrap(), 0);
        assert_eq!(store.count_runs(RunStatus::InProgress).await.unwrap(), 50);
    })
    .await;
}

#[tokio::test]
async fn only_the_worker_owning_a_run_renews_its_lease() {
    on_each_backend(|store| async move {
        create_runs(&*store, 3).await;
        store.claim_runs("w1", 2, t(10_000)).await.unwrap(); // r001, r002
        store.claim_runs("w2", 1, t(10_000)).await.unwrap(); // r003
        let all: Vec<String> = ["r001", "r002", "r003", "r_unknown"]
            .map(String::from)
            .into();

        assert_eq!(store.renew_leases("w1", &all, t(50_000)).await.unwrap(), 2);
        assert_eq!(store.renew_leases("w3", &all, t(50_000)).await.unwrap(), 0);
        assert_eq!(store.renew_leases("w1", &[], t(50_000)).await.unwrap(), 0);
        // w1's leases now end at 50s, w2's still at 10s.
        assert_eq!(ids(&store.expired_runs(t(20_000)).await.unwrap()), ["r003"]);

        // A run that has ended is not renewed, even by its former owner.
        let mut done = store.get_run("r001").await.unwrap().unwrap();
        done.status = RunStatus::Success;
        assert!(store.update_run(&done, None).await.unwrap());
        assert_eq!(store.renew_leases("w1", &all, t(90_000)).await.unwrap(), 1);
    })
    .await;
}

#[tokio::test]
async fn updates_write_the_mutable_fields_until_the_status_is_final() {
    on_each_backend(|store| async move {
        create_runs(&*store, 2).await;
        let claimed = store.claim_runs("w1", 1, t(60_000)).await.unwrap();
        let mut r = claimed[0].clone();

        // Progress: every mutable field is written, with its audit record when given.
        r.status_label = Some("Cloning".into());
        r.link = vec![json!({ "title": "Logs", "url": "https://ci/1" })];
        r.summary = Some("half way".into());
        r.progress = Some(json!({ "percent": 50, "label": "cloning" }));
        r.affected_entities = json!([{ "blueprint": "service", "identifier": "checkout" }]);
        r.updated_at = t(20_000);
        assert!(store.update_run(&r, None).await.unwrap());
        assert_eq!(store.get_run("r001").await.unwrap(), Some(r.clone()));

        // Only those fields: the identity, inputs, payload and attempts stay as stored.
        let mut meddling = r.clone();
        meddling.action = "other".into();
        meddling.properties = json!({});
        meddling.payload = json!(null).into();
        meddling.attempts = 9;
        meddling.created_by = "mallory".into();
        assert!(store.update_run(&meddling, None).await.unwrap());
        assert_eq!(store.get_run("r001").await.unwrap(), Some(r.clone()));

        // A final status is written once...
        let mut failed = r.clone();
        failed.status = RunStatus::Failure;
        failed.error = Some(json!({ "kind": "plugin", "message": "boom" }));
        failed.output = Some(json!({ "exit": 1 }));
        failed.updated_at = t(30_000);
        failed.ended_at = Some(t(30_000));
        assert!(
            store
                .update_run(&failed, Some(audit("run:r001", "FAIL", "run", "r001")))
                .await
                .unwrap()
        );
        assert_eq!(store.get_run("r001").await.unwrap(), Some(failed.clone()));
        // ...and never overwritten: not by a late success, nor by a cancellation, and the
        // refused update stores no audit record.
        for status in [
            RunStatus::Success,
            RunStatus::Cancelled,
            RunStatus::InProgress,
        ] {
            let mut late = failed.clone();
            late.status = status;
            late.updated_at = t(40_000);
            assert!(
                !store
                    .update_run(&late, Some(audit("run:r001", "LATE", "run", "r001")))
                    .await
                    .unwrap(),
                "{status}"
            );
        }
        assert_eq!(store.get_run("r001").await.unwrap(), Some(failed));
        assert_eq!(
            audit_lines(
                &*store,
                AuditFilter {
                    actor: Some("run:r001".into()),
                    limit: 10,
                    ..AuditFilter::default()
                }
            )
            .await,
            vec!["FAIL run r001"]
        );
        // A final run is not expired, and cannot be re-queued.
        assert!(store.expired_runs(t(999_999)).await.unwrap().is_empty());
        assert!(!store.requeue_run("r001").await.unwrap());

        // A PENDING run may be cancelled before any worker claims it; then none will.
        let mut cancelled = store.get_run("r002").await.unwrap().unwrap();
        cancelled.status = RunStatus::Cancelled;
        cancelled.ended_at = Some(t(25_000));
        assert!(store.update_run(&cancelled, None).await.unwrap());
        assert!(
            store
                .claim_runs("w1", 10, t(60_000))
                .await
                .unwrap()
                .is_empty()
        );

        // An unknown run is not updated.
        assert!(
            !store
                .update_run(&run("r_nope", "deploy", 1), None)
                .await
                .unwrap()
        );
    })
    .await;
}

#[tokio::test]
async fn expired_runs_are_the_in_progress_ones_whose_lease_ended() {
    on_each_backend(|store| async move {
        create_runs(&*store, 4).await;
        store.claim_runs("w1", 1, t(10_000)).await.unwrap(); // r001, lease ends at 10s
        store.claim_runs("w2", 1, t(30_000)).await.unwrap(); // r002, lease ends at 30s
        // r003 is IN_PROGRESS without any lease (set so by an update, never claimed): no
        // worker will ever finish it, so it counts as expired whatever the time.
        let mut unowned = store.get_run("r003").await.unwrap().unwrap();
        unowned.status = RunStatus::InProgress;
        assert!(store.update_run(&unowned, None).await.unwrap());
        // r004 stays PENDING: never expired.

        assert_eq!(ids(&store.expired_runs(t(5_000)).await.unwrap()), ["r003"]);
        // A lease ending exactly now has not ended yet.
        assert_eq!(ids(&store.expired_runs(t(10_000)).await.unwrap()), ["r003"]);
        assert_eq!(
            ids(&store.expired_runs(t(10_001)).await.unwrap()),
            ["r001", "r003"]
        );
        let expired = store.expired_runs(t(40_000)).await.unwrap();
        assert_eq!(ids(&expired), ["r001", "r002", "r003"]);
        assert!(expired.iter().all(|r| r.status == RunStatus::InProgress));

        // Failing one as interrupted takes it off the list.
        let mut interrupted = expired[0].clone();
        interrupted.status = RunStatus::Failure;
        interrupted.error = Some(json!({ "kind": "interrupted", "message": "worker died" }));
        interrupted.ended_at = Some(t(40_000));
        assert!(store.update_run(&interrupted, None).await.unwrap());
        assert_eq!(
            ids(&store.expired_runs(t(40_000)).await.unwrap()),
            ["r002", "r003"]
        );
    })
    .await;
}

#[tokio::test]
async fn requeued_runs_are_pending_again_and_claimed_anew() {
    on_each_backend(|store| async move {
        create_runs(&*store, 2).await;
        store.claim_runs("w1", 2, t(10_000)).await.unwrap();

        assert!(store.requeue_run("r001").await.unwrap());
        assert!(!store.requeue_run("r001").await.unwrap(), "already PENDING");
        assert!(!store.requeue_run("r_unknown").await.unwrap());
        let requeued = store.get_run("r001").await.unwrap().unwrap();
        assert_eq!(requeued.status, RunStatus::Pending);
        assert_eq!(requeued.attempts, 1);
        // Its lease is gone: it is not expired, and its old owner cannot renew it.
        assert_eq!(ids(&store.expired_runs(t(20_000)).await.unwrap()), ["r002"]);
        assert_eq!(
            store
                .renew_leases("w1", &["r001".into()], t(90_000))
                .await
                .unwrap(),
            0
        );

        // The next claim takes it again, counting the second attempt.
        let again = store.claim_runs("w2", 5, t(60_000)).await.unwrap();
        assert_eq!(ids(&again), ["r001"]);
        assert_eq!(again[0].attempts, 2);
        assert_eq!(
            store
                .renew_leases("w2", &ids(&again), t(90_000))
                .await
                .unwrap(),
            1
        );
    })
    .await;
}

#[tokio::test]
async fn a_handed_off_run_waits_for_its_deadline_and_no_worker_renews_it() {
    on_each_backend(|store| async move {
        create_runs(&*store, 1).await;
        store.claim_runs("w1", 1, t(10_000)).await.unwrap();
        assert!(
            !store.hand_off_run("r001", "w2", t(90_000)).await.unwrap(),
            "not w2's"
        );
        assert!(store.hand_off_run("r001", "w1", t(90_000)).await.unwrap());

        let run = store.get_run("r001").await.unwrap().unwrap();
        assert!(run.external);
        assert_eq!(run.status, RunStatus::InProgress);
        let mine = ["r001".to_owned()];
        let renewed = store.renew_leases("w1", &mine, t(20_000)).await.unwrap();
        assert_eq!(renewed, 0, "its worker let it go");
        assert!(store.expired_runs(t(50_000)).await.unwrap().is_empty());
        let expired = store.expired_runs(t(100_000)).await.unwrap();
        assert_eq!(ids(&expired), ["r001"]);
        assert!(expired[0].external);
    })
    .await;
}

#[tokio::test]
async fn sealed_secrets_in_the_payload_are_deleted_when_the_run_ends() {
    on_each_backend(|store| async move {
        let mut r = run("r_s", "deploy", 1);
        r.payload = json!({"request": {"inputs": {}}, "sealed": "c2VhbGVk"}).into();
        create_run(&*store, r).await;
        let mut live = store.get_run("r_s").await.unwrap().unwrap();
        assert_eq!(live.payload.value()["sealed"], "c2VhbGVk");
        live.progress = Some(json!({"percent": 50}));
        store.update_run(&live, None).await.unwrap();
        let live = store.get_run("r_s").await.unwrap().unwrap();
        assert_eq!(
            live.payload.value()["sealed"],
            "c2VhbGVk",
            "kept while it runs"
        );

        let mut ended = live;
        ended.status = RunStatus::Success;
        ended.ended_at = Some(t(5_000));
        store.update_run(&ended, None).await.unwrap();
        let ended = store.get_run("r_s").await.unwrap().unwrap();
        assert_eq!(ended.payload.value(), json!({"request": {"inputs": {}}}));
    })
    .await;
}

#[tokio::test]
async fn each_approver_decides_a_run_once() {
    on_each_backend(|store| async move {
        create_runs(&*store, 1).await;
        let decision = |who: &str, what: &str, at: i64| Approval {
            run_id: "r001".into(),
            approver: who.into(),
            decision: what.into(),
            description: Some(format!("{who} says {what}")),
            at: t(at),
        };
        let audit_of = |who: &str| audit(who, "APPROVE", "run", "r001");
        store
            .decide_run(decision("bob", "APPROVE", 2_000), audit_of("bob"))
            .await
            .unwrap();
        store
            .decide_run(decision("ann", "DECLINE", 3_000), audit_of("ann"))
            .await
            .unwrap();
        let again = store
            .decide_run(decision("bob", "DECLINE", 4_000), audit_of("bob"))
            .await;
        assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");

        let decided = store.approvals("r001").await.unwrap();
        assert_eq!(
            decided,
            vec![
                decision("bob", "APPROVE", 2_000),
                decision("ann", "DECLINE", 3_000)
            ]
        );
        assert!(store.approvals("r_other").await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn runs_are_counted_by_status() {
    on_each_backend(|store| async move {
        assert_eq!(store.count_runs(RunStatus::Pending).await.unwrap(), 0);
        create_runs(&*store, 4).await;
        store.claim_runs("w1", 1, t(10_000)).await.unwrap();
        let mut done = store.get_run("r002").await.unwrap().unwrap();
        done.status = RunStatus::Success;
        store.update_run(&done, None).await.unwrap();

        assert_eq!(store.count_runs(RunStatus::Pending).await.unwrap(), 2);
        assert_eq!(store.count_runs(RunStatus::InProgress).await.unwrap(), 1);
        assert_eq!(store.count_runs(RunStatus::Success).await.unwrap(), 1);
        assert_eq!(store.count_runs(RunStatus::Failure).await.unwrap(), 0);
        // Statuses are spelled exactly.
        assert!("pending".parse::<RunStatus>().is_err());
    })
    .await;
}

fn line(run_id: &str, seq: i64, message: &str) -> RunLogLine {
    RunLogLine {
        run_id: run_id.into(),
        seq,
        at: t(1_000 + seq),
        level: if seq % 2 == 0 { "INFO" } else { "WARN" }.into(),
        message: message.into(),
    }
}

/// The next change `changes` receives (waiting up to 10 s for it).
async fn next_change(changes: &mut tokio::sync::broadcast::Receiver<Change>) -> Change {
    tokio::time::timeout(std::time::Duration::from_secs(10), changes.recv())
        .await
        .expect("a change is announced")
        .expect("the feed is open")
}

#[tokio::test]
async fn committed_run_changes_are_announced_to_every_replica_and_nothing_else_is() {
    on_each_database(|url| async move {
        let writer = open(&url).await;
        // On Postgres another replica (a second store on the database) hears them, through
        // LISTEN/NOTIFY; SQLite is one process, whose store hears its own.
        let replica = if url.starts_with("postgres") {
            open(&url).await
        } else {
            writer.clone()
        };
        let mut changes = replica.changes();

        create_runs(&*writer, 1).await;
        assert_eq!(next_change(&mut changes).await, Change::RunsQueued);
        let claimed = writer.claim_runs("w1", 1, t(90_000)).await.unwrap();
        assert_eq!(
            next_change(&mut changes).await,
            Change::RunChanged("r001".into())
        );
        // A lease renewal is no change to announce, nor is a write that fails.
        assert_eq!(
            writer
                .renew_leases("w1", &ids(&claimed), t(95_000))
                .await
                .unwrap(),
            1
        );
        writer
            .append_run_logs(vec![line("r001", 1, "one"), line("r001", 2, "two")])
            .await
            .unwrap();
        assert_eq!(
            next_change(&mut changes).await,
            Change::RunLogged("r001".into()),
            "one change for a batch of lines"
        );
        assert!(matches!(
            writer.append_run_logs(vec![line("r001", 2, "again")]).await,
            Err(StoreError::Conflict(_))
        ));
        let ended = RunRecord {
            status: RunStatus::Cancelled,
            updated_at: t(20_000),
            ended_at: Some(t(20_000)),
            ..claimed[0].clone()
        };
        assert!(writer.update_run(&ended, None).await.unwrap());
        assert_eq!(
            next_change(&mut changes).await,
            Change::RunEnded("r001".into())
        );
    })
    .await;
}

#[tokio::test]
async fn run_logs_are_read_back_in_order_after_a_seq_and_a_repeated_seq_is_a_conflict() {
    on_each_backend(|store| async move {
        create_runs(&*store, 2).await;
        // Appended in batches, not necessarily in order; read back by seq.
        store
            .append_run_logs(vec![line("r001", 2, "two"), line("r001", 1, "one")])
            .await
            .unwrap();
        store
            .append_run_logs(vec![
                line("r001", 3, "three"),
                line("r002", 1, "other run"),
                line("r001", 4, "four"),
            ])
            .await
            .unwrap();
        store.append_run_logs(Vec::new()).await.unwrap();

        let messages = |lines: Vec<RunLogLine>| -> Vec<String> {
            lines.into_iter().map(|l| l.message).collect()
        };
        let all = store.run_logs("r001", 0, 100).await.unwrap();
        assert_eq!(all[0], line("r001", 1, "one"));
        assert_eq!(messages(all), ["one", "two", "three", "four"]);
        assert_eq!(
            messages(store.run_logs("r001", 2, 100).await.unwrap()),
            ["three", "four"]
        );
        assert_eq!(
            messages(store.run_logs("r001", 1, 2).await.unwrap()),
            ["two", "three"]
        );
        assert!(store.run_logs("r001", 4, 100).await.unwrap().is_empty());
        assert!(store.run_logs("r001", 0, 0).await.unwrap().is_empty());
        assert_eq!(store.last_log_seq("r001").await.unwrap(), 4);
        assert_eq!(store.last_log_seq("r_unknown").await.unwrap(), 0);
        assert_eq!(
            messages(store.run_logs("r002", 0, 100).await.unwrap()),
            ["other run"]
        );
        assert!(
            store
                .run_logs("r_unknown", 0, 100)
                .await
                .unwrap()
                .is_empty()
        );

        // A seq already stored is a Conflict naming it, and the whole batch is refused:
        // line 5, before the repeated one in the same call, is not stored either.
        let repeated = store
            .append_run_logs(vec![line("r001", 5, "five"), line("r001", 3, "again")])
            .await
            .unwrap_err();
        assert!(
            matches!(&repeated, StoreError::Conflict(what) if what == "log line 3 of run `r001`"),
            "{repeated}"
        );
        // So is a seq repeated within one call.
        let twice = store
            .append_run_logs(vec![line("r002", 2, "a"), line("r002", 2, "b")])
            .await
            .unwrap_err();
        assert!(
            matches!(&twice, StoreError::Conflict(what) if what == "log line 2 of run `r002`"),
            "{twice}"
        );
        assert_eq!(
            messages(store.run_logs("r001", 0, 100).await.unwrap()),
            ["one", "two", "three", "four"]
        );
        assert_eq!(
            messages(store.run_logs("r002", 0, 100).await.unwrap()),
            ["other run"]
        );
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// The outbox, limits held in the run's transaction, and leadership
// ---------------------------------------------------------------------------------------------

/// Claims whatever is due now, leased for a minute.
async fn claim_due(store: &dyn Store) -> Vec<portico_store::OutboxEvent> {
    let now = portico_store::now();
    store
        .claim_events(100, now, now + chrono::Duration::minutes(1))
        .await
        .unwrap()
}

fn notify_event(n: u32) -> NewEvent {
    NewEvent {
        topic: NewEvent::NOTIFY,
        body: json!({ "n": n }),
    }
}

#[tokio::test]
async fn entity_changes_write_their_event_with_them_and_a_claim_holds_it_until_acked() {
    on_each_backend(|store| async move {
        create_blueprint(&*store, blueprint("service", json!({}))).await;
        create_entity(&*store, entity("service", "checkout", json!({}))).await;
        let mut gone = audit("alice", "DELETE", "entity", "service/checkout");
        gone.blueprint = Some("service".into());
        gone.before = Some(json!({ "identifier": "checkout" }));
        store
            .delete_entities(
                vec![EntityRef {
                    blueprint: "service".into(),
                    identifier: "checkout".into(),
                }],
                vec![gone],
            )
            .await
            .unwrap();
        // A refused change is audited but happened not: no event.
        store
            .record(AuditRecord {
                status: AuditStatus::Failure,
                ..audit("eve", "CREATE", "entity", "service/nope")
            })
            .await
            .unwrap();
        assert_eq!(store.outbox_backlog().await.unwrap(), 2);

        let claimed = claim_due(&*store).await;
        let kinds: Vec<&str> = claimed
            .iter()
            .map(|e| e.body["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["ENTITY_CREATED", "ENTITY_DELETED"]);
        assert!(
            claimed
                .iter()
                .all(|e| e.topic == "entity" && e.attempts == 1)
        );
        assert_eq!(claimed[0].body["identifier"], "checkout");
        assert_eq!(claimed[1].body["before"]["identifier"], "checkout");
        assert!(claimed[0].id < claimed[1].id);
        // Leased: nobody else gets them while the lease lasts...
        assert!(claim_due(&*store).await.is_empty());
        // ...and once it ended they are due again (the consumer died), counted as a retry.
        let later = portico_store::now() + chrono::Duration::minutes(2);
        let again = store
            .claim_events(100, later, later + chrono::Duration::minutes(1))
            .await
            .unwrap();
        assert_eq!(again.len(), 2);
        assert!(again.iter().all(|e| e.attempts == 2));

        let record = audit("portico", "NOTIFY", "run", "r1");
        store
            .ack_events(vec![claimed[0].id, claimed[1].id], vec![record])
            .await
            .unwrap();
        assert_eq!(store.outbox_backlog().await.unwrap(), 0);
        let lines = audit_lines(&*store, AuditFilter::default()).await;
        assert_eq!(lines[0], "NOTIFY run r1", "the ack's audit record, newest");
    })
    .await;
}

#[tokio::test]
async fn an_action_version_is_stored_once_with_the_first_run_that_refers_to_it() {
    on_each_database(|url| async move {
        let first = open(&url).await;
        // On Postgres a second replica writes it too, unaware the first one did.
        let second = if url.starts_with("postgres") {
            open(&url).await
        } else {
            first.clone()
        };
        let version = Arc::new(ActionVersion {
            digest: "v1-0123abcd".into(),
            definition: r#"{"identifier":"deploy","trigger":{"type":"self-service"}}"#.into(),
        });
        assert_eq!(first.action_version("v1-0123abcd").await.unwrap(), None);
        for (store, id) in [(&first, "r1"), (&first, "r2"), (&second, "r3")] {
            let insert = RunInsert {
                version: Some(version.clone()),
                ..RunInsert::default()
            };
            store
                .insert_run(
                    run(id, "deploy", 1_000),
                    audit("alice", "RUN", "run", id),
                    insert,
                )
                .await
                .unwrap();
        }
        for store in [&first, &second] {
            let stored = store.action_version("v1-0123abcd").await.unwrap().unwrap();
            assert_eq!(
                serde_json::from_str::<Value>(&stored).unwrap(),
                json!({ "identifier": "deploy", "trigger": { "type": "self-service" } })
            );
        }
        // A run that is not stored stores no version either.
        let other = Arc::new(ActionVersion {
            digest: "v1-ffff".into(),
            definition: "{}".into(),
        });
        let insert = RunInsert {
            version: Some(other),
            ..RunInsert::default()
        };
        let taken = first
            .insert_run(
                run("r1", "deploy", 1_000),
                audit("alice", "RUN", "run", "r1"),
                insert,
            )
            .await;
        assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");
        assert_eq!(first.action_version("v1-ffff").await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn runs_written_together_keep_every_row_of_each() {
    on_each_backend(|store| async move {
        // Forty runs inserted at once (both backends commit them in batches), each with its
        // audit record and an event; then all ended at once, each with a log line and an event.
        let inserts: Vec<_> = (0..40)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let id = format!("r{i:03}");
                    let insert = RunInsert {
                        events: vec![notify_event(i)],
                        ..RunInsert::default()
                    };
                    let record = audit("bob", "RUN", "run", &id);
                    let r = run(&id, "deploy", 1_000 + i64::from(i));
                    store.insert_run(r, record, insert).await
                })
            })
            .collect();
        for insert in inserts {
            insert.await.unwrap().unwrap();
        }
        let ends: Vec<_> = (0..40)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let mut ended = run(&format!("r{i:03}"), "deploy", 1_000 + i64::from(i));
                    ended.status = RunStatus::Success;
                    ended.ended_at = Some(t(5_000));
                    ended.summary = Some(format!("done {i}"));
                    let last = line(&ended.id, 1, &format!("line of {i}"));
                    store
                        .finish_run(&ended, vec![last], vec![notify_event(100 + i)])
                        .await
                })
            })
            .collect();
        for end in ends {
            assert!(end.await.unwrap().unwrap(), "every end is written");
        }
        let by_bob = AuditFilter {
            actor: Some("bob".into()),
            limit: 100,
            ..AuditFilter::default()
        };
        assert_eq!(audit_lines(&*store, by_bob).await.len(), 40);
        assert_eq!(claim_due(&*store).await.len(), 80, "40 events each way");
        for i in [0, 17, 39] {
            let id = format!("r{i:03}");
            let stored = store.get_run(&id).await.unwrap().unwrap();
            assert_eq!(stored.status, RunStatus::Success);
            assert_eq!(
                stored.summary.as_deref(),
                Some(format!("done {i}").as_str())
            );
            let lines = store.run_logs(&id, 0, 10).await.unwrap();
            assert_eq!(lines.len(), 1);
            assert_eq!(lines[0].message, format!("line of {i}"));
        }
    })
    .await;
}

#[tokio::test]
async fn runs_ending_together_each_get_their_own_answer() {
    on_each_backend(|store| async move {
        create_runs(&*store, 20).await;
        store
            .append_run_logs(vec![line("r008", 1, "already written")])
            .await
            .unwrap();
        // Twenty ends sent together (both backends commit them in batches): r008's last line
        // takes a sequence number already written, so its end fails and no other one does.
        let ends: Vec<_> = (1..=20)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let mut ended = run(&format!("r{i:03}"), "deploy", 10_000 + i);
                    ended.status = RunStatus::Success;
                    ended.ended_at = Some(t(20_000));
                    let last = line(&ended.id, 1, "done");
                    store.finish_run(&ended, vec![last], Vec::new()).await
                })
            })
            .collect();
        for (i, end) in (1..=20).zip(ends) {
            let result = end.await.unwrap();
            if i == 8 {
                assert!(matches!(result, Err(StoreError::Conflict(_))), "{result:?}");
            } else {
                assert!(result.unwrap(), "r{i:03} ended");
            }
        }
        let ended = store.count_runs(RunStatus::Success).await.unwrap();
        assert_eq!(ended, 19, "every run but r008");
        let kept = store.run_logs("r008", 0, 10).await.unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].message, "already written");

        // An end and a late update of one run sent together apply in the order they were
        // sent: the end wins, and the update after it changes nothing.
        let mut ended = run("r008", "deploy", 10_008);
        ended.status = RunStatus::Failure;
        ended.ended_at = Some(t(21_000));
        let mut late = ended.clone();
        late.status = RunStatus::InProgress;
        late.ended_at = None;
        let (end, update) = tokio::join!(
            store.finish_run(&ended, Vec::new(), Vec::new()),
            store.update_run(&late, None),
        );
        assert!(end.unwrap());
        assert!(!update.unwrap());
        let stored = store.get_run("r008").await.unwrap().unwrap();
        assert_eq!(stored.status, RunStatus::Failure);
    })
    .await;
}

#[tokio::test]
async fn run_events_are_written_only_with_the_change_that_caused_them() {
    on_each_backend(|store| async move {
        let insert = RunInsert {
            events: vec![notify_event(1)],
            ..RunInsert::default()
        };
        let r = run("r1", "deploy", 1_000);
        store
            .insert_run(r.clone(), audit("alice", "RUN", "run", "r1"), insert)
            .await
            .unwrap();
        let mut ended = r.clone();
        ended.status = RunStatus::Success;
        ended.ended_at = Some(t(2_000));
        assert!(
            store
                .finish_run(&ended, Vec::new(), vec![notify_event(2)])
                .await
                .unwrap()
        );
        // Already ended: the change is not written, and neither is its event.
        let mut late = ended.clone();
        late.status = RunStatus::Failure;
        assert!(
            !store
                .update_run_with(&late, None, vec![notify_event(3)])
                .await
                .unwrap()
        );
        // A run id taken: nothing of the insert is written.
        let taken = RunInsert {
            events: vec![notify_event(4)],
            ..RunInsert::default()
        };
        let failed = store
            .insert_run(r, audit("alice", "RUN", "run", "r1"), taken)
            .await;
        assert!(matches!(failed, Err(StoreError::Conflict(_))), "{failed:?}");

        let bodies: Vec<Value> = claim_due(&*store)
            .await
            .into_iter()
            .map(|e| e.body)
            .collect();
        assert_eq!(bodies, [json!({ "n": 1 }), json!({ "n": 2 })]);
    })
    .await;
}

#[tokio::test]
async fn a_retried_event_is_due_again_at_its_time() {
    on_each_backend(|store| async move {
        store.emit(vec![notify_event(1)]).await.unwrap();
        let first = claim_due(&*store).await;
        let retry_at = portico_store::now() + chrono::Duration::seconds(30);
        store.retry_event(first[0].id, retry_at).await.unwrap();
        assert!(claim_due(&*store).await.is_empty(), "not due yet");
        let then = retry_at + chrono::Duration::milliseconds(1);
        let second = store
            .claim_events(10, then, then + chrono::Duration::minutes(1))
            .await
            .unwrap();
        assert_eq!((second[0].id, second[0].attempts), (first[0].id, 2));
    })
    .await;
}

#[tokio::test]
async fn consumers_racing_for_events_never_hold_the_same_one() {
    on_each_backend(|store| async move {
        let events: Vec<NewEvent> = (0..200).map(notify_event).collect();
        store.emit(events).await.unwrap();
        let claims: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    let now = portico_store::now();
                    let lease = now + chrono::Duration::minutes(1);
                    let mut mine = Vec::new();
                    loop {
                        let got = store.claim_events(7, now, lease).await.unwrap();
                        if got.is_empty() {
                            return mine;
                        }
                        mine.extend(got.into_iter().map(|e| e.id));
                    }
                })
            })
            .collect();
        let mut all = Vec::new();
        for claim in claims {
            all.extend(claim.await.unwrap());
        }
        let claimed = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!((claimed, all.len()), (200, 200));
    })
    .await;
}

#[tokio::test]
async fn racing_inserts_against_a_limit_store_exactly_that_many_runs() {
    on_each_backend(|store| async move {
        let limits = RunLimits {
            concurrent: Some(3),
            per_day: None,
        };
        let inserts: Vec<_> = (0..20)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let id = format!("r{i:02}");
                    let insert = RunInsert {
                        limits,
                        ..RunInsert::default()
                    };
                    let now = portico_store::now().timestamp_millis();
                    store
                        .insert_run(
                            run(&id, "deploy", now),
                            audit("alice", "RUN", "run", &id),
                            insert,
                        )
                        .await
                })
            })
            .collect();
        let mut stored = 0;
        for insert in inserts {
            match insert.await.unwrap() {
                Ok(()) => stored += 1,
                Err(StoreError::OverLimit {
                    limit: RunLimit::Concurrent,
                    max: 3,
                    current: 3,
                }) => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(stored, 3);
        // Another action, or another user, counts apart.
        let other = RunInsert {
            limits,
            ..RunInsert::default()
        };
        let now = portico_store::now().timestamp_millis();
        store
            .insert_run(
                run("x1", "rollback", now),
                audit("alice", "RUN", "run", "x1"),
                other,
            )
            .await
            .unwrap();

        // An ended run frees its place; the day's count still holds it.
        let deploys = RunFilter {
            action: Some("deploy".into()),
            limit: 10,
            ..RunFilter::default()
        };
        let stored_ids = listed(&*store, deploys).await;
        let mut done = store.get_run(&stored_ids[0]).await.unwrap().unwrap();
        done.status = RunStatus::Success;
        done.ended_at = Some(portico_store::now());
        assert!(store.update_run(&done, None).await.unwrap());
        let daily = RunLimits {
            concurrent: Some(3),
            per_day: Some(3),
        };
        let insert = RunInsert {
            limits: daily,
            ..RunInsert::default()
        };
        let now = portico_store::now().timestamp_millis();
        let refused = store
            .insert_run(
                run("r99", "deploy", now),
                audit("alice", "RUN", "run", "r99"),
                insert,
            )
            .await;
        assert!(
            matches!(
                refused,
                Err(StoreError::OverLimit {
                    limit: RunLimit::PerDay,
                    max: 3,
                    current: 3
                })
            ),
            "{refused:?}"
        );
        let insert = RunInsert {
            limits,
            ..RunInsert::default()
        };
        store
            .insert_run(
                run("r98", "deploy", now),
                audit("alice", "RUN", "run", "r98"),
                insert,
            )
            .await
            .unwrap();
    })
    .await;
}

#[tokio::test]
async fn one_owner_leads_a_role_until_its_term_ends() {
    on_each_backend(|store| async move {
        let lead = |owner: &'static str, now: i64| {
            let store = store.clone();
            async move {
                store
                    .lead("maintenance", owner, t(now), t(now + 10_000))
                    .await
                    .unwrap()
            }
        };
        assert!(lead("a", 1_000).await, "nobody led: a takes it");
        assert!(!lead("b", 2_000).await, "a's term lasts until 11,000");
        assert!(lead("a", 5_000).await, "a renews its term, to 15,000");
        assert!(!lead("b", 14_000).await);
        assert!(lead("b", 15_001).await, "a stopped renewing: b takes over");
        assert!(!lead("a", 16_000).await);
        // Another role is led apart.
        assert!(
            store
                .lead("sweep", "a", t(16_000), t(20_000))
                .await
                .unwrap()
        );
    })
    .await;
}
