//! The portal in a real browser, against a real server on loopback: what a developer, an
//! approver and an admin do, step by step. Screenshots of the main pages are saved in
//! `target/portal-screenshots/` (linked from the README through `docs/screenshots/`).

use portico_tests::api::{ADMIN_TOKEN, Backend, Portico};
use portico_tests::artifacts::NOOP;
use portico_tests::browser::Browser;
use serde_json::{Value, json};
use std::time::Duration;

/// Long enough for a run paced like the examples' on a loaded two-core machine.
const RUN_WAIT: Duration = Duration::from_secs(30);
const WAIT: Duration = Duration::from_secs(10);

/// Signs in at `/login` with a token, as a person would.
async fn sign_in(browser: &Browser, server: &Portico, token: &str) {
    browser.goto(&format!("{}/login", server.url)).await;
    browser.fill("#token", token).await;
    browser.click("form button[type=submit]").await;
    browser.wait_for("header nav").await;
}

async fn js(browser: &Browser, code: &str) -> Value {
    browser.execute(code).await
}

/// What `code` answers once it answers `expected` (the server re-renders on its own time), or
/// its last answer after 10 s.
async fn js_until(browser: &Browser, code: &str, expected: Value) -> Value {
    let mut now = Value::Null;
    for _ in 0..100 {
        now = js(browser, code).await;
        if now == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    now
}

/// The noop guest as plugin `noop`, and an action using it with these `userInputs`.
async fn noop_action(server: &Portico, identifier: &str, user_inputs: Value) {
    server.upload("noop", NOOP).await;
    let action = json!({
        "identifier": identifier, "title": identifier,
        "trigger": { "type": "self-service", "operation": "CREATE", "userInputs": user_inputs },
        "invocationMethod": { "type": "WASM", "plugin": "noop" },
    });
    let created = server.admin("POST", "/v1/actions", action).await;
    assert_eq!(created.status, 201, "{}", created.body);
}

#[tokio::test]
async fn a_member_scaffolds_a_service_and_watches_it_run() {
    let server = Portico::with_examples(Backend::Sqlite).await;
    let token = server.member("dana", &[]).await;
    let browser = Browser::start().await;

    // A page without a session sends the browser to sign in, then back.
    browser.goto(&format!("{}/", server.url)).await;
    browser.wait_for("#token").await;
    assert!(browser.current_url().await.contains("/login?next=/"));
    browser.fill("#token", &token).await;
    browser.click("form button[type=submit]").await;

    // The hub offers the examples, grouped by blueprint.
    browser
        .wait_for_text("main", "Scaffold a service", WAIT)
        .await;
    assert!(browser.exists("#action-provision_dev_environment").await);
    browser.screenshot("hub").await;

    // A bad name: the server's error shows next to the field, and what was typed stays.
    browser.click("#action-scaffold_service").await;
    browser.fill("#f-name", "Bad Name!").await;
    browser.fill("#f-description", "Takes payments.").await;
    browser.click("#submit").await;
    browser
        .wait_for_text("#field-name .error", "does not match", WAIT)
        .await;
    let kept = js(&browser, "return [document.getElementById('f-name').value, document.getElementById('f-description').value];").await;
    assert_eq!(kept, json!(["Bad Name!", "Takes payments."]));
    browser.screenshot("form-with-errors").await;

    // Fixed: the run starts and its page follows it live.
    browser.fill("#f-name", "payments").await;
    browser.click("#submit").await;
    browser.wait_for("#run").await;
    let run_id = js(
        &browser,
        "return document.getElementById('run').dataset.run;",
    )
    .await;
    let run_id = run_id.as_str().expect("the page names its run").to_owned();
    assert_eq!(
        browser.text("#live").await,
        "live",
        "the run had ended before its page showed"
    );
    browser
        .wait_for_text("#log", "creating repository acme/payments", RUN_WAIT)
        .await;
    browser.screenshot("live-run").await;
    browser
        .wait_for_text("#run [data-status]", "SUCCESS", RUN_WAIT)
        .await;
    browser
        .wait_for_text("#summary", "Service payments scaffolded", WAIT)
        .await;
    // An ended run's page stays put: no stream, no reload.
    js(&browser, "window.stillHere = true; return true;").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        js(&browser, "return window.stillHere === true;").await,
        json!(true),
        "the page reloaded"
    );
    let link = js(&browser, "return document.querySelector('#links a').href;").await;
    assert_eq!(link, json!("https://github.com/acme/payments"));

    // The new service is in the catalog, and its page lists the run that made it.
    browser
        .goto(&format!("{}/catalog/service", server.url))
        .await;
    browser.wait_for_text("#entities", "payments", WAIT).await;
    browser.screenshot("catalog-table").await;
    browser
        .click("#entities a[href='/catalog/service/payments']")
        .await;
    browser.wait_for_text("#entity-runs", &run_id, WAIT).await;
    browser
        .wait_for_text("#properties", "https://github.com/acme/payments", WAIT)
        .await;
    browser.close().await;
}

