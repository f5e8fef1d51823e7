//! `portico demo`: the three example plugins, run the way actions will run them.

use portico_runtime::{
    Capabilities, Entity, EnvSecrets, Limits, Link, LogLevel, MemoryCatalog, Operation, RunEvents,
    RunJob, RunRequest, Runtime, RuntimeConfig, User,
};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Prints each event as it happens.
struct Print;

impl RunEvents for Print {
    fn log(&self, level: LogLevel, message: &str) {
        println!("    log {level:?}: {message}");
    }
    fn progress(&self, percent: Option<u8>, label: Option<&str>) {
        println!(
            "    progress {}% {}",
            percent.unwrap_or(0),
            label.unwrap_or("")
        );
    }
    fn link(&self, link: &Link) {
        println!("    link {}: {}", link.title, link.url);
    }
}

pub async fn run(plugins_dir: &Path, data_dir: &Path) -> Result<(), String> {
    let runtime = Runtime::new(RuntimeConfig::new(data_dir), Arc::new(EnvSecrets::new()))
        .map_err(|e| e.to_string())?;
    let catalog = Arc::new(MemoryCatalog::new());
    let receiver = webhook_receiver().await?;
    // SAFETY: set before any run reads secrets; the demo's own secret for its own receiver.
    unsafe { std::env::set_var("PORTICO_SECRET_DEMO_TOKEN", "demo-token") };

    let user = User {
        identifier: "alice".into(),
        email: Some("alice@example.com".into()),
        roles: vec!["member".into()],
        teams: vec!["payments".into()],
    };
    let service = Entity {
        identifier: "payments-api".into(),
        blueprint: "service".into(),
        title: None,
        team: vec![],
        properties: json!({}),
        relations: json!({}),
    };
    let steps = [
        (
            "scaffold_service",
            "scaffold_service.wasm",
            Operation::Create,
            None,
            json!({ "name": "payments-api", "language": "go", "team": "payments" }),
            json!({ "org": "acme" }),
            json!({ "catalog": { "write": ["service"] } }),
        ),
        (
            "change_replicas",
            "change_replicas.wasm",
            Operation::DayTwo,
            Some(service),
            json!({ "replicas": 3 }),
            json!({}),
            json!({ "catalog": { "write": ["service"] } }),
        ),
        (
            "call_webhook",
            "webhook.wasm",
            Operation::Create,
            None,
            json!({ "tag": "v1.2.3" }),
            json!({ "url": format!("http://{receiver}/deploy") }),
            json!({ "http": [ { "url": format!("http://{receiver}"),
                "headers": { "Authorization": "Bearer {{ .secrets.demo_token }}" } } ] }),
        ),
    ];

    for (i, (action, file, operation, entity, inputs, config, grant)) in
        steps.into_iter().enumerate()
    {
        let path = plugins_dir.join(file);
        let bytes = std::fs::read(&path).map_err(|e| {
            format!(
                "{}: {e} (build the plugins: cd plugins && cargo build --release)",
                path.display()
            )
        })?;
        let plugin = runtime
            .load_plugin(&bytes)
            .map_err(|e| format!("{file}: {e}"))?;
        let capabilities: Capabilities =
            serde_json::from_value(grant).map_err(|e| e.to_string())?;
        let grants = runtime
            .grants(&capabilities, Limits::default())
            .map_err(|e| e.to_string())?;
        println!(
            "run {} of {action} ({}, {:?})",
            i + 1,
            plugin.digest(),
            plugin.loaded_from()
        );
        let report = runtime
            .run(
                &plugin,
                RunJob {
                    request: RunRequest {
                        run_id: format!("r_demo_{}", i + 1),
                        action: action.into(),
                        operation,
                        inputs,
                        entity,
                        triggered_by: user.clone(),
                        config,
                    },
                    grants: Arc::new(grants),
                    catalog: catalog.clone(),
                    events: Arc::new(Print),
                    cancel: CancellationToken::new(),
                },
            )
            .await;
        match &report.result {
            Ok(outcome) => println!(
                "  SUCCESS in {:?}: {}",
                report.duration,
                outcome.summary.as_deref().unwrap_or("")
            ),
            Err(failure) => println!("  FAILURE ({}): {}", failure.kind, failure.message),
        }
        for affected in &report.affected_entities {
            println!(
                "  catalog {:?}: {}/{}",
                affected.change, affected.blueprint, affected.identifier
            );
        }
    }
    println!("catalog now holds:");
    for entity in catalog.entities() {
        println!(
            "  {}/{} {}",
            entity.blueprint, entity.identifier, entity.properties
        );
    }
    Ok(())
}

/// A local webhook receiver that prints what it gets and answers 200.
async fn webhook_receiver() -> Result<std::net::SocketAddr, String> {
    use http_body_util::{BodyExt, Full};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let service = hyper::service::service_fn(
                |req: hyper::Request<hyper::body::Incoming>| async move {
                    let auth = req
                        .headers()
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("(none)")
                        .to_owned();
                    let body = req.into_body().collect().await?.to_bytes();
                    let payload: Value = serde_json::from_slice(&body).unwrap_or_default();
                    println!(
                        "    receiver got authorization `{auth}` and inputs {}",
                        payload["inputs"]
                    );
                    Ok::<_, hyper::Error>(hyper::Response::new(Full::new(bytes::Bytes::from("ok"))))
                },
            );
            let io = hyper_util::rt::TokioIo::new(stream);
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(io, service));
        }
    });
    Ok(addr)
}
