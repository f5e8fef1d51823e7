//! The portal in headless Chromium against a real server on 127.0.0.1:0 (SQLite). Each test
//! starts its own `Browser` (its own chromedriver and profile), so they run in parallel.
//! `scripts/setup` installs Chromium; screenshots go to `target/portal-screenshots/`.

mod portal;
mod smoke;
