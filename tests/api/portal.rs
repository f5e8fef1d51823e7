//! The portal's sessions and live run pages over HTTP, on every backend: what the browser suite
//! (SQLite) relies on, without a browser.

use portico_tests::api::{ADMIN_TOKEN, Portico, backends, portal_sign_in, set_cookie};
use reqwest::header::COOKIE;
use serde_json::{Value, json};

/// A browser's cookie jar, as far as these tests need one.
struct Session {
    http: reqwest::Client,
    url: String,
    cookie: String,
    csrf: String,
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Signs in through `/login` as a browser does; `None` when refused (with the status).
async fn sign_in(p: &Portico, token: &str) -> Result<Session, u16> {
    let http = no_redirects();
    let signed = portal_sign_in(&http, &p.url, token, "/runs").await?;
    assert_eq!(signed.location, "/runs");
    let cookie = signed.set_cookie;
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "served over http: {cookie}");
    let cookie = signed.cookie;
    let page = http
        .get(format!("{}/runs", p.url))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let csrf = html
        .split("data-csrf=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page carries its CSRF token")
        .to_owned();
    Ok(Session {
        http,
        url: p.url.clone(),
        cookie,
        csrf,
    })
}

impl Session {
    async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.url))
            .header(COOKIE, &self.cookie)
            .send()
            .await
            .unwrap()
    }

    async fn api(&self, method: &str, path: &str, body: Value, csrf: bool) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url))
            .header(COOKIE, &self.cookie)
            .json(&body);
        if csrf {
            request = request.header("x-csrf-token", &self.csrf);
        }
        let answer = request.send().await.unwrap();
        let status = answer.status().as_u16();
        (status, answer.json().await.unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn a_token_opens_a_session_that_the_api_accepts_with_its_csrf_header() {
    for p in Portico::each().await {
        let s = sign_in(&p, ADMIN_TOKEN).await.expect("signed in");
        let (status, body) = s.api("GET", "/v1/teams", Value::Null, false).await;
        assert_eq!(status, 200, "{body}");
        // A change with the cookie but without the header is what a forged request looks like.
        let team = json!({ "name": "from-the-portal" });
        let (status, body) = s.api("POST", "/v1/teams", team.clone(), false).await;
        assert_eq!(status, 403, "{body}");
        assert!(
            body["message"].as_str().unwrap().contains("x-csrf-token"),
            "{body}"
        );
        let (status, body) = s.api("POST", "/v1/teams", team, true).await;
        assert_eq!(status, 201, "{body}");
    }
}

#[tokio::test]
async fn a_wrong_token_or_a_sign_in_from_another_site_is_refused() {
    for p in Portico::each().await {
        assert_eq!(sign_in(&p, "ptc_not_a_token").await.err(), Some(401));
        // Without the nonce cookie the form came from elsewhere.
        let answer = no_redirects()
            .post(format!("{}/login", p.url))
            .form(&[("token", ADMIN_TOKEN), ("nonce", "abc")])
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 403);
        assert!(set_cookie(&answer, "portico_session").is_none());
        // Sign-in only ever returns to this site.
        let http = no_redirects();
        let form = http
            .get(format!("{}/login?next=//evil.example", p.url))
            .send()
            .await
            .unwrap();
        let html = form.text().await.unwrap();
        assert!(
            !html.contains("evil.example"),
            "the form kept a foreign address"
        );
    }
}

#[tokio::test]
async fn revoking_the_token_ends_the_sessions_it_opened() {
    for p in Portico::each().await {
        let token = p.member("dana", &[]).await;
        let s = sign_in(&p, &token).await.expect("signed in");
        let tokens = p.admin("GET", "/v1/users/dana/tokens", Value::Null).await;
        let id = tokens.body["tokens"][0]["id"].as_str().unwrap().to_owned();
        p.admin(
            "DELETE",
            &format!("/v1/users/dana/tokens/{id}"),
            Value::Null,
        )
        .await
        .expect(200);
        let page = s.get("/runs").await;
        assert_eq!(page.status(), 303);
        assert_eq!(page.headers()["location"], "/login?next=/runs");
    }
}

