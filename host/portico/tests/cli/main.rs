//! The `portico` binary end to end: the client against a real server on loopback (SQLite and,
//! with `PORTICO_TEST_POSTGRES_URL`, Postgres), `apply`/`export`, and the plugin author's loop.

/// `portico` with a config folder of its own, so no test sees another's contexts or the
/// developer's; `PORTICO_URL`/`PORTICO_TOKEN` come from the environment only where a test sets
/// them.
pub fn portico(config: &std::path::Path) -> assert_cmd::Command {
    let mut command = assert_cmd::Command::cargo_bin("portico").expect("the portico binary");
    command
        .env("PORTICO_CONFIG", config.join("config.toml"))
        .env_remove("PORTICO_URL")
        .env_remove("PORTICO_TOKEN")
        .env("NO_COLOR", "1")
        .env("RUST_BACKTRACE", "0");
    command
}
mod plugin;
