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

mod apply;
mod client;
mod replicas;

use portico_tests::api::{ADMIN_TOKEN, Portico};
use std::path::Path;

/// What one `portico` invocation did.
pub struct Ran {
    /// The exit code.
    pub code: i32,
    /// Everything it printed on stdout.
    pub stdout: String,
    /// Everything it printed on stderr.
    pub stderr: String,
}

impl Ran {
    /// Panics unless it exited with `code`; returns stdout.
    #[track_caller]
    pub fn expect(&self, code: i32) -> &str {
        assert_eq!(
            self.code, code,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        &self.stdout
    }
}

/// A server on loopback and a `portico` pointed at it with a token.
pub struct Cli {
    /// The server.
    pub server: Portico,
    /// The CLI's config folder.
    pub home: tempfile::TempDir,
    /// The token commands send.
    pub token: String,
}

impl Cli {
    /// `portico` talking to `server` as the admin (through PORTICO_URL/PORTICO_TOKEN).
    pub fn new(server: Portico) -> Self {
        Self {
            server,
            home: tempfile::tempdir().expect("temp dir"),
            token: ADMIN_TOKEN.to_owned(),
        }
    }

    /// Runs `portico ARGS` as the admin.
    pub async fn run(&self, args: &[&str]) -> Ran {
        self.run_as(&self.token, args, None).await
    }

    /// Runs `portico ARGS` with `token`, feeding `stdin` if given.
    pub async fn run_as(&self, token: &str, args: &[&str], stdin: Option<&str>) -> Ran {
        let mut command = portico(self.home.path());
        command
            .env("PORTICO_URL", &self.server.url)
            .env("PORTICO_TOKEN", token)
            .args(args);
        if let Some(input) = stdin {
            command.write_stdin(input.to_owned());
        }
        run_blocking(command).await
    }

    /// Runs `portico ARGS` with no server in the environment (contexts only).
    pub async fn run_bare(&self, args: &[&str], stdin: Option<&str>) -> Ran {
        let mut command = portico(self.home.path());
        command.args(args);
        if let Some(input) = stdin {
            command.write_stdin(input.to_owned());
        }
        run_blocking(command).await
    }
}

/// Runs the command off the async runtime, so the in-process server keeps serving.
pub async fn run_blocking(mut command: assert_cmd::Command) -> Ran {
    let output = tokio::task::spawn_blocking(move || command.output().expect("portico runs"))
        .await
        .expect("the command's thread");
    Ran {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Writes `text` to `dir/name`, returning the path as a string.
pub fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("file written");
    path.display().to_string()
}
mod plugin;
