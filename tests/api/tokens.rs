//! `/v1/users/{user}/tokens` and `PATCH`/`DELETE /v1/users/{user}`: a user lists, creates,
//! rotates and revokes their own tokens, an admin anyone's; an admin changes a user's role and
//! teams, disables or deletes them. A token that was revoked, rotated out, or whose user was
//! disabled or deleted fails on the very next request; the last enabled admin stays.

use portico_tests::api::{ADMIN_TOKEN, Answer, Portico};
use serde_json::{Value, json};

/// The ids of a user's tokens, as the admin lists them.
async fn token_ids(p: &Portico, user: &str) -> Vec<String> {
    p.admin("GET", &format!("/v1/users/{user}/tokens"), json!(null))
        .await
        .expect(200)["tokens"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|t| t["id"].as_str().expect("an id").to_owned())
        .collect()
}

/// Whether `token` authenticates: 200 on the caller's own user, or 401.
async fn works(p: &Portico, token: &str, user: &str) -> bool {
    let answer = p
        .as_user(token, "GET", &format!("/v1/users/{user}"), json!(null))
        .await;
    match answer.status {
        200 => true,
        401 => {
            answer.expect_error(401, "unauthorized", "unknown token");
            false
        }
        other => panic!("unexpected {other}: {}", answer.body),
    }
}

fn value(answer: &Answer) -> String {
    answer.body["token"]["value"]
        .as_str()
        .expect("the value is shown once")
        .to_owned()
}

#[tokio::test]
async fn a_member_lists_creates_rotates_and_revokes_their_own_tokens() {
    for p in Portico::each().await {
        let alice = p.member("alice", &["payments"]).await;

        // The token made with the user is listed without its value, by id and prefix.
        let listed = p
            .as_user(&alice, "GET", "/v1/users/alice/tokens", json!(null))
            .await;
        let first = listed.expect(200)["tokens"][0].clone();
        assert!(first["id"].as_str().unwrap().starts_with("tok_"));
        assert_eq!(first["user"], "alice");
        assert_eq!(first["prefix"], alice[..12]);
        assert!(first.get("value").is_none());
        assert!(!listed.body.to_string().contains(&alice));

        // Its use is recorded (to the minute, in the background).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let tokens = p
                .as_user(&alice, "GET", "/v1/users/alice/tokens", json!(null))
                .await;
            if tokens.expect(200)["tokens"][0]["lastUsedAt"].is_string() {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "use never recorded");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }

        // A new token, named, shown once; it works at once.
        let created = p
            .as_user(
                &alice,
                "POST",
                "/v1/users/alice/tokens",
                json!({ "name": "ci" }),
            )
            .await;
        let ci = created.expect(201)["token"].clone();
        let ci_value = value(&created);
        assert!(ci_value.starts_with("ptc_") && ci_value.len() > 40);
        assert_eq!(ci["name"], "ci");
        assert_eq!(ci["prefix"], ci_value[..12]);
        assert_eq!(ci["lastUsedAt"], Value::Null);
        assert!(works(&p, &ci_value, "alice").await);
        // The body may be left out.
        let unnamed = p
            .as_user(&alice, "POST", "/v1/users/alice/tokens", json!(null))
            .await;
        assert_eq!(unnamed.expect(201)["token"]["name"], Value::Null);

        // Rotating keeps the id and name, gives a new value: the old one fails at once.
        let ci_id = ci["id"].as_str().unwrap();
        let rotated = p
            .as_user(
                &alice,
                "POST",
                &format!("/v1/users/alice/tokens/{ci_id}/rotate"),
                json!(null),
            )
            .await;
        let new_value = value(&rotated);
        assert_eq!(rotated.expect(200)["token"]["id"], ci_id);
        assert_eq!(rotated.body["token"]["name"], "ci");
        assert!(rotated.body["token"]["rotatedAt"].is_string());
        assert_ne!(new_value, ci_value);
        assert!(
            !works(&p, &ci_value, "alice").await,
            "the old value is dead"
        );
        assert!(works(&p, &new_value, "alice").await);

        // Revoking: the token fails at once; the user's other tokens still work.
        let revoked = p
            .as_user(
                &alice,
                "DELETE",
                &format!("/v1/users/alice/tokens/{ci_id}"),
                json!(null),
            )
            .await;
        assert_eq!(revoked.expect(200)["deleted"], ci_id);
        assert!(!works(&p, &new_value, "alice").await);
        assert!(works(&p, &alice, "alice").await);
        assert_eq!(token_ids(&p, "alice").await.len(), 2);
        p.as_user(
            &alice,
            "DELETE",
            &format!("/v1/users/alice/tokens/{ci_id}"),
            json!(null),
        )
        .await
        .expect_error(
            404,
            "not_found",
            &format!("user `alice` has no token `{ci_id}`"),
        );
        p.as_user(
            &alice,
            "POST",
            "/v1/users/alice/tokens/tok_nope/rotate",
            json!(null),
        )
        .await
        .expect_error(404, "not_found", "user `alice` has no token `tok_nope`");

        // Each change is audited, with the token's metadata and never its value.
        let log = p
            .admin(
                "GET",
                "/v1/audit-log?resource=token&actor=alice",
                json!(null),
            )
            .await;
        let operations: Vec<&str> = log.expect(200)["audit"]
            .as_array()
            .expect("audit entries")
            .iter()
            .map(|e| e["operation"].as_str().unwrap())
            .collect();
        assert_eq!(operations, ["DELETE", "ROTATE", "CREATE", "CREATE"]);
        for secret in [&alice, &ci_value, &new_value] {
            assert!(!log.body.to_string().contains(secret.as_str()));
        }
    }
}