/// Runs `scaffold_service` (three log lines, paced) and waits for its end.
async fn scaffolded(p: &Portico) -> String {
    let id = p
        .run(
            "scaffold_service",
            json!({ "properties": { "name": "billing" } }),
        )
        .await;
    let run = p.finished(&id).await;
    assert_eq!(run["status"], "SUCCESS", "{run}");
    id
}

#[tokio::test]
async fn the_run_stream_says_it_is_alive_and_resumes_after_the_last_line_seen() {
    for backend in backends() {
        let p = Portico::with_examples(backend).await;
        let id = scaffolded(&p).await;
        let s = sign_in(&p, ADMIN_TOKEN).await.expect("signed in");
        let stream = s
            .http
            .get(format!("{}/runs/{id}/events", s.url))
            .header(COOKIE, &s.cookie)
            .header("last-event-id", "1")
            .send()
            .await
            .unwrap();
        assert_eq!(stream.headers()["content-type"], "text/event-stream");
        // The run has ended, so the stream ends too: read it whole.
        let text = stream.text().await.unwrap();
        let events: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("event: "))
            .collect();
        assert_eq!(events.first(), Some(&"ping"), "{text}");
        assert_eq!(events.last(), Some(&"end"), "{text}");
        let ids: Vec<i64> = text
            .lines()
            .filter_map(|l| l.strip_prefix("id: "))
            .map(|i| i.parse().unwrap())
            .collect();
        assert!(
            !ids.is_empty() && ids.iter().all(|i| *i > 1),
            "resumed after line 1: {ids:?}"
        );
        assert!(text.contains("registered service billing"), "{text}");
    }
}

#[tokio::test]
async fn a_page_whose_stream_is_buffered_polls_instead() {
    for backend in backends() {
        let p = Portico::with_examples(backend).await;
        let id = scaffolded(&p).await;
        let s = sign_in(&p, ADMIN_TOKEN).await.expect("signed in");
        let answer = s.get(&format!("/runs/{id}/poll?after=1")).await;
        assert_eq!(answer.status(), 200);
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["run"]["status"], "SUCCESS");
        let seqs: Vec<i64> = body["logs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["seq"].as_i64().unwrap())
            .collect();
        assert!(!seqs.is_empty() && seqs.iter().all(|s| *s > 1), "{seqs:?}");
        // Someone else's run is not there for a member.
        let token = p.member("eve", &[]).await;
        let eve = sign_in(&p, &token).await.expect("signed in");
        assert_eq!(eve.get(&format!("/runs/{id}/poll")).await.status(), 404);
        assert_eq!(eve.get(&format!("/runs/{id}")).await.status(), 404);
    }
}

#[tokio::test]
async fn every_page_answers_its_viewer_on_every_backend() {
    for backend in backends() {
        let p = Portico::with_examples(backend).await;
        let id = scaffolded(&p).await;
        let admin = sign_in(&p, ADMIN_TOKEN).await.expect("signed in");
        let token = p.member("dana", &[]).await;
        let member = sign_in(&p, &token).await.expect("signed in");
        let pages = [
            ("/", "Scaffold a service"),
            ("/runs", id.as_str()),
            (
                "/runs?status=SUCCESS&action=scaffold_service&user=admin",
                id.as_str(),
            ),
            ("/runs?entity=billing", "No runs."),
            (&format!("/runs/{id}"), "Service billing scaffolded"),
            (&format!("/runs/{id}/again"), "billing"),
            ("/approvals", "Nothing waits for your decision."),
            ("/catalog", "Service"),
            ("/catalog/service?q=bill", "billing"),
            ("/catalog/service?prop=language&op=%3D&value=go", "billing"),
            (
                "/catalog/service?prop=language&op=%3D&value=cobol",
                "No entities match.",
            ),
            ("/catalog/service?sort=-updated", "aria-sort=\"descending\""),
            ("/catalog/service?sort=title&q=bill", "billing"),
            ("/catalog/service/billing", id.as_str()),
            ("/audit?resource_type=run", id.as_str()),
            ("/admin", "Tokens of admin"),
            ("/admin?action=scaffold_service", "Edit scaffold_service"),
        ];
        for (path, shows) in pages {
            let answer = admin.get(path).await;
            let status = answer.status();
            let html = answer.text().await.unwrap();
            assert_eq!(status, 200, "{path}: {html}");
            assert!(html.contains(shows), "{path} lacks {shows:?}");
        }
        // Scripts come only from the server; no page can be framed.
        let hub = admin.get("/").await;
        let policy = hub.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            policy.contains("script-src 'self'") && policy.contains("frame-ancestors 'none'"),
            "{policy}"
        );
        // A member sees their own runs only, and no admin page.
        let mine = member.get("/runs").await.text().await.unwrap();
        assert!(!mine.contains(&id), "a member sees the admin's run");
        assert_eq!(member.get("/admin").await.status(), 403);
        assert_eq!(member.get("/catalog/nothing").await.status(), 404);
        assert_eq!(
            member
                .get("/actions/teardown_expired_environment")
                .await
                .status(),
            404
        );
    }
}

