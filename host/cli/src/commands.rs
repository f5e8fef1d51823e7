//! The client's simple commands: contexts, and reading the server's actions, catalog, plugins
//! and audit log.

use crate::Global;
use crate::config::{Context, Contexts};
use crate::error::CliError;
use crate::output::{Format, cell, text};
use clap::{Args, Subcommand};
use comfy_table::Cell;
use reqwest::Method;
use serde_json::{Value, json};
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

/// `portico login`.
#[derive(Args)]
pub struct LoginArgs {
    /// The server, e.g. `https://portico.example.com`.
    #[arg(long)]
    pub url: String,
    /// The context's name (default: the URL's host and port).
    #[arg(long)]
    pub name: Option<String>,
}

/// Checks the token against the server, saves the context and makes it current.
pub async fn login(args: LoginArgs) -> Result<(), CliError> {
    let token = match std::env::var("PORTICO_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
    {
        Some(token) => token,
        None => {
            if std::io::stdin().is_terminal() {
                eprint!("Token for {}: ", args.url);
            }
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim().to_owned()
        }
    };
    if token.is_empty() {
        return Err(CliError::Local(
            "no token: pipe it on stdin or set PORTICO_TOKEN".into(),
        ));
    }
    let url = args.url.trim_end_matches('/').to_owned();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(CliError::Local(format!(
            "--url `{url}` must start with http:// or https://"
        )));
    }
    let context = Context {
        url: url.clone(),
        token,
    };
    // A token the server refuses is not saved.
    crate::client::Client::new(&context)?
        .get("/v1/actions")
        .await?;
    let name = args.name.unwrap_or_else(|| {
        url.split("://")
            .nth(1)
            .unwrap_or(&url)
            .split('/')
            .next()
            .unwrap_or(&url)
            .to_owned()
    });
    let mut contexts = Contexts::load()?;
    contexts.contexts.insert(name.clone(), context);
    contexts.current = Some(name.clone());
    let path = contexts.save()?;
    println!(
        "Logged in to {url} as context `{name}` ({}).",
        path.display()
    );
    Ok(())
}

/// `portico context`.
#[derive(Subcommand)]
pub enum ContextCommand {
    /// The saved servers; `*` marks the current one.
    List,
    /// Makes a saved server the current one.
    Use {
        /// Its name.
        name: String,
    },
    /// Forgets a saved server and its token.
    Remove {
        /// Its name.
        name: String,
    },
}

/// Lists, switches or removes contexts.
pub fn context(command: ContextCommand, global: &Global) -> Result<(), CliError> {
    let mut contexts = Contexts::load()?;
    let unknown =
        |name: &str| CliError::Local(format!("no context `{name}`; see `portico context list`"));
    match command {
        ContextCommand::List => {
            let listed: Vec<Value> = contexts
                .contexts
                .iter()
                .map(|(name, c)| {
                    json!({ "name": name, "url": c.url,
                        "current": contexts.current.as_deref() == Some(name) })
                })
                .collect();
            let rows = listed
                .iter()
                .map(|c| {
                    let mark = if c["current"] == true { "*" } else { "" };
                    vec![Cell::new(mark), cell(&c["name"]), cell(&c["url"])]
                })
                .collect();
            global
                .out()
                .rows(&Value::Array(listed), &["", "name", "url"], rows);
        }
        ContextCommand::Use { name } => {
            if !contexts.contexts.contains_key(&name) {
                return Err(unknown(&name));
            }
            contexts.current = Some(name.clone());
            contexts.save()?;
            println!("Now using `{name}`.");
        }
        ContextCommand::Remove { name } => {
            if contexts.contexts.remove(&name).is_none() {
                return Err(unknown(&name));
            }
            if contexts.current.as_deref() == Some(&name) {
                contexts.current = None;
            }
            contexts.save()?;
            println!("Removed `{name}`.");
        }
    }
    Ok(())
}

/// `portico actions`.
#[derive(Subcommand)]
pub enum ActionsCommand {
    /// Every action: identifier, title, operation, blueprint, plugin.
    List,
    /// One action's definition.
    Get {
        /// Its identifier.
        identifier: String,
    },
}

