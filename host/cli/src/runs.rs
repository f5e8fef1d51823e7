//! Running actions and following runs: `portico run`, `portico runs ...`. `--follow` reads
//! the run's server-sent events (log lines, status and progress) and resumes after a dropped
//! connection from the last line it printed; the exit code follows the run's outcome.

use crate::Global;
use crate::client::Client;
use crate::commands::{list, read_json_arg};
use crate::error::{CliError, status_code};
use crate::output::{Format, Output, cell, text};
use clap::{Args, Subcommand};
use comfy_table::Cell;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::Method;
use serde_json::{Map, Value, json};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

/// Inputs given on the command line.
#[derive(Args, Clone, Debug, Default)]
pub struct Inputs {
    /// An input `name=value`, read by the input's type in the action (`replicas=3` is a
    /// number, `name=007` stays text); `name:=JSON` gives JSON as is. Repeatable.
    #[arg(long = "input", short = 'i', value_name = "NAME=VALUE")]
    pub pairs: Vec<String>,
    /// A JSON or YAML object of inputs; `--input` entries override it.
    #[arg(long, value_name = "FILE")]
    pub inputs_file: Option<PathBuf>,
}

/// How long to stay with a run.
#[derive(Args, Clone, Copy, Debug, Default)]
pub struct Watch {
    /// Waits until the run ends, then prints it; the exit code follows its outcome.
    #[arg(long, conflicts_with = "follow")]
    pub wait: bool,
    /// Shows the run's progress and log live until it ends; the exit code follows its outcome.
    #[arg(long, short = 'f')]
    pub follow: bool,
}

/// `portico run`.
#[derive(Args)]
pub struct RunArgs {
    /// The action's identifier (`portico actions list`).
    pub action: String,
    #[command(flatten)]
    pub inputs: Inputs,
    /// The entity a DAY-2 or DELETE action runs on.
    #[arg(long, short)]
    pub entity: Option<String>,
    #[command(flatten)]
    pub watch: Watch,
}

/// Starts a run, then waits or follows as asked.
pub async fn run(args: RunArgs, global: &Global) -> Result<(), CliError> {
    let client = global.client()?;
    let action = client.get(&format!("/v1/actions/{}", args.action)).await?;
    let properties = args.inputs.read(&action["action"])?;
    let mut body = json!({ "properties": properties });
    if let Some(entity) = args.entity {
        body["entity"] = json!(entity);
    }
    let started = client
        .call(
            Method::POST,
            &format!("/v1/actions/{}/runs", args.action),
            Some(&body),
        )
        .await?;
    watch(&client, global, &started["run"], args.watch).await
}

/// Prints a run just started (or retried), then stays with it as `watch` says.
async fn watch(
    client: &Client,
    global: &Global,
    run: &Value,
    watch: Watch,
) -> Result<(), CliError> {
    let out = global.out();
    let id = text(&run["id"]);
    if watch.follow {
        if out.format == Format::Table {
            eprintln!("Run {id} {}", text(&run["status"]));
        }
        let ended = follow(client, &id, out, true).await?;
        return finish(&ended, out);
    }
    if watch.wait {
        let ended = follow(client, &id, out, false).await?;
        return finish(&ended, out);
    }
    match out.format {
        Format::Table => println!(
            "Run {id} {} (follow it: portico runs logs -f {id})",
            text(&run["status"])
        ),
        _ => out.value(run),
    }
    Ok(())
}

/// Prints how a run ended and turns it into the exit code.
fn finish(run: &Value, out: Output) -> Result<(), CliError> {
    let status = text(&run["status"]);
    match out.format {
        Format::Table => {
            let mut line = format!("Run {} {status}", text(&run["id"]));
            if let Some(summary) = run["summary"].as_str() {
                line.push_str(&format!(": {summary}"));
            }
            if let Some(message) = run["error"]["message"].as_str() {
                line.push_str(&format!(": {} ({})", message, text(&run["error"]["kind"])));
            }
            println!("{line}");
            for link in list(&run["link"]) {
                println!(
                    "  {}",
                    link["url"]
                        .as_str()
                        .map_or_else(|| text(link), str::to_owned)
                );
            }
        }
        _ => out.value(run),
    }
    if status_code(&status) == 0 {
        Ok(())
    } else {
        Err(CliError::RunEnded {
            id: text(&run["id"]),
            status,
        })
    }
}

/// The most one server-sent event may hold (an `end` carries the run, its output up to 1 MiB).
const MAX_EVENT_BYTES: usize = 16 << 20;