#[tokio::test]
async fn progress_reaches_the_page_while_a_plugin_floods_its_log() {
    use portico_store::{AuditRecord, RunLogLine, RunRecord, RunStatus};
    for p in Portico::each().await {
        let store = portico_store::open(&p.database_url()).await.unwrap();
        let mut run = RunRecord::accepted("r_chatty", "anything", "API", "admin");
        run.status = RunStatus::InProgress;
        run.attempts = 1;
        let lease = portico_store::now() + chrono::TimeDelta::minutes(5);
        let audit = AuditRecord::success("admin", "test", "RUN", "run", "r_chatty");
        store
            .create_claimed_run(run, audit, "test-writer", lease)
            .await
            .unwrap();
        let s = sign_in(&p, ADMIN_TOKEN).await.expect("signed in");
        let mut stream = s
            .http
            .get(format!("{}/runs/r_chatty/events", s.url))
            .header(COOKIE, &s.cookie)
            .send()
            .await
            .unwrap();
        // 50 lines every 10 ms for 2 s; halfway, the run reports 50%.
        let writer = tokio::spawn(async move {
            let mut seq = 0;
            for round in 0..200 {
                let lines = (0..50)
                    .map(|_| {
                        seq += 1;
                        RunLogLine {
                            run_id: "r_chatty".into(),
                            seq,
                            at: portico_store::now(),
                            level: "INFO".into(),
                            message: format!("line {seq}"),
                        }
                    })
                    .collect();
                store.append_run_logs(lines).await.unwrap();
                if round == 100 {
                    let mut run = store.get_run("r_chatty").await.unwrap().unwrap();
                    run.progress = Some(json!({ "percent": 50, "label": "halfway" }));
                    store.update_run(&run, None).await.unwrap();
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        });
        let mut text = String::new();
        let mut lines_after_progress = None;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            let Ok(Some(chunk)) = stream.chunk().await else {
                break;
            };
            text.push_str(&String::from_utf8_lossy(&chunk));
            match lines_after_progress {
                None if text.contains("\"halfway\"") => {
                    let at = text.find("\"halfway\"").unwrap();
                    lines_after_progress = Some(at);
                }
                Some(at) if text[at..].matches("event: log").count() > 100 => break,
                _ => {}
            }
        }
        writer.abort();
        let at = lines_after_progress.expect("the progress arrived while lines flowed");
        assert!(
            text[at..].matches("event: log").count() > 100,
            "the progress came only once the lines stopped"
        );
    }
}

#[tokio::test]
async fn a_day_2_form_without_its_entity_says_so_at_the_entity_picker() {
    let p = Portico::with_examples(portico_tests::api::Backend::Sqlite).await;
    let s = sign_in(&p, ADMIN_TOKEN).await.expect("signed in");
    let answer = s
        .http
        .post(format!("{}/actions/change_replicas", s.url))
        .header(COOKIE, &s.cookie)
        .form(&[("_csrf", s.csrf.as_str()), ("in.replicas", "3")])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 422);
    let html = answer.text().await.unwrap();
    let at_picker = html
        .split("id=\"e-_entity\">")
        .nth(1)
        .expect("an error at the picker");
    assert!(at_picker.contains("entity"), "{at_picker}");
    assert!(html.contains("value=\"3\""), "the typed replicas are kept");
}