#[tokio::test]
async fn a_conditional_field_appears_and_becomes_required() {
    let server = Portico::start(Backend::Sqlite).await;
    noop_action(&server, "open_port", json!({
        "properties": {
            "environment": { "type": "string", "title": "Environment", "enum": ["dev", "production"],
                "enumColors": { "dev": "green", "production": "red" }, "default": "dev" },
            "justification": { "type": "string", "title": "Justification",
                "visible": { "jqQuery": ".form.environment == \"production\"" } },
        },
        "required": { "jqQuery": "if .form.environment == \"production\" then [\"justification\"] else [] end" },
        "order": ["environment", "justification"],
    })).await;
    let browser = Browser::start().await;
    sign_in(&browser, &server, ADMIN_TOKEN).await;
    browser
        .goto(&format!("{}/actions/open_port", server.url))
        .await;
    browser.wait_for("#f-environment").await;
    let hidden = "return document.getElementById('field-justification').hidden;";
    assert_eq!(js(&browser, hidden).await, json!(true));

    // The server re-evaluates the jq as the value changes.
    browser.select("#f-environment", "production").await;
    assert_eq!(
        js_until(&browser, hidden, json!(false)).await,
        json!(false),
        "the field did not appear"
    );
    assert!(
        browser.exists("#field-justification .req").await,
        "it is not marked required"
    );

    // Required now: submitting without it is refused next to the field.
    browser.click("#submit").await;
    browser
        .wait_for_text("#field-justification .error", "required", WAIT)
        .await;
    assert_eq!(
        js(
            &browser,
            "return document.getElementById('f-environment').value;"
        )
        .await,
        json!("production")
    );

    // Filled: the run is accepted.
    browser.fill("#f-justification", "A customer demo").await;
    browser.click("#submit").await;
    browser
        .wait_for_text("#run [data-status]", "SUCCESS", RUN_WAIT)
        .await;
    browser.close().await;
}