/// Follows a run's events until its `end`, printing log lines and moving a progress bar (on a
/// terminal) when `show`; `--wait` reads the same stream silently, so it learns of the end as
/// soon as `--follow` does. A dropped connection is resumed after the last line read, so no
/// line is printed twice or lost; ten failures in a row give up.
pub async fn follow(client: &Client, id: &str, out: Output, show: bool) -> Result<Value, CliError> {
    let bar = match show {
        true => progress_bar(out),
        false => ProgressBar::hidden(),
    };
    let mut after: Option<String> = None;
    let mut failures = 0;
    loop {
        let mut request = client
            .request(Method::GET, &format!("/v1/actions/runs/{id}/logs"))
            .header("accept", "text/event-stream");
        if let Some(seq) = &after {
            request = request.header("last-event-id", seq);
        }
        let response = match request.send().await {
            Ok(r) if r.status().is_success() => Some(r),
            Ok(r) => {
                // A refusal (404, 401) will not get better by retrying.
                crate::client::read(r).await?;
                None
            }
            Err(_) => None,
        };
        if let Some(mut response) = response {
            let mut buffer: Vec<u8> = Vec::new();
            loop {
                let chunk = match response.chunk().await {
                    Ok(Some(chunk)) => chunk,
                    Ok(None) | Err(_) => break,
                };
                // Bytes until an event is whole: a character split across chunks stays whole.
                buffer.extend_from_slice(&chunk);
                if buffer.len() > MAX_EVENT_BYTES {
                    bar.finish_and_clear();
                    return Err(CliError::Unreachable {
                        url: client.base().to_owned(),
                        message: format!(
                            "an event of the run's stream passed {MAX_EVENT_BYTES} bytes"
                        ),
                    });
                }
                while let Some(event) = take_event(&mut buffer) {
                    // Only a whole event is progress: a stream cut before every event gives up.
                    failures = 0;
                    let (name, seq, data) = parse_event(&event);
                    let data: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
                    match name.as_str() {
                        "log" => {
                            after = seq.or(after);
                            if !show {
                                continue;
                            }
                            let line =
                                format!("{:<5} {}", text(&data["level"]), text(&data["message"]));
                            if out.format == Format::Table {
                                bar.suspend(|| println!("{line}"));
                            } else {
                                println!("{}", json!({ "event": "log", "log": data }));
                            }
                        }
                        "status" if !show => {}
                        "status" => {
                            if out.format == Format::Table {
                                show_progress(&bar, &data);
                            } else {
                                println!("{}", json!({ "event": "status", "status": data }));
                            }
                        }
                        "end" => {
                            bar.finish_and_clear();
                            return Ok(data);
                        }
                        _ => {}
                    }
                }
            }
        }
        failures += 1;
        if failures >= 10 {
            bar.finish_and_clear();
            return Err(CliError::Unreachable {
                url: client.base().to_owned(),
                message: format!("the run's event stream dropped {failures} times in a row"),
            });
        }
        tokio::time::sleep(Duration::from_millis(200 * failures)).await;
    }
}