#[tokio::test]
async fn token_input_is_checked_and_a_user_holds_a_bounded_number() {
    for p in Portico::each().await {
        let alice = p.member("alice", &["payments"]).await;
        let path = "/v1/users/alice/tokens";
        p.send("POST", path, Some(&alice), Some(b"{\"name\": ".to_vec()))
            .await
            .expect_error(400, "malformed_json", "the body is not valid JSON");
        p.as_user(&alice, "POST", path, json!({ "name": "" }))
            .await
            .expect_error(422, "invalid", "name: must be 1-100 characters");
        p.as_user(&alice, "POST", path, json!({ "scopes": ["all"] }))
            .await
            .expect_error(422, "invalid", "unknown field `scopes`");
        p.admin("GET", "/v1/users/nobody/tokens", json!(null))
            .await
            .expect_error(404, "not_found", "user `nobody` not found");
        p.admin("POST", "/v1/users/nobody/tokens", json!(null))
            .await
            .expect_error(404, "not_found", "user `nobody` not found");

        let max = 25;
        for _ in 1..max {
            p.as_user(&alice, "POST", path, json!(null))
                .await
                .expect(201);
        }
        p.as_user(&alice, "POST", path, json!(null))
            .await
            .expect_error(
                409,
                "conflict",
                "user `alice` holds 25 tokens, the most allowed (25); revoke one first",
            );
    }
}

#[tokio::test]
async fn only_an_admin_manages_another_users_tokens() {
    for p in Portico::each().await {
        let alice = p.member("alice", &["payments"]).await;
        let bob = p.member("bob", &["payments"]).await;
        let alices = token_ids(&p, "alice").await[0].clone();
        let one = format!("/v1/users/alice/tokens/{alices}");
        for (method, path, what) in [
            (
                "GET",
                "/v1/users/alice/tokens".to_owned(),
                "listing another user's tokens",
            ),
            (
                "POST",
                "/v1/users/alice/tokens".to_owned(),
                "creating tokens for another user",
            ),
            (
                "POST",
                format!("{one}/rotate"),
                "rotating another user's tokens",
            ),
            ("DELETE", one.clone(), "revoking another user's tokens"),
        ] {
            p.as_user(&bob, method, &path, json!(null))
                .await
                .expect_error(403, "forbidden", &format!("{what} needs the admin role"));
            // Without a token: 401 before anything else.
            p.send(method, &path, None, None).await.expect_error(
                401,
                "unauthorized",
                "missing token",
            );
        }
        assert!(works(&p, &alice, "alice").await, "nothing changed");
        assert_eq!(token_ids(&p, "alice").await, std::slice::from_ref(&alices));

        // An admin may: rotating alice's token cuts her old value off at once.
        let rotated = p.admin("POST", &format!("{one}/rotate"), json!(null)).await;
        let fresh = value(&rotated);
        assert!(!works(&p, &alice, "alice").await);
        assert!(works(&p, &fresh, "alice").await);
        p.admin("DELETE", &one, json!(null)).await.expect(200);
        assert!(!works(&p, &fresh, "alice").await);
        assert_eq!(token_ids(&p, "alice").await, Vec::<String>::new());
        let given = p
            .admin(
                "POST",
                "/v1/users/alice/tokens",
                json!({ "name": "new laptop" }),
            )
            .await;
        assert!(works(&p, &value(&given), "alice").await);
    }
}

