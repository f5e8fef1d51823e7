//! `portico plugin new` and `portico plugin test`: a scaffolded plugin built for real and run,
//! and built plugins run with and without the grant they need.

use crate::portico;
use portico_tests::artifacts;
use portico_tests::server::TestServer;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

/// The repository this test was built from.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `portico` with a plugin cache shared by this process's tests (each plugin is compiled once)
/// and kept away from the developer's own.
fn plugin_cmd(dir: &Path) -> assert_cmd::Command {
    static CACHE: OnceLock<tempfile::TempDir> = OnceLock::new();
    let cache = CACHE.get_or_init(|| tempfile::tempdir().expect("temp dir"));
    let mut command = portico(dir);
    command.env("PORTICO_CACHE_DIR", cache.path());
    command
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// An action running `plugin` with these inputs and this invocationMethod's other fields.
fn write_action(dir: &Path, plugin: &str, user_inputs: Value, method: Value) -> PathBuf {
    let mut invocation = json!({ "type": "WASM", "plugin": plugin });
    for (k, v) in method.as_object().expect("an object") {
        invocation[k] = v.clone();
    }
    let action = json!({
        "identifier": format!("try-{plugin}"),
        "trigger": { "type": "self-service", "operation": "CREATE", "userInputs": user_inputs },
        "invocationMethod": invocation,
    });
    let path = dir.join("action.json");
    std::fs::write(&path, action.to_string()).expect("write action.json");
    path
}

#[test]
fn a_new_plugin_builds_and_runs_as_scaffolded() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = dir.path().join("hello-plugin");
    let output = plugin_cmd(dir.path())
        .args(["plugin", "new", "hello-plugin", "--dir"])
        .arg(&plugin)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    for file in [
        "Cargo.toml",
        ".cargo/config.toml",
        "src/lib.rs",
        "action.json",
        "catalog.json",
        "README.md",
    ] {
        assert!(plugin.join(file).is_file(), "{file} is missing");
    }
    let readme = std::fs::read_to_string(plugin.join("README.md")).unwrap();
    for command in [
        "cargo build --release",
        "portico plugin test target/wasm32-wasip2/release/hello_plugin.wasm",
        "portico plugins push hello-plugin",
        "portico apply -f action.json",
    ] {
        assert!(readme.contains(command), "README lacks `{command}`");
    }

    // Built like the first-party plugins, reusing their compiled dependencies.
    std::fs::copy(repo().join("plugins/Cargo.lock"), plugin.join("Cargo.lock")).unwrap();
    let target = repo().join("plugins/target");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let built = std::process::Command::new(cargo)
        .current_dir(&plugin)
        .args(["build", "--release"])
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .output()
        .unwrap();
    let (_, build_log) = text(&built);
    assert!(built.status.success(), "cargo build failed:\n{build_log}");
    // Moved out at once: the first-party plugins' folder is what `scripts/run` loads.
    let release = target.join("wasm32-wasip2/release");
    let wasm = plugin.join("hello_plugin.wasm");
    std::fs::copy(release.join("hello_plugin.wasm"), &wasm).unwrap();
    for leftover in ["hello_plugin.wasm", "hello_plugin.d"] {
        let _ = std::fs::remove_file(release.join(leftover));
    }

    scaffold_runs_locally(dir.path(), &plugin, &wasm);

    // The same run for scripts: one JSON object per event.
    let output = plugin_cmd(dir.path())
        .current_dir(&plugin)
        .args(["plugin", "test"])
        .arg(&wasm)
        .args(["--action", "action.json", "--output", "json"])
        .args(["--inputs", r#"{"name": "checkout"}"#])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    let events: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let first = &events[0];
    assert_eq!(first["event"], "plugin");
    assert_eq!(first["compiled"], false, "compiled once, then cached");
    let upsert = json!({ "event": "catalog", "operation": "upsert", "blueprint": "service",
                         "identifier": "checkout", "allowed": true, "result": "stored" });
    assert!(events.contains(&upsert), "{stdout}");
    let outcome = events.iter().find(|e| e["event"] == "outcome").unwrap();
    assert_eq!(outcome["status"], "SUCCESS");
    assert_eq!(outcome["summary"], "Service checkout registered in dev");

    // Then the README's last steps: pushed to a server with the examples, its action applied,
    // and run there as it ran locally.
    let server = tokio::runtime::Runtime::new().unwrap();
    server.block_on(async {
        let cli = crate::Cli::new(
            portico_tests::api::Portico::with_examples(portico_tests::api::backends()[0]).await,
        );
        let wasm = wasm.to_str().unwrap();
        cli.run(&["plugins", "push", "hello-plugin", wasm])
            .await
            .expect(0);
        let action = plugin.join("action.json");
        cli.run(&["apply", "-f", action.to_str().unwrap()])
            .await
            .expect(0);
        let ran = cli
            .run(&["run", "hello-plugin", "-i", "name=checkout", "--follow"])
            .await;
        assert!(ran.expect(0).contains("Service checkout registered in dev"));
    });
}

#[test]
fn a_request_outside_the_grant_is_shown_denied_and_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = json!({ "properties": { "url": { "type": "string" } }, "required": ["url"] });
    let action = write_action(dir.path(), "http-get", inputs, json!({}));
    let output = plugin_cmd(dir.path())
        .args(["plugin", "test", artifacts::HTTP_GET, "--action"])
        .arg(&action)
        .args(["--inputs", r#"{"url": "http://example.com/deploy"}"#])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(4), "{stdout}\n{stderr}");
    let denied = "http     GET http://example.com/deploy: DENIED: HTTP request to \
                  http://example.com:80 denied: the origin is not in the action's \
                  capabilities.http grant (granted: none)";
    assert!(stdout.contains(denied), "{stdout}");
    assert!(
        !stdout.contains("log      warn  HTTP request to"),
        "the runtime's log line about the denial is shown once, as the call:\n{stdout}"
    );
    assert!(stdout.contains("FAILURE (denied)"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_granted_request_gets_the_secret_and_the_output_never_shows_it() {
    const SECRET: &str = "hook-secret-3f9a1c";
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let inputs = json!({ "properties": { "tag": { "type": "string" } }, "required": ["tag"] });
    let method = json!({
        "config": { "url": server.url("/deploy") },
        "capabilities": { "http": [ { "url": server.origin(),
            "headers": { "Authorization": "Bearer {{ .secrets.hook_token }}" } } ] },
    });
    let action = write_action(dir.path(), "webhook", inputs, method);
    // The secret typed into an input too: printed text masks it wherever it appears.
    let run_inputs = json!({ "tag": format!("v1-{SECRET}") }).to_string();
    let mut command = plugin_cmd(dir.path());
    command
        .args(["plugin", "test", artifacts::WEBHOOK, "--action"])
        .arg(&action)
        .args(["--inputs", &run_inputs])
        .args(["--secret", &format!("hook_token={SECRET}")]);
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    let allowed = format!("http     POST {}: allowed, 200", server.url("/deploy"));
    assert!(stdout.contains(&allowed), "{stdout}");
    assert!(stdout.contains("[REDACTED]"), "{stdout}");
    assert!(
        !stdout.contains(SECRET) && !stderr.contains(SECRET),
        "{stdout}\n{stderr}"
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let expected = format!("Bearer {SECRET}");
    assert_eq!(requests[0].header("authorization"), Some(expected.as_str()));
}

#[test]
fn invalid_inputs_are_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = json!({
        "properties": { "name": { "type": "string", "pattern": "^[a-z]+$" },
                        "replicas": { "type": "number", "maximum": 10 } },
        "required": ["name"],
    });
    let action = write_action(dir.path(), "noop", inputs, json!({}));
    let output = plugin_cmd(dir.path())
        .args(["plugin", "test", artifacts::NOOP, "--action"])
        .arg(&action)
        .args(["--inputs", r#"{"name": "Not Valid!", "replicas": 99}"#])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(stderr.contains("properties.name"), "{stderr}");
    assert!(stderr.contains("properties.replicas"), "{stderr}");
    assert!(stdout.is_empty(), "nothing ran: {stdout}");

    // A grant the server would refuse is refused here too, naming its path.
    let method = json!({ "limits": { "timeoutSeconds": 0 } });
    let action = write_action(dir.path(), "noop", json!({"properties": {}}), method);
    let output = plugin_cmd(dir.path())
        .args(["plugin", "test", artifacts::NOOP, "--action"])
        .arg(&action)
        .output()
        .unwrap();
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("invocationMethod.limits.timeoutSeconds"),
        "{stderr}"
    );
}

#[test]
fn plugin_new_refuses_a_bad_name_and_a_folder_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let output = plugin_cmd(dir.path())
        .current_dir(dir.path())
        .args(["plugin", "new", "My_Plugin"])
        .output()
        .unwrap();
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("^[a-z][a-z0-9-]{0,62}$"), "{stderr}");
    assert!(!dir.path().join("My_Plugin").exists());

    std::fs::create_dir(dir.path().join("taken")).unwrap();
    std::fs::write(dir.path().join("taken/notes.txt"), "mine").unwrap();
    let output = plugin_cmd(dir.path())
        .current_dir(dir.path())
        .args(["plugin", "new", "taken"])
        .output()
        .unwrap();
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("already exists and is not empty"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join("taken")).unwrap().count(),
        1
    );
}

/// Runs a command in `dir` and insists it succeeds, answering its output.
fn must(command: &mut std::process::Command) -> String {
    let output = command.output().unwrap();
    let (stdout, stderr) = text(&output);
    assert!(
        output.status.success(),
        "{command:?} failed:\n{stdout}\n{stderr}"
    );
    stdout
}

/// `plugin test` of a scaffolded plugin's component: the same lines in every language.
fn scaffold_runs_locally(dir: &Path, plugin: &Path, wasm: &Path) {
    let output = plugin_cmd(dir)
        .current_dir(plugin)
        .args(["plugin", "test"])
        .arg(wasm)
        .args(["--action", "action.json", "--catalog", "catalog.json"])
        .args([
            "--inputs",
            r#"{"name": "checkout", "environment": "staging"}"#,
        ])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    for line in [
        "log      info  registering checkout in staging",
        "progress 30% Checking the catalog",
        "catalog  get service/checkout: allowed, not found",
        "catalog  upsert service/checkout: allowed, stored",
        "link     Service: https://portal.example.com/service/checkout",
        "SUCCESS in ",
        "Service checkout registered in staging",
        "  upserted service/checkout {\"description\":\"checkout (staging), registered by plugin-author\"}",
    ] {
        assert!(stdout.contains(line), "no `{line}` in:\n{stdout}\n{stderr}");
    }
}

#[test]
fn a_new_python_plugin_builds_tests_and_runs_on_a_server_as_its_readme_says() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = dir.path().join("hello-py");
    plugin_cmd(dir.path())
        .current_dir(dir.path())
        .args(["plugin", "new", "hello-py", "--lang", "python"])
        .assert()
        .success();
    let readme = std::fs::read_to_string(plugin.join("README.md")).unwrap();
    let sdk = repo().join("sdk").canonicalize().unwrap();
    let install = format!(
        ".venv/bin/pip install componentize-py==0.25.1 {}/python",
        sdk.display()
    );
    for command in [
        "python3 -m venv .venv",
        install.as_str(),
        "portico plugin build",
        ".venv/bin/python -m unittest",
        "portico plugin test dist/hello-py.wasm",
        "portico plugins push hello-py dist/hello-py.wasm",
    ] {
        assert!(
            readme.contains(command),
            "README lacks `{command}`:\n{readme}"
        );
    }

    // The README's steps, in order.
    must(
        std::process::Command::new("python3")
            .current_dir(&plugin)
            .args(["-m", "venv", ".venv"]),
    );
    must(
        std::process::Command::new(plugin.join(".venv/bin/pip"))
            .current_dir(&plugin)
            .args(["install", "-q", "componentize-py==0.25.1"])
            .arg(sdk.join("python")),
    );
    must(
        std::process::Command::new(plugin.join(".venv/bin/python"))
            .current_dir(&plugin)
            .args(["-m", "unittest"]),
    );
    plugin_cmd(dir.path())
        .current_dir(&plugin)
        .args(["plugin", "build"])
        .assert()
        .success();
    let wasm = plugin.join("dist/hello-py.wasm");
    assert!(wasm.is_file(), "plugin build wrote no dist/hello-py.wasm");
    scaffold_runs_locally(dir.path(), &plugin, &wasm);

    // Pushed, it compiles on the server in the background; push waits for it, then it runs.
    let server = tokio::runtime::Runtime::new().unwrap();
    server.block_on(async {
        let cli = crate::Cli::new(
            portico_tests::api::Portico::with_examples(portico_tests::api::backends()[0]).await,
        );
        let wasm = wasm.to_str().unwrap();
        let pushed = cli.run(&["plugins", "push", "hello-py", wasm]).await;
        let pushed = pushed.expect(0);
        assert!(pushed.contains("Pushed hello-py"), "{pushed}");
        let action = plugin.join("action.json");
        cli.run(&["apply", "-f", action.to_str().unwrap()])
            .await
            .expect(0);
        let ran = cli
            .run(&["run", "hello-py", "-i", "name=checkout", "--follow"])
            .await;
        assert!(ran.expect(0).contains("Service checkout registered in dev"));
    });
}

#[test]
fn a_new_typescript_plugin_builds_and_runs_as_its_readme_says() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = dir.path().join("hello-ts");
    plugin_cmd(dir.path())
        .current_dir(dir.path())
        .args(["plugin", "new", "hello-ts", "--lang", "js"])
        .assert()
        .success();
    for file in [
        "package.json",
        "src/index.ts",
        "src/service.ts",
        "action.json",
        "catalog.json",
    ] {
        assert!(plugin.join(file).is_file(), "{file} is missing");
    }
    let readme = std::fs::read_to_string(plugin.join("README.md")).unwrap();
    for command in [
        "npm install",
        "portico plugin build",
        "portico plugin test dist/hello-ts.wasm",
    ] {
        assert!(
            readme.contains(command),
            "README lacks `{command}`:\n{readme}"
        );
    }

    // `npm install` links the SDK (whose pinned build tools scripts/setup installed).
    must(
        std::process::Command::new("npm")
            .current_dir(&plugin)
            .args(["install", "--no-audit", "--no-fund", "--loglevel=error"]),
    );
    plugin_cmd(dir.path())
        .current_dir(&plugin)
        .args(["plugin", "build"])
        .assert()
        .success();
    let wasm = plugin.join("dist/hello-ts.wasm");
    assert!(wasm.is_file(), "plugin build wrote no dist/hello-ts.wasm");
    scaffold_runs_locally(dir.path(), &plugin, &wasm);
}
