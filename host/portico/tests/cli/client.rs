//! `portico` as a client of a real server: contexts, running actions to each outcome with the
//! documented exit codes, runs, the catalog, plugins and the audit log.

use crate::{Cli, write};
use portico_tests::api::{Portico, backends};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_saves_a_private_context_that_later_commands_use() {
    let cli = Cli::new(Portico::with_examples(backends()[0]).await);
    let url = cli.server.url.clone();

    let refused = cli
        .run_bare(
            &["login", "--url", &url, "--name", "dev"],
            Some("not-a-token\n"),
        )
        .await;
    refused.expect(3);
    assert!(
        refused.stderr.contains("unknown token"),
        "{}",
        refused.stderr
    );

    let token = format!("{}\n", cli.token);
    let said = cli
        .run_bare(&["login", "--url", &url, "--name", "dev"], Some(&token))
        .await;
    assert!(said.expect(0).contains("as context `dev`"));
    let file = cli.home.path().join("config.toml");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the contexts file holds tokens");
    }

    let listed = cli.run_bare(&["actions", "list"], None).await;
    let table = listed.expect(0);
    assert!(table.contains("scaffold_service"), "{table}");
    assert!(table.contains("IDENTIFIER"), "{table}");
    let contexts = cli.run_bare(&["context", "list"], None).await;
    assert!(contexts.expect(0).contains(&url));

    let none = cli.run_bare(&["context", "use", "prod"], None).await;
    none.expect(1);
    assert!(none.stderr.contains("no context `prod`"), "{}", none.stderr);
    cli.run_bare(&["context", "remove", "dev"], None)
        .await
        .expect(0);
    let nothing = cli.run_bare(&["actions", "list"], None).await;
    nothing.expect(1);
    assert!(
        nothing.stderr.contains("portico login --url"),
        "{}",
        nothing.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_followed_run_prints_its_log_live_and_exits_0_on_success() {
    for backend in backends() {
        let cli = Cli::new(Portico::with_examples(backend).await);
        let ran = cli
            .run(&[
                "run",
                "scaffold_service",
                "--input",
                "name=payments-api",
                "--input",
                "language=rust",
                "--follow",
            ])
            .await;
        let out = ran.expect(0);
        assert!(out.contains("INFO"), "log lines are printed: {out}");
        assert!(out.contains("SUCCESS"), "{out}");
        assert!(out.contains("https://"), "the run's link: {out}");

        // What it wrote is in the catalog, readable from the command line.
        let entity = cli
            .run(&["entities", "get", "service", "payments-api", "-o", "json"])
            .await;
        let entity: Value = serde_json::from_str(entity.expect(0)).expect("JSON");
        assert_eq!(entity["properties"]["language"], "rust");
        let found = cli
            .run(&[
                "entities",
                "search",
                "-b",
                "service",
                "--where",
                "language=rust",
            ])
            .await;
        assert!(found.expect(0).contains("payments-api"));

        // The run, its log and the audit log.
        let runs = cli
            .run(&["runs", "list", "--action", "scaffold_service", "-o", "json"])
            .await;
        let runs: Value = serde_json::from_str(runs.expect(0)).expect("JSON");
        let id = runs[0]["id"].as_str().expect("a run").to_owned();
        assert_eq!(runs[0]["status"], "SUCCESS");
        let shown = cli.run(&["runs", "get", &id]).await;
        assert!(shown.expect(0).contains("SUCCESS"));
        let log = cli.run(&["runs", "logs", &id]).await;
        assert!(log.expect(0).lines().count() >= 2, "{}", log.stdout);
        let audit = cli
            .run(&["audit", "--resource", "entity", "-o", "yaml"])
            .await;
        assert!(
            audit.expect(0).contains("service/payments-api"),
            "{}",
            audit.stdout
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_exits_4_and_says_why() {
    for backend in backends() {
        let cli = Cli::new(Portico::start(backend).await);
        let pushed = cli
            .run(&["plugins", "push", "panic", portico_tests::artifacts::PANIC])
            .await;
        assert!(pushed.expect(0).contains("sha256:"), "{}", pushed.stdout);
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            dir.path(),
            "panics.yaml",
            "kind: Action\nidentifier: panics\ntrigger: {type: self-service, operation: CREATE}\n\
             invocationMethod: {type: WASM, plugin: panic}\n",
        );
        cli.run(&["apply", "-f", &file]).await.expect(0);

        let ran = cli.run(&["run", "panics", "--follow"]).await;
        let out = ran.expect(4);
        assert!(out.contains("FAILURE"), "{out}");
        let waited = cli.run(&["run", "panics", "--wait", "-o", "json"]).await;
        let run: Value = serde_json::from_str(waited.expect(4)).expect("JSON");
        assert_eq!(run["status"], "FAILURE");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_inputs_exit_3_naming_each_field() {
    let cli = Cli::new(Portico::with_examples(backends()[0]).await);
    let ran = cli
        .run(&["run", "scaffold_service", "--input", "name=Not_Valid"])
        .await;
    ran.expect(3);
    assert!(ran.stderr.contains("name"), "{}", ran.stderr);
    assert!(ran.stderr.contains("does not match"), "{}", ran.stderr);

    // Inputs are read by their declared type: `replicas=abc` is caught before the server.
    let ran = cli
        .run(&[
            "run",
            "change_replicas",
            "--entity",
            "x",
            "--input",
            "replicas=abc",
        ])
        .await;
    ran.expect(1);
    assert!(
        ran.stderr
            .contains("--input replicas: `abc` is not a number"),
        "{}",
        ran.stderr
    );

    let ran = cli.run(&["run", "no_such_action"]).await;
    ran.expect(3);
    assert!(ran.stderr.contains("no_such_action"), "{}", ran.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_run_exits_6_and_approvers_decide_from_the_command_line() {
    for backend in backends() {
        let cli = Cli::new(Portico::with_examples(backend).await);
        let bob = cli.server.member("bob", &["payments"]).await;
        // Over 24 hours needs the platform team's (or an admin's) approval.
        let asked = cli
            .run_as(
                &bob,
                &[
                    "run",
                    "provision_dev_environment",
                    "-i",
                    "name=dev-bob",
                    "-i",
                    "ttl=48h",
                    "-o",
                    "json",
                ],
                None,
            )
            .await;
        let run: Value = serde_json::from_str(asked.expect(0)).expect("JSON");
        assert_eq!(run["status"], "WAITING_FOR_APPROVAL");
        let id = run["id"].as_str().unwrap();

        let declined = cli
            .run(&["runs", "decline", id, "--reason", "48h is too long"])
            .await;
        assert!(declined.expect(0).contains("DECLINED"));
        let followed = cli.run_as(&bob, &["runs", "logs", "-f", id], None).await;
        followed.expect(6);

        // Approving your own run is refused with the rule's words (exit 3).
        let again = cli
            .run(&[
                "run",
                "provision_dev_environment",
                "-i",
                "name=dev-admin",
                "-i",
                "ttl=48h",
                "-o",
                "json",
            ])
            .await;
        let run: Value = serde_json::from_str(again.expect(0)).expect("JSON");
        let own = cli
            .run(&["runs", "approve", run["id"].as_str().unwrap()])
            .await;
        own.expect(3);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_are_json_yaml_or_tables_and_completions_are_generated() {
    let cli = Cli::new(Portico::with_examples(backends()[0]).await);
    let json = cli.run(&["blueprints", "list", "-o", "json"]).await;
    let list: Value = serde_json::from_str(json.expect(0)).expect("JSON");
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|b| b["identifier"] == "service")
    );
    let yaml = cli
        .run(&["blueprints", "get", "service", "-o", "yaml"])
        .await;
    assert!(
        yaml.expect(0).contains("identifier: service"),
        "{}",
        yaml.stdout
    );
    let table = cli.run(&["plugins", "list"]).await;
    let table = table.expect(0);
    assert!(table.contains("scaffold-service"), "{table}");
    assert!(
        !table.contains('\u{1b}'),
        "no colour without a terminal: {table:?}"
    );

    let bash = cli.run_bare(&["completions", "bash"], None).await;
    assert!(
        bash.expect(0).contains("_portico"),
        "a bash completion function"
    );
}

/// A proxy to `upstream` that cuts each of its first `cuts` connections after `budget` bytes of
/// answer, as a flaky network or an impatient load balancer would.
async fn cutting_proxy(upstream: String, cuts: usize, budget: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let upstream = upstream.trim_start_matches("http://").to_owned();
    tokio::spawn(async move {
        let mut accepted = 0;
        while let Ok((mut client, _)) = listener.accept().await {
            accepted += 1;
            let budget = if accepted <= cuts { budget } else { usize::MAX };
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await else {
                    return;
                };
                let (mut client_read, mut client_write) = client.split();
                let (mut server_read, mut server_write) = server.split();
                let up = tokio::io::copy(&mut client_read, &mut server_write);
                let down = async {
                    let mut sent = 0;
                    let mut buf = vec![0u8; 256];
                    while sent < budget {
                        let n = server_read.read(&mut buf).await.unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        let n = n.min(budget - sent);
                        if client_write.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                        sent += n;
                    }
                };
                tokio::select! { _ = up => {}, _ = down => {} }
            });
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follow_resumes_after_a_dropped_connection_without_losing_or_repeating_lines() {
    let cli = Cli::new(Portico::with_examples(backends()[0]).await);
    let started = cli
        .run(&[
            "run",
            "scaffold_service",
            "-i",
            "name=flaky-api",
            "-o",
            "json",
        ])
        .await;
    let run: Value = serde_json::from_str(started.expect(0)).expect("JSON");
    let id = run["id"].as_str().unwrap().to_owned();

    // The first three connections through the proxy are cut after 400 bytes.
    let proxy = cutting_proxy(cli.server.url.clone(), 3, 400).await;
    let mut command = crate::portico(cli.home.path());
    command
        .env("PORTICO_URL", &proxy)
        .env("PORTICO_TOKEN", &cli.token)
        .args(["runs", "logs", "-f", &id]);
    let followed = crate::run_blocking(command).await;
    let out = followed.expect(0);

    let full = cli.run(&["runs", "logs", &id]).await;
    let expected: Vec<&str> = full.expect(0).lines().collect();
    assert!(expected.len() >= 3, "{expected:?}");
    let printed: Vec<&str> = out.lines().take_while(|l| !l.starts_with("Run ")).collect();
    assert_eq!(printed, expected, "every line once, in order\n{out}");
}
