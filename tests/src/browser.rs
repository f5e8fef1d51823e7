//! Headless Chromium for the portal's tests, driven over WebDriver.
//!
//! Each [`Browser`] has its own chromedriver and a fresh profile, so tests in one process run in
//! parallel without sharing cookies or storage. The helpers wait for what they need and panic
//! with the URL and what the page showed, so a failure reads without a rerun.
//! `scripts/setup` installs Debian's `chromium` and `chromium-driver` (one source package, so
//! the driver always matches the browser).

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use fantoccini::cookies::Cookie;

/// How long the helpers that need an element wait for it: the portal renders after a fetch,
/// and a debug server on a loaded two-core machine can take seconds.
pub const WAIT: Duration = Duration::from_secs(10);

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Root runs the tests (no sandbox); containers have a small `/dev/shm`; nothing may reach
/// beyond loopback (no QUIC, no background updates or sync); a fixed window makes screenshots
/// comparable.
const CHROMIUM_ARGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
];

/// One headless Chromium. Dropping it kills chromedriver and the browser.
pub struct Browser {
    // Fields drop in this order: the session, then its processes, then their files.
    client: Client,
    _driver: Driver,
    /// The chromedriver log and the Chromium profile.
    _dir: tempfile::TempDir,
}

/// chromedriver, leading its own process group, which Chromium joins: killing the group on
/// drop takes Chromium with it, which killing chromedriver alone would leave running.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Browser {
    /// Starts chromedriver on a free loopback port and opens a session in a fresh profile.
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// Like [`Browser::start`], with more Chromium flags (e.g. `--force-dark-mode`, which makes
    /// pages see `prefers-color-scheme: dark`).
    pub async fn start_with(extra_args: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let (driver, port) = spawn_driver(dir.path()).await;
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|a| a.to_string()).collect();
        args.extend(extra_args.iter().map(|a| a.to_string()));
        args.push(format!(
            "--user-data-dir={}",
            dir.path().join("profile").display()
        ));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": CHROMIUM, "args": args }),
        );
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "Chromium did not start: {e}\nchromedriver log:\n{}",
                    log_tail(dir.path())
                )
            });
        // A hung page fails its test in 30 s rather than WebDriver's default of minutes.
        let timeouts =
            fantoccini::wd::TimeoutConfiguration::new(None, Some(Duration::from_secs(30)), None);
        if let Err(e) = client.update_timeouts(timeouts).await {
            panic!("setting the page-load timeout: {e}");
        }
        Self {
            client,
            _driver: driver,
            _dir: dir,
        }
    }

    /// The WebDriver client, for what the helpers do not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&self, url: &str) {
        if let Err(e) = self.client.goto(url).await {
            panic!("goto {url}: {e}");
        }
    }

    /// The address the browser shows.
    pub async fn current_url(&self) -> String {
        match self.client.current_url().await {
            Ok(url) => url.to_string(),
            Err(e) => panic!("current_url: {e}"),
        }
    }

    /// Waits up to [`WAIT`] for an element matching `css`.
    pub async fn wait_for(&self, css: &str) -> Element {
        let found = self
            .client
            .wait()
            .at_most(WAIT)
            .every(Duration::from_millis(50))
            .for_element(Locator::Css(css))
            .await;
        match found {
            Ok(element) => element,
            Err(fantoccini::error::CmdError::WaitTimeout) => panic!(
                "no element matches `{css}` after {WAIT:?}{}",
                self.context().await
            ),
            Err(e) => panic!("finding `{css}`: {e}{}", self.context().await),
        }
    }

    /// Whether an element matches `css` now (no waiting).
    pub async fn exists(&self, css: &str) -> bool {
        match self.client.find_all(Locator::Css(css)).await {
            Ok(found) => !found.is_empty(),
            Err(e) => panic!("exists(`{css}`): {e}{}", self.context().await),
        }
    }

    /// Clears the field matching `css` and types `text` into it.
    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.wait_for(css).await;
        if let Err(e) = field.clear().await {
            panic!("clearing `{css}`: {e}{}", self.context().await);
        }
        // Clearing is a change: a page that re-renders its fields on change (the portal's action
        // form) replaces the element; type into the one that is there once that settles.
        self.settle().await;
        let field = self.wait_for(css).await;
        if let Err(e) = field.send_keys(text).await {
            panic!("typing {text:?} into `{css}`: {e}{}", self.context().await);
        }
    }

    /// Waits (up to [`WAIT`]) until no htmx request is in flight.
    pub async fn settle(&self) {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            let busy = self
                .client
                .execute(
                    "return document.querySelector('.htmx-request') !== null;",
                    vec![],
                )
                .await
                .unwrap_or(Value::Bool(false));
            if busy != Value::Bool(true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Clicks the element matching `css`.
    pub async fn click(&self, css: &str) {
        let element = self.wait_for(css).await;
        if let Err(e) = element.click().await {
            panic!("clicking `{css}`: {e}{}", self.context().await);
        }
    }

    /// Chooses the option with `value` in the `<select>` matching `css`.
    pub async fn select(&self, css: &str, value: &str) {
        let select = self.wait_for(css).await;
        if let Err(e) = select.select_by_value(value).await {
            panic!(
                "selecting {value:?} in `{css}`: {e}{}",
                self.context().await
            );
        }
    }

    /// The rendered text of the element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        let element = self.wait_for(css).await;
        match element.text().await {
            Ok(text) => text,
            Err(e) => panic!("text of `{css}`: {e}{}", self.context().await),
        }
    }

    /// Polls until the element matching `css` shows `needle`, answering its whole text.
    pub async fn wait_for_text(&self, css: &str, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            // The element may be re-rendered between the find and the read: retry, not fail.
            let shown = match self.client.find(Locator::Css(css)).await {
                Ok(element) => element.text().await.ok(),
                Err(_) => None,
            };
            if let Some(text) = &shown
                && text.contains(needle)
            {
                return text.clone();
            }
            if Instant::now() >= deadline {
                let shown = match shown {
                    Some(text) => format!("it shows {text:?}"),
                    None => "no element matches".to_owned(),
                };
                panic!(
                    "`{css}` did not show {needle:?} within {timeout:?}: {shown}{}",
                    self.context().await
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs `js` (a function body: `return` answers) in the page.
    pub async fn execute(&self, js: &str) -> Value {
        match self.client.execute(js, Vec::new()).await {
            Ok(value) => value,
            Err(e) => panic!("script failed: {e}\n{js}{}", self.context().await),
        }
    }

    /// The cookies the page's origin sees.
    pub async fn cookies(&self) -> Vec<Cookie<'static>> {
        match self.client.get_all_cookies().await {
            Ok(cookies) => cookies,
            Err(e) => panic!("cookies: {e}"),
        }
    }

    /// The cookie called `name`, if the page's origin has it.
    pub async fn cookie(&self, name: &str) -> Option<Cookie<'static>> {
        self.cookies().await.into_iter().find(|c| c.name() == name)
    }

    /// Resizes the window (the viewport is a little smaller), e.g. to a phone's width.
    pub async fn set_window_size(&self, width: u32, height: u32) {
        if let Err(e) = self.client.set_window_size(width, height).await {
            panic!("set_window_size({width}, {height}): {e}");
        }
    }

    /// Saves the viewport as `target/portal-screenshots/<name>.png`, answering the path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = match self.client.screenshot().await {
            Ok(png) => png,
            Err(e) => panic!("screenshot {name}: {e}"),
        };
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        path
    }

    /// Ends the session (Chromium quits); chromedriver goes when the `Browser` drops.
    pub async fn close(self) {
        if let Err(e) = self.client.clone().close().await {
            panic!("closing the browser: {e}");
        }
    }

    /// Where the browser is and what it shows, for panic messages.
    async fn context(&self) -> String {
        let url = match self.client.current_url().await {
            Ok(url) => url.to_string(),
            Err(e) => format!("(unknown: {e})"),
        };
        let body = match self.client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        let mut shown: String = body.chars().take(600).collect();
        if shown.len() < body.len() {
            shown.push('…');
        }
        format!("\n  at {url}\n  the page shows: {shown:?}")
    }
}

