//! `/v1/users` and `/v1/teams`: admins manage them; a token is shown once and works at once.

use portico_tests::api::Portico;
use serde_json::json;

#[tokio::test]
async fn an_admin_creates_teams_and_users_whose_tokens_work() {
    for p in Portico::each().await {
        let team = p
            .admin(
                "POST",
                "/v1/teams",
                json!({ "name": "payments", "description": "Money" }),
            )
            .await;
        assert_eq!(team.expect(201)["team"]["name"], "payments");
        p.admin("POST", "/v1/teams", json!({ "name": "payments" }))
            .await
            .expect_error(409, "conflict", "team `payments` already exists");
        assert_eq!(
            p.admin("GET", "/v1/teams", json!(null)).await.expect(200)["teams"][0]["name"],
            "payments"
        );

        let created = p
            .admin("POST", "/v1/users", json!({ "identifier": "alice", "email": "alice@example.com", "role": "member", "teams": ["payments"] }))
            .await;
        let body = created.expect(201);
        let token = body["token"]
            .as_str()
            .expect("the token is shown once")
            .to_owned();
        assert!(token.starts_with("ptc_"));
        assert_eq!(body["user"]["teams"], json!(["payments"]));

        let me = p
            .as_user(&token, "GET", "/v1/users/alice", json!(null))
            .await;
        assert_eq!(me.expect(200)["user"]["role"], "member");
        assert!(
            me.body["user"].get("token").is_none(),
            "tokens are never shown again"
        );
        let users = p.admin("GET", "/v1/users", json!(null)).await;
        let names: Vec<&str> = users.expect(200)["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["identifier"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["admin", "alice"]);
        assert!(!users.body.to_string().contains(&token));

        p.admin(
            "POST",
            "/v1/users",
            json!({ "identifier": "alice", "role": "member" }),
        )
        .await
        .expect_error(409, "conflict", "user `alice` already exists");
    }
}

#[tokio::test]
async fn user_and_team_input_is_validated() {
    for p in Portico::each().await {
        p.admin(
            "POST",
            "/v1/users",
            json!({ "identifier": "bob", "role": "owner" }),
        )
        .await
        .expect_error(422, "invalid", "role: must be `admin` or `member`");
        p.admin(
            "POST",
            "/v1/users",
            json!({ "identifier": "bob smith", "role": "member" }),
        )
        .await
        .expect_error(422, "invalid", "identifier: must be");
        p.admin(
            "POST",
            "/v1/users",
            json!({ "identifier": "bob", "role": "member", "email": "bob" }),
        )
        .await
        .expect_error(422, "invalid", "email: must be an e-mail address");
        p.admin(
            "POST",
            "/v1/users",
            json!({ "identifier": "bob", "role": "member", "teams": ["ghosts"] }),
        )
        .await
        .expect_error(422, "invalid", "teams[0]: team `ghosts` does not exist");
        p.admin("POST", "/v1/users", json!({ "role": "member" }))
            .await
            .expect_error(422, "invalid", "missing field `identifier`");
        p.admin("POST", "/v1/teams", json!({ "name": "" }))
            .await
            .expect_error(422, "invalid", "name: must be");
        p.admin("GET", "/v1/users/nobody", json!(null))
            .await
            .expect_error(404, "not_found", "user `nobody` not found");
    }
}

#[tokio::test]
async fn the_first_start_creates_the_admin_with_a_generated_token_in_a_private_file() {
    use portico_api::auth::{Bootstrap, bootstrap_admin, hash_token};
    use std::os::unix::fs::PermissionsExt;
    for backend in portico_tests::api::backends() {
        let db = portico_tests::api::Database::fresh(backend).await;
        let store = portico_store::open(&db.url).await.unwrap();
        let created = bootstrap_admin(store.as_ref(), db.dir.path(), None)
            .await
            .unwrap();
        let path = db.dir.path().join("admin-token");
        assert_eq!(created, Bootstrap::Generated(path.clone()));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "only the operator can read the token");
        let token = std::fs::read_to_string(&path).unwrap().trim().to_owned();
        let admin = store
            .authenticate(&hash_token(&token))
            .await
            .unwrap()
            .expect("the token works");
        assert_eq!(admin.user.identifier, "admin");
        // A second start changes nothing, whatever token it is given.
        let other = "another-token-of-at-least-32-characters".to_owned();
        let again = bootstrap_admin(store.as_ref(), db.dir.path(), Some(other))
            .await
            .unwrap();
        assert_eq!(again, Bootstrap::AlreadyDone);
        assert_eq!(store.count_users().await.unwrap(), 1);
    }
}

#[tokio::test]
async fn an_admin_token_shorter_than_32_characters_is_refused_at_start() {
    use portico_api::auth::{Bootstrap, bootstrap_admin};
    use portico_api::startup::check_admin_token;
    let short = "x".repeat(31);
    let refusal = "PORTICO_ADMIN_TOKEN has 31 characters; it must have at least 32";
    assert!(check_admin_token(&short).unwrap_err().starts_with(refusal));
    assert_eq!(check_admin_token(&"x".repeat(32)), Ok(()));
    for backend in portico_tests::api::backends() {
        let db = portico_tests::api::Database::fresh(backend).await;
        let store = portico_store::open(&db.url).await.unwrap();
        let error = bootstrap_admin(store.as_ref(), db.dir.path(), Some(short.clone()))
            .await
            .unwrap_err();
        assert!(error.starts_with(refusal), "{error}");
        assert_eq!(
            store.count_users().await.unwrap(),
            0,
            "no admin was created"
        );
        let created = bootstrap_admin(store.as_ref(), db.dir.path(), Some("y".repeat(32)))
            .await
            .unwrap();
        assert_eq!(created, Bootstrap::FromEnvironment);
    }
}