/// Lists or shows actions.
pub async fn actions(command: ActionsCommand, global: &Global) -> Result<(), CliError> {
    let client = global.client()?;
    let out = global.out();
    match command {
        ActionsCommand::List => {
            let body = client.get("/v1/actions").await?;
            let rows = list(&body["actions"])
                .map(|a| {
                    vec![
                        cell(&a["identifier"]),
                        cell(&a["title"]),
                        Cell::new(match a["trigger"]["type"].as_str() {
                            Some("automation") => "automation".into(),
                            _ => text(&a["trigger"]["operation"]),
                        }),
                        cell(&a["trigger"]["blueprintIdentifier"]),
                        cell(&a["invocationMethod"]["plugin"]),
                    ]
                })
                .collect();
            out.rows(
                &body["actions"],
                &["identifier", "title", "operation", "blueprint", "plugin"],
                rows,
            );
        }
        ActionsCommand::Get { identifier } => {
            let body = client.get(&format!("/v1/actions/{identifier}")).await?;
            out.document(&body["action"], Format::Json);
        }
    }
    Ok(())
}

/// `portico blueprints`.
#[derive(Subcommand)]
pub enum BlueprintsCommand {
    /// Every blueprint.
    List,
    /// One blueprint's definition.
    Get {
        /// Its identifier.
        identifier: String,
    },
}

/// Lists or shows blueprints.
pub async fn blueprints(command: BlueprintsCommand, global: &Global) -> Result<(), CliError> {
    let client = global.client()?;
    let out = global.out();
    match command {
        BlueprintsCommand::List => {
            let body = client.get("/v1/blueprints").await?;
            let rows = list(&body["blueprints"])
                .map(|b| {
                    let props = b["schema"]["properties"]
                        .as_object()
                        .map(|p| p.keys().cloned().collect::<Vec<_>>().join(", "))
                        .unwrap_or_default();
                    let relations = b["relations"]
                        .as_object()
                        .map(|r| r.keys().cloned().collect::<Vec<_>>().join(", "))
                        .unwrap_or_default();
                    vec![
                        cell(&b["identifier"]),
                        cell(&b["title"]),
                        Cell::new(props),
                        Cell::new(relations),
                    ]
                })
                .collect();
            out.rows(
                &body["blueprints"],
                &["identifier", "title", "properties", "relations"],
                rows,
            );
        }
        BlueprintsCommand::Get { identifier } => {
            let body = client.get(&format!("/v1/blueprints/{identifier}")).await?;
            out.document(&body["blueprint"], Format::Json);
        }
    }
    Ok(())
}