#[tokio::test]
async fn an_entity_picker_offers_only_its_dataset() {
    let server = Portico::with_examples(Backend::Sqlite).await;
    for (id, language) in [("api-go", "go"), ("web-rust", "rust"), ("cli-rust", "rust")] {
        let created = server
            .admin(
                "POST",
                "/v1/blueprints/service/entities",
                json!({ "identifier": id, "properties": { "language": language } }),
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.body);
    }
    noop_action(&server, "deploy", json!({
        "properties": {
            "language": { "type": "string", "enum": ["go", "rust"], "default": "rust" },
            "service": { "type": "string", "format": "entity", "blueprint": "service",
                "dataset": { "combinator": "and", "rules": [
                    { "property": "language", "operator": "=", "value": { "jqQuery": ".form.language" } } ] } },
        },
        "order": ["language", "service"],
    })).await;
    let browser = Browser::start().await;
    sign_in(&browser, &server, ADMIN_TOKEN).await;
    browser
        .goto(&format!("{}/actions/deploy", server.url))
        .await;
    browser.wait_for("#f-service").await;
    let offered = "return Array.from(document.querySelectorAll('#f-service option')).map(o => o.value).filter(v => v);";
    assert_eq!(js(&browser, offered).await, json!(["cli-rust", "web-rust"]));

    // Another language: the dataset's jq follows the form.
    browser.select("#f-language", "go").await;
    let now = js_until(&browser, offered, json!(["api-go"])).await;
    assert_eq!(now, json!(["api-go"]));

    // Typing narrows the choices, within the dataset still.
    browser.select("#f-language", "rust").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    browser.fill("#field-service .picker-search", "cli").await;
    let now = js_until(&browser, offered, json!(["cli-rust"])).await;
    assert_eq!(now, json!(["cli-rust"]));
    browser.select("#f-service", "cli-rust").await;
    browser.click("#submit").await;
    browser
        .wait_for_text("#run [data-status]", "SUCCESS", RUN_WAIT)
        .await;
    browser.close().await;
}

#[tokio::test]
async fn an_approver_approves_from_the_inbox_and_the_requester_sees_it_move_on() {
    let server = Portico::with_examples(Backend::Sqlite).await;
    let dana = server.member("dana", &[]).await;
    let pat = server.member("pat", &["platform"]).await;
    let requester = Browser::start().await;
    sign_in(&requester, &server, &dana).await;
    requester
        .goto(&format!("{}/actions/provision_dev_environment", server.url))
        .await;
    requester.fill("#f-name", "demo-env").await;
    requester.fill("#f-ttl", "48h").await;
    requester.click("#submit").await;
    requester
        .wait_for_text("#run [data-status]", "WAITING_FOR_APPROVAL", WAIT)
        .await;
    requester.wait_for_text("#approval", "pat", WAIT).await;
    assert!(
        !requester.exists("#approve").await,
        "the requester is not an approver"
    );
    let run_id = js(
        &requester,
        "return document.getElementById('run').dataset.run;",
    )
    .await;
    let run_id = run_id.as_str().expect("run id").to_owned();

    let approver = Browser::start().await;
    sign_in(&approver, &server, &pat).await;
    // An approver may read the run they decide on (it is not theirs).
    approver
        .goto(&format!("{}/runs/{run_id}", server.url))
        .await;
    approver.wait_for_text("#run", "dana", WAIT).await;
    approver.goto(&format!("{}/approvals", server.url)).await;
    let card = format!("#approval-{run_id}");
    approver.wait_for_text(&card, "dana", WAIT).await;
    approver
        .fill(&format!("#reason-{run_id}"), "demo for a customer")
        .await;
    approver
        .click(&format!("{card} button[value=APPROVE]"))
        .await;
    approver.wait_for("#inbox-empty").await;

    // The requester's page follows without a reload by hand.
    requester
        .wait_for_text("#run [data-status]", "SUCCESS", RUN_WAIT)
        .await;
    requester
        .wait_for_text("#approval", "demo for a customer", WAIT)
        .await;
    requester.close().await;
    approver.close().await;
}

#[tokio::test]
async fn a_self_approval_is_refused_with_the_reason() {
    let server = Portico::with_examples(Backend::Sqlite).await;
    let browser = Browser::start().await;
    sign_in(&browser, &server, ADMIN_TOKEN).await;
    browser
        .goto(&format!("{}/actions/provision_dev_environment", server.url))
        .await;
    browser.fill("#f-name", "mine").await;
    browser.fill("#f-ttl", "72h").await;
    browser.click("#submit").await;
    browser
        .wait_for_text("#run [data-status]", "WAITING_FOR_APPROVAL", WAIT)
        .await;
    // An admin holds the approve permission, so the buttons show; the rule refuses.
    browser.click("#approve").await;
    browser
        .wait_for_text("#notice", "does not allow self-approval", WAIT)
        .await;
    assert_eq!(
        browser.text("#run [data-status]").await,
        "WAITING_FOR_APPROVAL"
    );
    browser.close().await;
}

