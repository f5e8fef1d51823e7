//! `portico apply` and `export` against a real server: create in dependency order, a second
//! apply changes nothing, `--dry-run`, `--prune` (only what an apply created), the export/apply
//! round trip, and actions copied from Port.

use crate::{Cli, write};
use portico_tests::api::{Portico, backends};
use serde_json::{Value, json};

fn config(plugin: &str) -> String {
    format!(
        "kind: Plugin\nname: noop\npath: {plugin}\n---\n\
         kind: Team\nname: payments\ndescription: Pays\n---\n\
         # The service points at the team: apply creates the team blueprint first.\n\
         kind: Blueprint\nidentifier: service\ntitle: Service\n\
         schema: {{properties: {{tier: {{type: string, enum: [gold, silver, yes, no]}}}}}}\n\
         relations: {{owner: {{target: team, title: Owner}}}}\n---\n\
         kind: Blueprint\nidentifier: team\ntitle: Team\n---\n\
         kind: Action\nidentifier: ping\ntitle: Ping\n\
         trigger: {{type: self-service, operation: DAY-2, blueprintIdentifier: service}}\n\
         invocationMethod: {{type: WASM, plugin: noop}}\n---\n\
         kind: Action\nidentifier: pong\ntitle: Pong\n\
         trigger: {{type: self-service, operation: CREATE, blueprintIdentifier: service}}\n\
         invocationMethod: {{type: WASM, plugin: noop}}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_creates_in_order_then_a_second_apply_changes_nothing() {
    for backend in backends() {
        let cli = Cli::new(Portico::start(backend).await);
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            dir.path(),
            "portico.yaml",
            &config(portico_tests::artifacts::NOOP),
        );

        let first = cli.run(&["apply", "-f", &file]).await;
        let out = first.expect(0);
        assert!(out.contains("+ blueprint team: created"), "{out}");
        assert!(
            out.contains("Applied: 6 created, 0 updated, 0 deleted, 0 unchanged."),
            "{out}"
        );
        let team = out.find("blueprint team").unwrap();
        assert!(
            team < out.find("blueprint service").unwrap(),
            "relation target first: {out}"
        );
        let service = cli
            .server
            .admin("GET", "/v1/blueprints/service", Value::Null)
            .await;
        assert_eq!(
            service.expect(200)["blueprint"]["schema"]["properties"]["tier"]["enum"],
            json!(["gold", "silver", "yes", "no"]),
            "YAML 1.1 booleans stay strings"
        );
        // Its relation's target was created first, so it was written once, relations and all.
        let writes = cli
            .server
            .admin(
                "GET",
                "/v1/audit-log?resource=blueprint&identifier=service",
                Value::Null,
            )
            .await;
        assert_eq!(writes.expect(200)["audit"].as_array().unwrap().len(), 1);

        let second = cli
            .run(&["apply", "-f", dir.path().to_str().unwrap()])
            .await;
        assert!(
            second
                .expect(0)
                .contains("No changes: the server matches the files (6 objects)."),
            "{}",
            second.stdout
        );

        // A change, first as a dry run: shown, not made.
        let changed =
            config(portico_tests::artifacts::NOOP).replace("title: Ping", "title: Ping it");
        write(dir.path(), "portico.yaml", &changed);
        let dry = cli.run(&["apply", "-f", &file, "--dry-run"]).await;
        let out = dry.expect(0);
        assert!(out.contains("~ action ping: would be updated"), "{out}");
        assert!(out.contains("~ title: \"Ping\" -> \"Ping it\""), "{out}");
        assert!(out.contains("Nothing was changed."), "{out}");
        let ping = cli
            .server
            .admin("GET", "/v1/actions/ping", Value::Null)
            .await;
        assert_eq!(ping.expect(200)["action"]["title"], "Ping");
        let applied = cli.run(&["apply", "-f", &file, "-o", "json"]).await;
        let summary: Value = serde_json::from_str(applied.expect(0)).expect("JSON");
        assert_eq!(summary["updated"], 1);
        let ping = cli
            .server
            .admin("GET", "/v1/actions/ping", Value::Null)
            .await;
        assert_eq!(ping.expect(200)["action"]["title"], "Ping it");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_deletes_only_what_an_apply_created() {
    for backend in backends() {
        let cli = Cli::new(Portico::start(backend).await);
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            dir.path(),
            "portico.yaml",
            &config(portico_tests::artifacts::NOOP),
        );
        cli.run(&["apply", "-f", &file]).await.expect(0);
        // Made by hand, through the API: never pruned.
        cli.server
            .admin(
                "POST",
                "/v1/actions",
                json!({ "identifier": "by_hand", "trigger": { "type": "self-service",
                    "operation": "CREATE" }, "invocationMethod": { "type": "WASM", "plugin": "noop" } }),
            )
            .await
            .expect(201);

        let without_pong = config(portico_tests::artifacts::NOOP);
        let without_pong = &without_pong[..without_pong.rfind("---").unwrap()];
        write(dir.path(), "portico.yaml", without_pong);
        let kept = cli.run(&["apply", "-f", &file]).await;
        assert!(
            kept.expect(0).contains("No changes"),
            "without --prune nothing is deleted"
        );
        let dry = cli
            .run(&["apply", "-f", &file, "--prune", "--dry-run"])
            .await;
        assert!(
            dry.expect(0)
                .contains("- action pong: would be deleted (pruned)"),
            "{}",
            dry.stdout
        );
        let pruned = cli.run(&["apply", "-f", &file, "--prune"]).await;
        let out = pruned.expect(0);
        assert!(out.contains("- action pong: deleted (pruned)"), "{out}");
        assert!(!out.contains("by_hand"), "{out}");
        cli.server
            .admin("GET", "/v1/actions/pong", Value::Null)
            .await
            .expect(404);
        cli.server
            .admin("GET", "/v1/actions/by_hand", Value::Null)
            .await
            .expect(200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_applies_back_without_changes() {
    for backend in backends() {
        let cli = Cli::new(Portico::with_examples(backend).await);
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("exported");
        let exported = cli.run(&["export", "-d", out.to_str().unwrap()]).await;
        assert!(
            exported.expect(0).contains("actions.yaml"),
            "{}",
            exported.stdout
        );
        let actions = std::fs::read_to_string(out.join("actions.yaml")).unwrap();
        assert!(actions.starts_with("kind: Action"), "{actions}");
        assert!(
            actions.contains("identifier: scaffold_service"),
            "{actions}"
        );

        let again = cli.run(&["apply", "-f", out.to_str().unwrap()]).await;
        assert!(again.expect(0).contains("No changes"), "{}", again.stdout);
        // The repository's examples are such files too.
        let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");
        let same = cli.run(&["apply", "-f", examples, "--dry-run"]).await;
        assert!(same.expect(0).contains("No changes"), "{}", same.stdout);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_copied_from_port_runs_on_the_webhook_plugin_or_is_refused_with_what_to_do() {
    let cli = Cli::new(Portico::with_examples(backends()[0]).await);
    let dir = tempfile::tempdir().unwrap();
    // As Port's documentation shows it: JSON, no `kind`.
    let webhook = write(
        dir.path(),
        "deploy.json",
        r#"{ "identifier": "deploy", "title": "Deploy",
             "trigger": { "type": "self-service", "operation": "CREATE",
               "userInputs": { "properties": { "tag": { "type": "string" } } } },
             "invocationMethod": { "type": "WEBHOOK", "url": "https://hooks.example.com/deploy",
               "agent": false, "synchronized": true, "method": "POST" } }"#,
    );
    let applied = cli.run(&["apply", "-f", &webhook]).await;
    applied.expect(0);
    assert!(
        applied.stderr.contains("runs as the `webhook` plugin"),
        "{}",
        applied.stderr
    );
    let action = cli
        .server
        .admin("GET", "/v1/actions/deploy", Value::Null)
        .await;
    let method = &action.expect(200)["action"]["invocationMethod"];
    assert_eq!(method["plugin"], "webhook");
    assert_eq!(
        method["capabilities"]["http"][0]["url"],
        "https://hooks.example.com"
    );

    let github = write(
        dir.path(),
        "gh.json",
        r#"{ "identifier": "gh", "trigger": { "type": "self-service", "operation": "CREATE" },
             "invocationMethod": { "type": "GITHUB", "org": "acme", "repo": "infra",
               "workflow": "deploy.yml" } }"#,
    );
    let refused = cli.run(&["apply", "-f", &github]).await;
    refused.expect(1);
    assert!(
        refused.stderr.contains("GitHub Actions workflow"),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("gh.json"), "{}", refused.stderr);

    // A server refusal names the document and the field.
    let bad = write(
        dir.path(),
        "bad.yaml",
        "kind: Action\nidentifier: bad\ntrigger: {type: self-service, operation: CREATE}\n\
         invocationMethod: {type: WASM, plugin: no-such-plugin}\n",
    );
    let refused = cli.run(&["apply", "-f", &bad]).await;
    refused.expect(3);
    assert!(
        refused.stderr.contains("action bad (") && refused.stderr.contains("bad.yaml"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("invocationMethod.plugin"),
        "{}",
        refused.stderr
    );
}