/// `portico entities`.
#[derive(Subcommand)]
pub enum EntitiesCommand {
    /// One entity.
    Get {
        /// Its blueprint.
        blueprint: String,
        /// Its identifier.
        identifier: String,
    },
    /// Entities matching rules: `--where language=go --where replicas>2`, or a Port query.
    Search {
        /// Only this blueprint's entities.
        #[arg(long, short)]
        blueprint: Option<String>,
        /// A rule `property=value`, `property!=value`, `property>value`, `property<value` or
        /// `property~text` (contains); `$title`, `$identifier` and `$team` are meta-properties.
        #[arg(long = "where", short = 'w', value_name = "RULE")]
        rules: Vec<String>,
        /// A Port search query (`{"combinator": "and", "rules": [...]}`), as JSON, or `@FILE`.
        #[arg(long, conflicts_with = "rules")]
        query: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

/// Reads entities.
pub async fn entities(command: EntitiesCommand, global: &Global) -> Result<(), CliError> {
    let client = global.client()?;
    let out = global.out();
    match command {
        EntitiesCommand::Get {
            blueprint,
            identifier,
        } => {
            let body = client
                .get(&format!("/v1/blueprints/{blueprint}/entities/{identifier}"))
                .await?;
            out.document(&body["entity"], Format::Yaml);
        }
        EntitiesCommand::Search {
            blueprint,
            rules,
            query,
            limit,
        } => {
            let mut query = match query {
                Some(q) => read_json_arg("--query", &q)?,
                None => {
                    let rules = rules
                        .iter()
                        .map(|r| rule(r))
                        .collect::<Result<Vec<_>, _>>()?;
                    json!({ "combinator": "and", "rules": rules })
                }
            };
            if let Some(blueprint) = blueprint {
                let rules = query["rules"].as_array().cloned().unwrap_or_default();
                let mut all =
                    vec![json!({ "property": "$blueprint", "operator": "=", "value": blueprint })];
                all.extend(rules);
                query = json!({ "combinator": "and", "rules": all });
            }
            let request = client
                .request(Method::POST, "/v1/entities/search")
                .query(&[("limit", limit)])
                .json(&query);
            let body = client.send(request).await?;
            let rows = list(&body["entities"])
                .map(|e| {
                    vec![
                        cell(&e["blueprint"]),
                        cell(&e["identifier"]),
                        cell(&e["title"]),
                        cell(&e["team"]),
                        cell(&e["updatedAt"]),
                    ]
                })
                .collect();
            out.rows(
                &body["entities"],
                &["blueprint", "identifier", "title", "team", "updated"],
                rows,
            );
        }
    }
    Ok(())
}

/// One `--where` rule as a Port search rule.
fn rule(text: &str) -> Result<Value, CliError> {
    for (token, operator) in [
        ("!=", "!="),
        (">=", ">="),
        ("<=", "<="),
        ("=", "="),
        (">", ">"),
        ("<", "<"),
        ("~", "contains"),
    ] {
        if let Some((property, value)) = text.split_once(token) {
            let value = if matches!(operator, ">" | "<" | ">=" | "<=") {
                value
                    .parse::<f64>()
                    .map(|n| json!(n))
                    .unwrap_or_else(|_| json!(value))
            } else {
                json!(value)
            };
            return Ok(
                json!({ "property": property.trim(), "operator": operator, "value": value }),
            );
        }
    }
    Err(CliError::Local(format!(
        "--where `{text}`: write property=value (or !=, >, <, >=, <=, ~ for contains)"
    )))
}

/// `portico plugins`.
#[derive(Subcommand)]
pub enum PluginsCommand {
    /// Every plugin and its newest version.
    List,
    /// Uploads a component as a new version of plugin NAME (checked and compiled by the server).
    Push {
        /// The plugin's name (actions name it in `invocationMethod.plugin`).
        name: String,
        /// The `.wasm` file.
        file: PathBuf,
    },
}

/// Lists or uploads plugins.
pub async fn plugins(command: PluginsCommand, global: &Global) -> Result<(), CliError> {
    let client = global.client()?;
    let out = global.out();
    match command {
        PluginsCommand::List => {
            let body = client.get("/v1/plugins").await?;
            let rows = list(&body["plugins"])
                .map(|p| {
                    vec![
                        cell(&p["name"]),
                        cell(&p["digest"]),
                        Cell::new(format!("{}", p["size"].as_u64().unwrap_or(0))),
                        cell(&p["createdAt"]),
                    ]
                })
                .collect();
            out.rows(
                &body["plugins"],
                &["name", "digest", "size", "created"],
                rows,
            );
        }
        PluginsCommand::Push { name, file } => {
            let plugin = push_plugin(&client, &name, &file).await?;
            if out.format == Format::Table {
                println!(
                    "Pushed {name} {} ({} bytes).",
                    text(&plugin["digest"]),
                    plugin["size"]
                );
            } else {
                out.value(&plugin);
            }
        }
    }
    Ok(())
}

/// Uploads `file` as a version of plugin `name`; answers the stored version.
pub async fn push_plugin(
    client: &crate::client::Client,
    name: &str,
    file: &std::path::Path,
) -> Result<Value, CliError> {
    let bytes =
        std::fs::read(file).map_err(|e| CliError::Local(format!("{}: {e}", file.display())))?;
    let request = client
        .request(Method::PUT, &format!("/v1/plugins/{name}"))
        .header("content-type", "application/wasm")
        .body(bytes);
    let answer = client.send(request).await?;
    let plugin = answer["plugin"].clone();
    if answer["status"] == "compiling" {
        wait_until_compiled(client, name, &text(&plugin["digest"])).await?;
    }
    Ok(plugin)
}

/// A large component (Python, JavaScript) is stored at once and compiled in the background:
/// waits until the server has it ready, so what comes next (an apply, a run) starts at once. A
/// version that did not compile is withdrawn by the server, with the reason in the audit log.
async fn wait_until_compiled(
    client: &crate::client::Client,
    name: &str,
    digest: &str,
) -> Result<(), CliError> {
    let started = std::time::Instant::now();
    eprintln!("The server is compiling {name} (a large component takes seconds)...");
    loop {
        let request = client.request(Method::GET, &format!("/v1/plugins/{name}"));
        let listed = match client.send(request).await {
            Ok(listed) => listed,
            Err(CliError::Refused { status: 404, .. }) => Value::Null,
            Err(e) => return Err(e),
        };
        let versions = listed["plugin"]["versions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        match versions.iter().find(|v| v["digest"] == digest) {
            None => {
                return Err(CliError::local(format!(
                    "the server could not compile {name} {digest} and withdrew it; \
                     `portico audit --resource plugin --identifier {name}` says why"
                )));
            }
            Some(v) if v["status"] == "compiling" => {}
            Some(_) => {
                eprintln!("Compiled in {:.1} s.", started.elapsed().as_secs_f64());
                return Ok(());
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// `portico audit`.
#[derive(Args)]
pub struct AuditArgs {
    /// Only this kind of resource (`action`, `blueprint`, `entity`, `run`, ...).
    #[arg(long)]
    pub resource: Option<String>,
    /// Only this resource's identifier.
    #[arg(long)]
    pub identifier: Option<String>,
    /// Only what this user did.
    #[arg(long)]
    pub actor: Option<String>,
    /// Only what this run did.
    #[arg(long)]
    pub run: Option<String>,
    /// At most this many entries (1-1000).
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
}

/// Prints the audit log.
pub async fn audit(args: AuditArgs, global: &Global) -> Result<(), CliError> {
    let client = global.client()?;
    let mut query = vec![("limit", args.limit.to_string())];
    for (key, value) in [
        ("resource", args.resource),
        ("identifier", args.identifier),
        ("actor", args.actor),
        ("run_id", args.run),
    ] {
        if let Some(value) = value {
            query.push((key, value));
        }
    }
    let request = client.request(Method::GET, "/v1/audit-log").query(&query);
    let body = client.send(request).await?;
    let out = global.out();
    let rows = list(&body["audit"])
        .map(|e| {
            vec![
                cell(&e["at"]),
                cell(&e["actor"]),
                cell(&e["operation"]),
                Cell::new(format!(
                    "{} {}",
                    text(&e["resourceType"]),
                    text(&e["resourceId"])
                )),
                out.status(e["status"].as_str().unwrap_or("")),
                cell(&e["origin"]),
                cell(&e["reason"]),
            ]
        })
        .collect();
    out.rows(
        &body["audit"],
        &[
            "at",
            "actor",
            "operation",
            "resource",
            "status",
            "origin",
            "reason",
        ],
        rows,
    );
    Ok(())
}

/// The items of a JSON list (none when it is not one).
pub fn list(value: &Value) -> impl Iterator<Item = &Value> {
    value.as_array().into_iter().flatten()
}

/// A JSON argument given inline or as `@FILE` (JSON or YAML).
pub fn read_json_arg(flag: &str, text: &str) -> Result<Value, CliError> {
    let (source, content) = match text.strip_prefix('@') {
        Some(path) => (
            path.to_owned(),
            std::fs::read_to_string(path)
                .map_err(|e| CliError::Local(format!("{flag} {path}: {e}")))?,
        ),
        None => (flag.to_owned(), text.to_owned()),
    };
    portico_manifest::read_value(&source, &content).map_err(|e| CliError::Local(e.to_string()))
}