#[tokio::test]
async fn changes_without_the_csrf_token_or_a_session_are_refused() {
    let server = Portico::with_examples(Backend::Sqlite).await;
    let token = server.member("dana", &[]).await;

    // No session: a page redirects to sign-in, a form post is refused.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = http
        .get(format!("{}/runs", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 303);
    assert_eq!(page.headers()["location"], "/login?next=/runs");
    let post = http
        .post(format!("{}/actions/scaffold_service", server.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("in.name=sneaky")
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 403);

    // A session, but a post without its token (what another site could make the browser send).
    let browser = Browser::start().await;
    sign_in(&browser, &server, &token).await;
    let status = |url: &str, body: &str, content: &str| {
        format!(
            "var x = new XMLHttpRequest(); x.open('POST', '{url}', false); \
             x.setRequestHeader('content-type', '{content}'); x.send('{body}'); \
             return [x.status, x.responseText.includes('CSRF')];"
        )
    };
    let form = js(
        &browser,
        &status(
            "/actions/scaffold_service",
            "in.name=sneaky",
            "application/x-www-form-urlencoded",
        ),
    )
    .await;
    assert_eq!(form, json!([403, true]));
    let api = js(
        &browser,
        &status(
            "/v1/actions/scaffold_service/runs",
            "{\"properties\":{\"name\":\"sneaky\"}}",
            "application/json",
        ),
    )
    .await;
    assert_eq!(api[0], json!(403));
    // Nothing ran.
    let runs = server
        .as_user(&token, "GET", "/v1/actions/runs", Value::Null)
        .await;
    assert_eq!(runs.body["runs"], json!([]));

    // Sign-out ends the session in this browser.
    browser.click(".signout button").await;
    browser.wait_for("#token").await;
    browser.goto(&format!("{}/runs", server.url)).await;
    browser.wait_for("#token").await;
    browser.close().await;
}

#[tokio::test]
async fn a_wizard_goes_step_by_step_and_a_secret_is_never_shown_again() {
    let server = Portico::start(Backend::Sqlite).await;
    noop_action(&server, "create_database", json!({
        "properties": {
            "name": { "type": "string", "title": "Name", "pattern": "^[a-z]+$" },
            "size": { "type": "number", "title": "Size (GiB)", "minimum": 1, "default": 10 },
            "password": { "type": "string", "title": "Admin password", "encryption": "aes256-gcm" },
        },
        "required": ["name", "password"],
        "steps": [
            { "title": "Basics", "order": ["name", "size"] },
            { "title": "Access", "order": ["password"] },
        ],
    })).await;
    let browser = Browser::start().await;
    sign_in(&browser, &server, ADMIN_TOKEN).await;
    browser
        .goto(&format!("{}/actions/create_database", server.url))
        .await;
    browser.wait_for("#f-name").await;
    let visible =
        |id: &str| format!("return document.getElementById('{id}').offsetParent !== null;");
    assert_eq!(js(&browser, &visible("f-name")).await, json!(true));
    assert_eq!(
        js(&browser, &visible("f-password")).await,
        json!(false),
        "step 2 shows too early"
    );
    assert_eq!(js(&browser, &visible("submit")).await, json!(false));

    browser.fill("#f-name", "BAD").await;
    browser.click(".wizard-next").await;
    assert_eq!(js(&browser, &visible("f-password")).await, json!(true));
    browser.fill("#f-password", "hunter2-very-secret").await;
    browser.click("#submit").await;

    // Refused for the name (step 1): the wizard opens that step; the secret is not in the page.
    browser
        .wait_for_text("#field-name .error", "does not match", WAIT)
        .await;
    assert_eq!(js(&browser, &visible("f-name")).await, json!(true));
    let html = js(&browser, "return document.documentElement.outerHTML;").await;
    assert!(
        !html.as_str().unwrap().contains("hunter2-very-secret"),
        "the secret came back"
    );

    browser.fill("#f-name", "orders").await;
    browser.click(".wizard-next").await;
    browser.fill("#f-password", "hunter2-very-secret").await;
    browser.click("#submit").await;
    browser
        .wait_for_text("#run [data-status]", "SUCCESS", RUN_WAIT)
        .await;
    let html = js(&browser, "return document.documentElement.outerHTML;").await;
    assert!(
        !html.as_str().unwrap().contains("hunter2-very-secret"),
        "the run page shows the secret"
    );
    // "Run again" fills the form with what the run ran with, and asks for the secret again.
    browser.wait_for("#run[data-final='true']").await;
    browser.click("#again").await;
    browser.wait_for("#f-name").await;
    let again = js(&browser, "return [document.getElementById('f-name').value, document.getElementById('f-password').value];").await;
    assert_eq!(again, json!(["orders", ""]));
    browser.click(".wizard-next").await;
    browser.click("#submit").await;
    browser
        .wait_for_text("#field-password .error", "required", WAIT)
        .await;
    // The refusal opens the step that holds the error.
    browser.fill("#f-password", "hunter2-very-secret").await;
    browser.click("#submit").await;
    browser
        .wait_for_text("#run [data-status]", "SUCCESS", RUN_WAIT)
        .await;
    browser.close().await;
}

#[tokio::test]
async fn an_admin_creates_a_token_once_shown_and_sees_action_errors_by_path() {
    let server = Portico::with_examples(Backend::Sqlite).await;
    server.member("dana", &[]).await;
    let browser = Browser::start().await;
    sign_in(&browser, &server, ADMIN_TOKEN).await;

    // A token for dana: shown once, then listed by its prefix only.
    browser
        .goto(&format!("{}/admin?user=dana#tokens", server.url))
        .await;
    browser
        .fill("#tokens form[data-show] input[name=name]", "laptop")
        .await;
    browser.click("#tokens form[data-show] button").await;
    let shown = browser
        .wait_for_text("#tokens form[data-show] .api-result", "ptc_", WAIT)
        .await;
    let value = shown.split_whitespace().last().unwrap().to_owned();
    let who = server
        .as_user(&value, "GET", "/v1/actions/runs", Value::Null)
        .await;
    assert_eq!(who.status, 200, "the shown token works");
    // (A new navigation: the same address with only a new fragment would not reload.)
    browser
        .goto(&format!("{}/admin?user=dana", server.url))
        .await;
    let listed = browser.text("#tokens table").await;
    assert!(
        listed.contains("laptop") && !listed.contains(&value),
        "{listed}"
    );

    // An action edited with a mistake: the API's error, by its path, next to the editor.
    browser
        .goto(&format!(
            "{}/admin?action=scaffold_service#actions",
            server.url
        ))
        .await;
    let broken = js(&browser, "var t = document.getElementById('definition'); var d = JSON.parse(t.value); \
        d.trigger.userInputs.properties.name.type = 'strng'; t.value = JSON.stringify(d, null, 2); return true;").await;
    assert_eq!(broken, json!(true));
    browser
        .click("form[data-json=definition] button[type=submit]")
        .await;
    browser
        .wait_for_text(
            "form[data-json=definition] .api-result",
            "trigger.userInputs.properties.name",
            WAIT,
        )
        .await;
    browser.close().await;
}

#[tokio::test]
async fn pages_read_at_320_pixels_and_in_the_dark() {
    let server = Portico::with_examples(Backend::Sqlite).await;
    let browser = Browser::start().await;
    sign_in(&browser, &server, ADMIN_TOKEN).await;
    browser.set_window_size(320, 720).await;
    browser
        .goto(&format!("{}/actions/provision_dev_environment", server.url))
        .await;
    browser.wait_for("#f-name").await;
    // Nothing wider than the screen: no sideways scrolling.
    let wide = js(
        &browser,
        "return document.documentElement.scrollWidth <= window.innerWidth;",
    )
    .await;
    assert_eq!(wide, json!(true), "the form scrolls sideways at 320 px");
    browser.screenshot("form-320px").await;
    // Keyboard: Tab from the top reaches the skip link first, and it shows when focused.
    browser.goto(&format!("{}/catalog", server.url)).await;
    browser.wait_for("#bp-service").await;
    let body = browser.wait_for("body").await;
    body.send_keys("\u{E004}").await.expect("Tab");
    let focused = js(&browser, "var a = document.activeElement; return [a.className, a.getBoundingClientRect().left >= 0];").await;
    assert_eq!(focused, json!(["skip", true]));
    browser.close().await;

    // The dark theme follows the system setting.
    let dark = Browser::start_with(&["--force-dark-mode"]).await;
    sign_in(&dark, &server, ADMIN_TOKEN).await;
    dark.goto(&format!("{}/", server.url)).await;
    dark.wait_for("#action-scaffold_service").await;
    let scheme = js(&dark, "return [matchMedia('(prefers-color-scheme: dark)').matches, getComputedStyle(document.body).backgroundColor];").await;
    assert_eq!(
        scheme,
        json!([true, "rgb(17, 19, 24)"]),
        "the page is not dark"
    );
    dark.screenshot("hub-dark").await;
    dark.close().await;
}

#[tokio::test]
async fn a_link_from_another_site_opens_the_page_signed_in() {
    let server = Portico::with_examples(Backend::Sqlite).await;
    let browser = Browser::start().await;
    sign_in(&browser, &server, ADMIN_TOKEN).await;
    // A page of another site (a chat message, a notification) links to a run list; the
    // session cookie is SameSite=Strict, so that first request arrives without it.
    let elsewhere = format!(
        "data:text/html,<a id=go href='{}/runs?status=SUCCESS'>the runs</a>",
        server.url
    );
    browser.goto(&elsewhere).await;
    browser.click("#go").await;
    browser.wait_for("#runs").await;
    assert!(
        browser
            .current_url()
            .await
            .ends_with("/runs?status=SUCCESS"),
        "{}",
        browser.current_url().await
    );
    browser.close().await;
}

#[tokio::test]
async fn the_other_pages_as_their_users_see_them() {
    let server = Portico::with_examples(Backend::Sqlite).await;
    let dana = server.member("dana", &[]).await;
    let pat = server.member("pat", &["platform"]).await;
    let waiting = server
        .as_user(
            &dana,
            "POST",
            "/v1/actions/provision_dev_environment/runs",
            json!({ "properties": { "name": "demo-env", "ttl": "48h" } }),
        )
        .await;
    assert_eq!(waiting.status, 202, "{}", waiting.body);
    let id = server
        .run(
            "scaffold_service",
            json!({ "properties": { "name": "billing" } }),
        )
        .await;
    server.finished(&id).await;

    let browser = Browser::start().await;
    browser.goto(&format!("{}/login", server.url)).await;
    browser.wait_for("#token").await;
    browser.screenshot("login").await;
    sign_in(&browser, &server, &pat).await;
    browser.goto(&format!("{}/approvals", server.url)).await;
    browser.wait_for_text(".inbox", "dana", WAIT).await;
    browser.screenshot("approvals").await;
    browser.click(".signout button").await;
    browser.wait_for("#token").await;

    sign_in(&browser, &server, ADMIN_TOKEN).await;
    for (path, shows, name) in [
        ("/runs", "Scaffold a service", "runs"),
        ("/catalog/service/billing", &id as &str, "entity"),
        ("/audit?resource_type=run", &id, "audit"),
        ("/admin", "Tokens of admin", "admin"),
        ("/catalog/nothing", "not found", "not-found"),
    ] {
        browser.goto(&format!("{}{path}", server.url)).await;
        browser.wait_for_text("main", shows, WAIT).await;
        browser.screenshot(name).await;
    }
    browser.close().await;
}