#[tokio::test]
async fn an_admin_changes_a_users_role_and_teams_and_disables_them_at_once() {
    for p in Portico::each().await {
        let alice = p.member("alice", &["payments"]).await;
        p.admin("POST", "/v1/teams", json!({ "name": "platform" }))
            .await
            .expect(201);

        let changed = p
            .admin(
                "PATCH",
                "/v1/users/alice",
                json!({ "teams": ["platform", "payments"] }),
            )
            .await;
        assert_eq!(
            changed.expect(200)["user"]["teams"],
            json!(["platform", "payments"])
        );
        let me = p
            .as_user(&alice, "GET", "/v1/users/alice", json!(null))
            .await;
        assert_eq!(
            me.expect(200)["user"]["teams"],
            json!(["platform", "payments"]),
            "seen at once"
        );

        // A role change applies from the next request on, both ways.
        p.as_user(&alice, "GET", "/v1/users", json!(null))
            .await
            .expect(403);
        p.admin("PATCH", "/v1/users/alice", json!({ "role": "admin" }))
            .await
            .expect(200);
        p.as_user(&alice, "GET", "/v1/users", json!(null))
            .await
            .expect(200);
        p.admin("PATCH", "/v1/users/alice", json!({ "role": "member" }))
            .await
            .expect(200);
        p.as_user(&alice, "GET", "/v1/users", json!(null))
            .await
            .expect_error(403, "forbidden", "listing users needs the admin role");

        // Disabled: every token fails at once; the user and the tokens stay for later.
        let disabled = p
            .admin("PATCH", "/v1/users/alice", json!({ "disabled": true }))
            .await;
        assert_eq!(disabled.expect(200)["user"]["disabled"], true);
        assert!(!works(&p, &alice, "alice").await);
        assert_eq!(token_ids(&p, "alice").await.len(), 1);
        p.admin("PATCH", "/v1/users/alice", json!({ "disabled": false }))
            .await
            .expect(200);
        assert!(works(&p, &alice, "alice").await);

        // Each change is audited with the user before and after.
        let log = p
            .admin(
                "GET",
                "/v1/audit-log?resource=user&identifier=alice",
                json!(null),
            )
            .await;
        let entries = log.expect(200)["audit"].as_array().unwrap().clone();
        let updates: Vec<&Value> = entries
            .iter()
            .filter(|e| e["operation"] == "UPDATE")
            .collect();
        assert_eq!(updates.len(), 5);
        assert_eq!(updates[0]["before"]["disabled"], true);
        assert_eq!(updates[0]["after"]["disabled"], false);
        assert_eq!(updates[0]["actor"], "admin");

        // What is refused, and why.
        let path = "/v1/users/alice";
        p.as_user(&alice, "PATCH", path, json!({ "role": "admin" }))
            .await
            .expect_error(403, "forbidden", "changing users needs the admin role");
        p.send("PATCH", path, None, Some(b"{}".to_vec()))
            .await
            .expect_error(401, "unauthorized", "missing token");
        p.send(
            "PATCH",
            path,
            Some(ADMIN_TOKEN),
            Some(b"{\"role\": ".to_vec()),
        )
        .await
        .expect_error(400, "malformed_json", "the body is not valid JSON");
        p.admin("PATCH", path, json!({ "role": "owner" }))
            .await
            .expect_error(422, "invalid", "role: must be `admin` or `member`");
        p.admin("PATCH", path, json!({ "teams": ["ghosts"] }))
            .await
            .expect_error(422, "invalid", "teams[0]: team `ghosts` does not exist");
        p.admin("PATCH", path, json!({ "email": "a@example.com" }))
            .await
            .expect_error(422, "invalid", "unknown field `email`");
        p.admin("PATCH", path, json!({}))
            .await
            .expect_error(422, "invalid", "nothing to change");
        p.admin("PATCH", "/v1/users/nobody", json!({ "disabled": true }))
            .await
            .expect_error(404, "not_found", "user `nobody` not found");
        assert!(works(&p, &alice, "alice").await);
    }
}

