//! The benchmark's native baseline: what the no-op plugin does (parse the JSON request, write one
//! log line), as a process of its own.

fn main() {
    let request = std::env::args().nth(1).unwrap_or_else(|| "{}".into());
    let request: serde_json::Value = serde_json::from_str(&request).unwrap_or_default();
    println!("noop {}", request["run_id"]);
}