/// Starts chromedriver on a free port (another test may take the port between our probe and
/// chromedriver's bind: then it exits and we try another) and waits until it answers.
async fn spawn_driver(dir: &Path) -> (Driver, u16) {
    let log = dir.join("chromedriver.log");
    let status = reqwest::Client::new();
    for _ in 0..5 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let out = std::fs::File::create(&log).expect("chromedriver log");
        let err = out.try_clone().expect("chromedriver log");
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            // Its own process group, which Chromium joins: see `Driver`.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("{CHROMEDRIVER}: {e} (scripts/setup installs it)"));
        let mut driver = Driver(driver);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if driver.0.try_wait().ok().flatten().is_some() {
                break; // exited, most likely the port was taken: try another
            }
            // Only our chromedriver writes this to our log, so a driver that another test
            // started on the same port is never mistaken for ours.
            let started = std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("started successfully");
            if started {
                let url = format!("http://127.0.0.1:{port}/status");
                if let Ok(answer) = status.get(&url).send().await
                    && let Ok(body) = answer.json::<Value>().await
                    && body["value"]["ready"] == true
                {
                    return (driver, port);
                }
            }
            if Instant::now() >= deadline {
                drop(driver);
                panic!(
                    "chromedriver did not answer within 20 s\nlog:\n{}",
                    log_tail(dir)
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
    panic!(
        "chromedriver exited five times before answering\nlast log:\n{}",
        log_tail(dir)
    );
}

fn log_tail(dir: &Path) -> String {
    let log = std::fs::read_to_string(dir.join("chromedriver.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// `<target>/portal-screenshots`: `CARGO_TARGET_DIR` when set (relative to the workspace, as
/// the scripts run cargo from there), else the workspace's `target`.
fn screenshot_dir() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace");
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace.join(dir),
        None => workspace.join("target"),
    };
    target.join("portal-screenshots")
}
