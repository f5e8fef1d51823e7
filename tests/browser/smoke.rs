//! The harness itself: Chromium starts, reaches the server on loopback, and screenshots.

use portico_tests::api::{Backend, Portico};
use portico_tests::browser::Browser;
use std::time::Duration;

#[tokio::test]
async fn chromium_renders_a_page_served_on_loopback() {
    let server = Portico::start(Backend::Sqlite).await;
    let browser = Browser::start().await;

    browser.goto(&format!("{}/healthz", server.url)).await;
    // Chromium shows a JSON answer as text: `{"ok":true}`.
    browser
        .wait_for_text("body", "\"ok\":true", Duration::from_secs(5))
        .await;
    assert_eq!(
        browser.current_url().await,
        format!("{}/healthz", server.url)
    );
    assert!(!browser.exists("form").await);

    let shot = browser.screenshot("smoke").await;
    let png = std::fs::read(&shot).expect("the screenshot was saved");
    assert!(
        png.starts_with(b"\x89PNG"),
        "{} is not a PNG",
        shot.display()
    );
    browser.close().await;
}
