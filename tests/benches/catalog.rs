//! What the catalog costs at 100,000 entities: a bulk load through `Catalog::create_entity` (schema
//! and relation validation and an audit record for each entity, as on the API path) with 64
//! writes in flight, then Port-style searches through `Catalog::search`, one at a time.
//!
//!     cargo bench -p portico-tests --bench catalog
//!     PORTICO_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!         cargo bench -p portico-tests --bench catalog
//!
//! SQLite always; Postgres too when PORTICO_TEST_POSTGRES_URL is set (a fresh database is created
//! on that server and dropped afterwards). Prints, per backend, the load rate in entities/s and
//! p50/p99 in milliseconds of four searches with limit 100: equality on a string property, a
//! number range, a date range and `relatedTo`. The design's target is p99 <= 20 ms per search.
//! A search kind that has taken 60 s in total stops before its 200 runs; the table says how many
//! ran.

use portico_catalog::{Actor, BlueprintInput, Catalog, EntityInput, OnExisting};
use portico_tests::api::{Backend, Database, backends};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const TEAMS: usize = 100;
const SERVICES: usize = 100_000;
const IN_FLIGHT: usize = 64;
const SEARCHES: usize = 200;
const LIMIT: usize = 100;
/// The design's budget for one search at this size.
const TARGET_P99_MS: f64 = 20.0;
/// A search kind stops after this much total time, even before SEARCHES runs.
const KIND_BUDGET: Duration = Duration::from_secs(60);

const LANGUAGES: &[&str] = &["rust", "go", "python", "java", "typescript"];
const TIERS: &[&str] = &["critical", "standard", "internal", "experimental"];
/// `launched` dates fall in 2021-01-01 .. 2025-01-01 (UTC).
const LAUNCH_FROM: i64 = 1_609_459_200;
const LAUNCH_SPAN: i64 = 4 * 365 * 86_400;
/// A date-range search covers this many days.
const DATE_WINDOW_DAYS: i64 = 14;

