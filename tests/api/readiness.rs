//! `/readyz`: a replica is ready when its database answers a ping within 2 s and its worker
//! loop (claims, lease renewals, timers) keeps turning; otherwise 503, naming the failed check,
//! while HTTP itself still answers. The stuck and unreachable cases use a real Postgres: a
//! table lock another session holds, a dropped database, and a network path that stops
//! forwarding.

use portico_tests::api::{Answer, Backend, Options, Portico};
use portico_tests::partition::Partition;
use serde_json::json;
use std::time::{Duration, Instant};

/// Asks `/readyz` until it answers `status` (or 60 s pass), answering that answer.
async fn ready_until(p: &Portico, status: u16) -> Answer {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answer = p.send("GET", "/readyz", None, None).await;
        if answer.status == status {
            return answer;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz never answered {status}; last: {} {}",
            answer.status,
            answer.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The Postgres server tests run against, when there is one.
fn postgres() -> Option<String> {
    std::env::var("PORTICO_TEST_POSTGRES_URL").ok()
}

#[tokio::test]
async fn a_replica_is_ready_when_its_database_answers_and_its_worker_loop_turns() {
    for p in Portico::each().await {
        let ready = p.send("GET", "/readyz", None, None).await;
        let body = ready.expect(200);
        assert_eq!(body["checks"]["database"]["ok"], true, "{body}");
        assert_eq!(body["checks"]["worker_loop"]["ok"], true, "{body}");
    }
}

#[tokio::test]
async fn a_replica_whose_worker_loop_stopped_is_not_ready_and_says_so() {
    for backend in portico_tests::api::backends() {
        let mut p = Portico::start(backend).await;
        p.send("GET", "/readyz", None, None).await.expect(200);
        p.stop_workers().await;

        let answer = p.send("GET", "/readyz", None, None).await;
        let body =
            answer.expect_error(503, "not_ready", "worker_loop: the worker loop has stopped");
        assert_eq!(body["failed"], json!(["worker_loop"]), "{body}");
        assert_eq!(
            body["checks"]["database"]["ok"], true,
            "the database still answers"
        );
        p.send("GET", "/healthz", None, None).await.expect(200);
    }
}

#[tokio::test]
async fn a_replica_whose_worker_loop_is_stuck_on_a_lock_is_not_ready_until_it_turns_again() {
    let Some(_) = postgres() else {
        return;
    };
    // The loop looks for runs every 100 ms; 2 s without a turn is stuck.
    let runner = portico_runs::runner::RunnerConfig {
        poll: Duration::from_millis(100),
        stuck_after: Duration::from_secs(2),
        ..portico_tests::api::runner_config()
    };
    let p = Portico::start_with(Backend::Postgres, runner).await;
    p.send("GET", "/readyz", None, None).await.expect(200);

    // Another session takes the runs table: the loop's next claim waits for it.
    let (blocker, connection) = tokio_postgres::connect(&p.database_url(), tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    blocker
        .batch_execute("BEGIN; LOCK TABLE runs IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock");

    let stuck = ready_until(&p, 503).await;
    let body = stuck.expect_error(
        503,
        "not_ready",
        "worker_loop: the worker loop has not turned",
    );
    assert_eq!(body["failed"], json!(["worker_loop"]), "{body}");
    assert_eq!(
        body["checks"]["database"]["ok"], true,
        "the database answers pings meanwhile: {body}"
    );

    blocker.batch_execute("ROLLBACK").await.expect("unlock");
    let ready = ready_until(&p, 200).await;
    assert_eq!(ready.body["checks"]["worker_loop"]["ok"], true);
}

#[tokio::test]
async fn a_replica_whose_database_is_gone_is_not_ready() {
    let Some(base) = postgres() else {
        return;
    };
    let p = Portico::start(Backend::Postgres).await;
    p.send("GET", "/readyz", None, None).await.expect(200);
    let name = p
        .postgres_database()
        .expect("a Postgres database")
        .to_owned();
    portico_tests::api::admin_sql(&base, &format!("DROP DATABASE {name} WITH (FORCE)")).await;

    let gone = ready_until(&p, 503).await;
    let body = gone.expect_error(503, "not_ready", "database: the database does not answer");
    assert!(
        body["failed"]
            .as_array()
            .is_some_and(|f| f.contains(&json!("database"))),
        "{body}"
    );
    assert_eq!(body["checks"]["database"]["ok"], false, "{body}");
}

#[tokio::test]
async fn a_replica_cut_off_from_its_database_is_not_ready_within_the_ping_timeout() {
    let Some(base) = postgres() else {
        return;
    };
    let partition = Partition::to_postgres(&base).await;
    let options = Options {
        database_via: Some(partition.addr),
        ..Options::default()
    };
    let p = Portico::start_options(Backend::Postgres, options).await;
    p.send("GET", "/readyz", None, None).await.expect(200);

    // Nothing reaches the database and nothing comes back: the ping hangs.
    partition.cut();
    let cut = ready_until(&p, 503).await;
    let body = cut.expect_error(
        503,
        "not_ready",
        "database: the database did not answer a ping within 2 s",
    );
    assert!(
        body["failed"]
            .as_array()
            .is_some_and(|f| f.contains(&json!("database"))),
        "{body}"
    );

    partition.heal();
    let ready = ready_until(&p, 200).await;
    assert_eq!(ready.body["checks"]["database"]["ok"], true);
}