/// The first whole event in `buffer` (up to its blank line), removed from it; decoded only once
/// whole, so a character split across chunks stays whole.
fn take_event(buffer: &mut Vec<u8>) -> Option<String> {
    let end = buffer.windows(2).position(|w| w == b"\n\n")?;
    let bytes: Vec<u8> = buffer.drain(..end + 2).collect();
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// `(event, id, data)` of one server-sent event.
fn parse_event(event: &str) -> (String, Option<String>, String) {
    let mut name = String::from("message");
    let mut id = None;
    let mut data = Vec::new();
    for line in event.lines() {
        if let Some(v) = line.strip_prefix("event:") {
            name = v.trim().to_owned();
        } else if let Some(v) = line.strip_prefix("id:") {
            id = Some(v.trim().to_owned());
        } else if let Some(v) = line.strip_prefix("data:") {
            data.push(v.strip_prefix(' ').unwrap_or(v).to_owned());
        }
    }
    (name, id, data.join("\n"))
}

/// A bar on stderr when it is a terminal and the output is for people; hidden otherwise.
fn progress_bar(out: Output) -> ProgressBar {
    if out.format != Format::Table || !std::io::stderr().is_terminal() {
        return ProgressBar::with_draw_target(Some(100), ProgressDrawTarget::hidden());
    }
    let bar = ProgressBar::new(100);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] {pos:>3}% {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

fn show_progress(bar: &ProgressBar, data: &Value) {
    if let Some(percent) = data["progress"]["percent"].as_u64() {
        bar.set_position(percent.min(100));
    }
    let label = data["progress"]["label"].as_str().unwrap_or("");
    bar.set_message(format!("{} {label}", text(&data["status"])));
}

impl Inputs {
    /// The inputs as the action's types read them.
    pub fn read(&self, action: &Value) -> Result<Map<String, Value>, CliError> {
        let mut inputs = match &self.inputs_file {
            Some(file) => match read_json_arg("--inputs-file", &format!("@{}", file.display()))? {
                Value::Object(map) => map,
                _ => {
                    return Err(CliError::Local(format!(
                        "--inputs-file {}: must hold an object of inputs",
                        file.display()
                    )));
                }
            },
            None => Map::new(),
        };
        let declared = &action["trigger"]["userInputs"]["properties"];
        for pair in &self.pairs {
            if let Some((name, raw)) = pair.split_once(":=") {
                let value = serde_json::from_str(raw).map_err(|e| {
                    CliError::Local(format!("--input {name}:= is not valid JSON: {e}"))
                })?;
                inputs.insert(name.to_owned(), value);
                continue;
            }
            let Some((name, raw)) = pair.split_once('=') else {
                return Err(CliError::Local(format!(
                    "--input `{pair}`: write NAME=VALUE (or NAME:=JSON)"
                )));
            };
            let value = typed(name, raw, &declared[name])?;
            inputs.insert(name.to_owned(), value);
        }
        Ok(inputs)
    }
}

/// `raw` read as input `name`'s declared type; undeclared inputs stay text, for the server to
/// judge.
fn typed(name: &str, raw: &str, schema: &Value) -> Result<Value, CliError> {
    let wrong = |what: &str| CliError::Local(format!("--input {name}: `{raw}` is not {what}"));
    Ok(match schema["type"].as_str() {
        Some("number") | Some("integer") => {
            if let Ok(n) = raw.parse::<i64>() {
                json!(n)
            } else {
                json!(raw.parse::<f64>().map_err(|_| wrong("a number"))?)
            }
        }
        Some("boolean") => json!(raw.parse::<bool>().map_err(|_| wrong("true or false"))?),
        Some("array") | Some("object") => {
            read_json_arg(&format!("--input {name}"), raw).map_err(|_| wrong("JSON"))?
        }
        _ => json!(raw),
    })
}

/// `portico runs`.
#[derive(Subcommand)]
pub enum RunsCommand {
    /// Runs you may see (admins: all), newest first.
    List {
        /// Only this action's runs.
        #[arg(long)]
        action: Option<String>,
        /// Only runs in this status (SUCCESS, FAILURE, IN_PROGRESS, ...).
        #[arg(long)]
        status: Option<String>,
        /// Only this user's runs.
        #[arg(long)]
        user: Option<String>,
        /// Only runs on this entity.
        #[arg(long)]
        entity: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// One run.
    Get {
        /// The run's id.
        id: String,
    },
    /// A run's log; `-f` follows it live until the run ends.
    Logs {
        /// The run's id.
        id: String,
        /// Follows until the run ends; the exit code follows its outcome.
        #[arg(long, short)]
        follow: bool,
    },
    /// Cancels a run that has not ended.
    Cancel {
        /// The run's id.
        id: String,
    },
    /// Approves a run waiting for approval.
    Approve {
        /// The run's id.
        id: String,
        /// Why (shown on the run and in notifications).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Declines a run waiting for approval.
    Decline {
        /// The run's id.
        id: String,
        /// Why (shown on the run and in notifications).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Runs an ended run's action again with its inputs, changed by any `--input`.
    Retry {
        /// The run's id.
        id: String,
        #[command(flatten)]
        inputs: Inputs,
        #[command(flatten)]
        watch: Watch,
    },
}

/// Lists, shows, follows or acts on runs.
pub async fn runs(command: RunsCommand, global: &Global) -> Result<(), CliError> {
    let client = global.client()?;
    let out = global.out();
    let path = |id: &str, rest: &str| format!("/v1/actions/runs/{id}{rest}");
    match command {
        RunsCommand::List {
            action,
            status,
            user,
            entity,
            limit,
        } => {
            let mut query = vec![("limit", limit.to_string())];
            for (key, value) in [
                ("action", action),
                ("status", status),
                ("user", user),
                ("entity", entity),
            ] {
                if let Some(value) = value {
                    query.push((key, value));
                }
            }
            let body = client
                .send(
                    client
                        .request(Method::GET, "/v1/actions/runs")
                        .query(&query),
                )
                .await?;
            let rows = list(&body["runs"])
                .map(|r| {
                    vec![
                        cell(&r["id"]),
                        cell(&r["action"]["identifier"]),
                        out.status(r["status"].as_str().unwrap_or("")),
                        cell(&r["createdBy"]),
                        cell(&r["createdAt"]),
                        Cell::new(
                            r["summary"]
                                .as_str()
                                .or(r["statusLabel"].as_str())
                                .or(r["error"]["message"].as_str())
                                .unwrap_or(""),
                        ),
                    ]
                })
                .collect();
            out.rows(
                &body["runs"],
                &["id", "action", "status", "by", "created", "summary"],
                rows,
            );
        }
        RunsCommand::Get { id } => {
            let run = &client.get(&path(&id, "")).await?["run"];
            match out.format {
                Format::Table => show_run(run),
                _ => out.value(run),
            }
        }
        RunsCommand::Logs { id, follow: true } => {
            let ended = follow(&client, &id, out, true).await?;
            return finish(&ended, out);
        }
        RunsCommand::Logs { id, follow: false } => {
            let body = client
                .send(
                    client
                        .request(Method::GET, &path(&id, "/logs"))
                        .query(&[("limit", "10000")]),
                )
                .await?;
            match out.format {
                Format::Table => {
                    for line in list(&body["logs"]) {
                        println!("{:<5} {}", text(&line["level"]), text(&line["message"]));
                    }
                }
                _ => out.value(&body["logs"]),
            }
        }
        RunsCommand::Cancel { id } => {
            let run = &client
                .call(Method::POST, &path(&id, "/cancel"), None)
                .await?["run"];
            said(out, run, "cancelled");
        }
        RunsCommand::Approve { id, reason } => {
            decide(&client, out, &id, "APPROVE", reason).await?;
        }
        RunsCommand::Decline { id, reason } => {
            decide(&client, out, &id, "DECLINE", reason).await?;
        }
        RunsCommand::Retry {
            id,
            inputs,
            watch: w,
        } => {
            let previous = client.get(&path(&id, "")).await?;
            let action = client
                .get(&format!(
                    "/v1/actions/{}",
                    text(&previous["run"]["action"]["identifier"])
                ))
                .await?;
            let properties = inputs.read(&action["action"])?;
            let started = client
                .call(
                    Method::POST,
                    &path(&id, "/retry"),
                    Some(&json!({ "properties": properties })),
                )
                .await?;
            return watch(&client, global, &started["run"], w).await;
        }
    }
    Ok(())
}

async fn decide(
    client: &Client,
    out: Output,
    id: &str,
    status: &str,
    reason: Option<String>,
) -> Result<(), CliError> {
    let mut body = json!({ "status": status });
    if let Some(reason) = reason {
        body["description"] = json!(reason);
    }
    let run = &client
        .call(
            Method::PATCH,
            &format!("/v1/actions/runs/{id}/approval"),
            Some(&body),
        )
        .await?["run"];
    let done = if status == "APPROVE" {
        "approved"
    } else {
        "declined"
    };
    said(out, run, done);
    Ok(())
}

fn said(out: Output, run: &Value, what: &str) {
    match out.format {
        Format::Table => println!(
            "Run {} {what}; it is now {}.",
            text(&run["id"]),
            text(&run["status"])
        ),
        _ => out.value(run),
    }
}

fn show_run(run: &Value) {
    let mut rows = vec![
        ("id", text(&run["id"])),
        ("action", text(&run["action"]["identifier"])),
        ("status", text(&run["status"])),
    ];
    let progress = &run["progress"];
    if !progress.is_null() {
        rows.push((
            "progress",
            format!(
                "{}% {}",
                progress["percent"].as_u64().unwrap_or(0),
                text(&progress["label"])
            ),
        ));
    }
    for (name, value) in [
        ("label", &run["statusLabel"]),
        ("summary", &run["summary"]),
        ("entity", &run["entity"]["identifier"]),
        ("by", &run["createdBy"]),
        ("created", &run["createdAt"]),
        ("ended", &run["endedAt"]),
    ] {
        if !value.is_null() {
            rows.push((name, text(value)));
        }
    }
    if !run["error"].is_null() {
        rows.push((
            "error",
            format!(
                "{} ({})",
                text(&run["error"]["message"]),
                text(&run["error"]["kind"])
            ),
        ));
    }
    for link in list(&run["link"]) {
        rows.push((
            "link",
            link["url"]
                .as_str()
                .map_or_else(|| text(link), str::to_owned),
        ));
    }
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (name, value) in rows {
        println!("{name:<width$}  {value}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_split_inside_a_character_is_read_whole() {
        let event = "event: log\nid: 7\ndata: {\"message\":\"déployé ✓\"}\n\n".as_bytes();
        let split = event.iter().position(|&b| b >= 0x80).unwrap() + 1;
        let mut buffer = event[..split].to_vec();
        assert_eq!(take_event(&mut buffer), None);
        buffer.extend_from_slice(&event[split..]);
        let whole = take_event(&mut buffer).expect("one event");
        assert!(buffer.is_empty());
        let (name, id, data) = parse_event(&whole);
        assert_eq!((name.as_str(), id.as_deref()), ("log", Some("7")));
        assert_eq!(data, "{\"message\":\"déployé ✓\"}");
    }
}