/// A fixed, well-mixed number per entity (splitmix64): varied properties, same data every run.
fn mix(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Seconds since the epoch as `2023-04-05T06:07:08Z`.
fn iso(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .expect("in range")
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn team_id(n: usize) -> String {
    format!("team-{n:03}")
}

fn service(i: usize) -> EntityInput {
    let r = mix(i as u64);
    let properties = json!({
        "language": LANGUAGES[(r % LANGUAGES.len() as u64) as usize],
        "replicas": (r >> 8) % 101,
        "launched": iso(LAUNCH_FROM + ((r >> 16) % LAUNCH_SPAN as u64) as i64),
        "tier": TIERS[((r >> 48) % TIERS.len() as u64) as usize],
    });
    EntityInput {
        identifier: Some(format!("svc-{i:06}")),
        title: Some(format!("Service {i}")),
        properties: Some(object(properties)),
        relations: Some(object(
            json!({ "owner": team_id((r >> 40) as usize % TEAMS) }),
        )),
        ..EntityInput::default()
    }
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => unreachable!("an object literal"),
    }
}

fn blueprint(value: Value) -> BlueprintInput {
    serde_json::from_value(value).expect("a valid blueprint body")
}

#[derive(Clone, Copy)]
enum Kind {
    Equality,
    Range,
    DateRange,
    RelatedTo,
}

const KINDS: [Kind; 4] = [
    Kind::Equality,
    Kind::Range,
    Kind::DateRange,
    Kind::RelatedTo,
];

/// The `i`th search body of a kind; values vary across iterations.
fn search_body(kind: Kind, i: usize) -> Value {
    let rule = match kind {
        Kind::Equality => json!({
            "property": "language", "operator": "=", "value": LANGUAGES[i % LANGUAGES.len()]
        }),
        Kind::Range => {
            let from = (i * 7) % 95;
            json!({
                "property": "replicas", "operator": "between",
                "value": { "from": from, "to": from + 5 }
            })
        }
        Kind::DateRange => {
            let windows = (LAUNCH_SPAN / 86_400 - DATE_WINDOW_DAYS) as usize;
            let from = LAUNCH_FROM + ((i * 37) % windows) as i64 * 86_400;
            json!({
                "property": "launched", "operator": "between",
                "value": { "from": iso(from), "to": iso(from + DATE_WINDOW_DAYS * 86_400) }
            })
        }
        Kind::RelatedTo => json!({
            "operator": "relatedTo", "blueprint": "team",
            "value": team_id((i * 13) % TEAMS), "direction": "downstream"
        }),
    };
    json!({ "combinator": "and", "rules": [rule] })
}

struct Stats {
    runs: usize,
    p50: f64,
    p99: f64,
}

fn stats(mut millis: Vec<f64>) -> Stats {
    millis.sort_by(f64::total_cmp);
    let at = |q: f64| millis[((millis.len() as f64 * q) as usize).min(millis.len() - 1)];
    Stats {
        runs: millis.len(),
        p50: at(0.50),
        p99: at(0.99),
    }
}

struct Report {
    backend: Backend,
    load_rate: f64,
    load_time: Duration,
    searches: Vec<Stats>,
    found: Vec<usize>,
}

async fn bench(backend: Backend) -> Report {
    let database = Database::fresh(backend).await;
    let store = portico_store::open(&database.url)
        .await
        .expect("store opens");
    let catalog = Arc::new(Catalog::new(store));
    let admin = Arc::new(Actor {
        identifier: "admin".into(),
        admin: true,
        teams: Vec::new(),
        origin: "bench".into(),
        run_id: None,
    });

    catalog
        .create_blueprint(&admin, blueprint(json!({ "identifier": "team" })))
        .await
        .expect("team blueprint");
    catalog
        .create_blueprint(
            &admin,
            blueprint(json!({
                "identifier": "service",
                "schema": {
                    "properties": {
                        "language": { "type": "string" },
                        "replicas": { "type": "number" },
                        "launched": { "type": "string", "format": "date-time" },
                        "tier": { "type": "string" },
                    },
                    "required": [],
                },
                "relations": { "owner": { "target": "team", "required": false, "many": false } },
            })),
        )
        .await
        .expect("service blueprint");
    for n in 0..TEAMS {
        let team = EntityInput {
            identifier: Some(team_id(n)),
            ..EntityInput::default()
        };
        catalog
            .create_entity(&admin, "team", team, OnExisting::Refuse)
            .await
            .expect("team created");
    }

    // Bulk load: IN_FLIGHT tasks pulling entity numbers from one counter.
    eprintln!("{backend:?}: loading {SERVICES} services...");
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..IN_FLIGHT)
        .map(|_| {
            let (catalog, admin, next) = (catalog.clone(), admin.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= SERVICES {
                        break;
                    }
                    let (_, created) = catalog
                        .create_entity(&admin, "service", service(i), OnExisting::Refuse)
                        .await
                        .unwrap_or_else(|e| panic!("service {i}: {e}"));
                    assert!(created);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("loader task");
    }
    let load_time = started.elapsed();
    assert_eq!(
        catalog
            .store()
            .count_entities("service")
            .await
            .expect("count"),
        SERVICES as u64
    );

    // Searches, one at a time; the kinds take turns so drift hits all of them alike. A kind that
    // has used up its time budget stops early (its sample count is printed).
    eprintln!("{backend:?}: searching...");
    let mut millis = vec![Vec::with_capacity(SEARCHES); KINDS.len()];
    let mut found = vec![0; KINDS.len()];
    for i in 0..SEARCHES {
        for (k, kind) in KINDS.into_iter().enumerate() {
            if millis[k].iter().sum::<f64>() > KIND_BUDGET.as_secs_f64() * 1e3 {
                continue;
            }
            let body = search_body(kind, i);
            let t = Instant::now();
            let (page, _) = catalog
                .search(&body, LIMIT, None)
                .await
                .unwrap_or_else(|e| panic!("search {body}: {e}"));
            millis[k].push(t.elapsed().as_secs_f64() * 1e3);
            assert!(!page.is_empty(), "no match for {body}");
            found[k] += page.len();
        }
    }

    drop(catalog);
    drop(database);
    Report {
        backend,
        load_rate: SERVICES as f64 / load_time.as_secs_f64(),
        load_time,
        found: found
            .iter()
            .zip(&millis)
            .map(|(n, runs)| n / runs.len())
            .collect(),
        searches: millis.into_iter().map(stats).collect(),
    }
}

fn main() {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let reports: Vec<Report> = backends()
        .into_iter()
        .map(|backend| tokio.block_on(bench(backend)))
        .collect();

    println!(
        "{SERVICES} services (+{TEAMS} teams) loaded through Catalog::create_entity, \
         {IN_FLIGHT} in flight; then {SEARCHES} searches of each kind, one at a time, \
         limit {LIMIT}; times in ms"
    );
    println!(
        "| backend | load entities/s | load total (s) | equality p50 | equality p99 \
         | range p50 | range p99 | date range p50 | date range p99 | relatedTo p50 \
         | relatedTo p99 |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &reports {
        let backend = match r.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        };
        let cells: Vec<String> = r
            .searches
            .iter()
            .map(|s| {
                let runs = if s.runs < SEARCHES {
                    format!(" (n={})", s.runs)
                } else {
                    String::new()
                };
                format!("{:.2} | {:.2}{runs}", s.p50, s.p99)
            })
            .collect();
        println!(
            "| {backend} | {:.0} | {:.1} | {} |",
            r.load_rate,
            r.load_time.as_secs_f64(),
            cells.join(" | ")
        );
    }
    println!(
        "a search kind over {}s in total stops early: (n=...) is how many ran",
        KIND_BUDGET.as_secs()
    );
    println!(
        "searches: equality = `language = <one of {}>`; range = `replicas between n and n+5`; \
         date range = `launched between` a {DATE_WINDOW_DAYS}-day window; relatedTo = services \
         downstream of team N",
        LANGUAGES.len()
    );
    for r in &reports {
        println!(
            "{:?}: mean hits per page (equality, range, date range, relatedTo): {:?}",
            r.backend, r.found
        );
    }
    println!("target (design): p99 <= {TARGET_P99_MS} ms for every search");
    for r in &reports {
        let over: Vec<&str> = KINDS
            .iter()
            .zip(&r.searches)
            .filter(|(_, s)| s.p99 > TARGET_P99_MS)
            .map(|(kind, _)| match kind {
                Kind::Equality => "equality",
                Kind::Range => "range",
                Kind::DateRange => "date range",
                Kind::RelatedTo => "relatedTo",
            })
            .collect();
        if over.is_empty() {
            println!("{:?}: every search within target", r.backend);
        } else {
            println!("{:?}: over target: {}", r.backend, over.join(", "));
        }
    }
}