#[tokio::test]
async fn deleting_a_user_revokes_all_their_tokens() {
    for p in Portico::each().await {
        let alice = p.member("alice", &["payments"]).await;
        let second = p
            .as_user(&alice, "POST", "/v1/users/alice/tokens", json!(null))
            .await;
        let second = value(&second);
        let bob = p.member("bob", &["payments"]).await;

        p.as_user(&bob, "DELETE", "/v1/users/alice", json!(null))
            .await
            .expect_error(403, "forbidden", "deleting users needs the admin role");
        p.send("DELETE", "/v1/users/alice", None, None)
            .await
            .expect_error(401, "unauthorized", "missing token");
        assert!(works(&p, &alice, "alice").await);

        let deleted = p.admin("DELETE", "/v1/users/alice", json!(null)).await;
        assert_eq!(deleted.expect(200)["deleted"], "alice");
        assert!(!works(&p, &alice, "alice").await);
        assert!(!works(&p, &second, "alice").await);
        p.admin("GET", "/v1/users/alice", json!(null))
            .await
            .expect_error(404, "not_found", "user `alice` not found");
        p.admin("DELETE", "/v1/users/alice", json!(null))
            .await
            .expect_error(404, "not_found", "user `alice` not found");
        // A new user of the same name starts with none of the old tokens.
        let again = p.member("alice", &["payments"]).await;
        assert!(!works(&p, &second, "alice").await);
        assert!(works(&p, &again, "alice").await);
        assert_eq!(token_ids(&p, "alice").await.len(), 1);
        assert!(works(&p, &bob, "bob").await);
    }
}

#[tokio::test]
async fn the_last_enabled_admin_cannot_be_demoted_disabled_or_deleted() {
    for p in Portico::each().await {
        let message = "user `admin` is the last enabled admin; make another user an admin first";
        p.admin("PATCH", "/v1/users/admin", json!({ "role": "member" }))
            .await
            .expect_error(409, "conflict", message);
        p.admin("PATCH", "/v1/users/admin", json!({ "disabled": true }))
            .await
            .expect_error(409, "conflict", message);
        p.admin("DELETE", "/v1/users/admin", json!(null))
            .await
            .expect_error(409, "conflict", message);
        let me = p.admin("GET", "/v1/users/admin", json!(null)).await;
        assert_eq!(me.expect(200)["user"]["role"], "admin");
        assert_eq!(me.body["user"]["disabled"], false);
        // The refusals are in the audit log.
        let log = p
            .admin(
                "GET",
                "/v1/audit-log?resource=user&identifier=admin",
                json!(null),
            )
            .await;
        let refusals = log.expect(200)["audit"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["status"] == "FAILURE")
            .count();
        assert_eq!(refusals, 3);

        // With a second admin, the first may go; its token fails at once.
        let created = p
            .admin(
                "POST",
                "/v1/users",
                json!({ "identifier": "carol", "role": "admin" }),
            )
            .await;
        let carol = created.expect(201)["token"].as_str().unwrap().to_owned();
        p.as_user(&carol, "DELETE", "/v1/users/admin", json!(null))
            .await
            .expect(200);
        assert!(!works(&p, ADMIN_TOKEN, "admin").await);
        p.as_user(&carol, "DELETE", "/v1/users/carol", json!(null))
            .await
            .expect_error(409, "conflict", "user `carol` is the last enabled admin");
    }
}
