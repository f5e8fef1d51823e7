//! A plugin that hands back as much as it can costs the host what its action's limits allow,
//! and no more: the run says which limit it hit, the database and the API answers stay small.

use portico_tests::api::Portico;
use portico_tests::artifacts::PROBE;
use serde_json::json;

async fn probe_action(p: &Portico, limits: serde_json::Value) {
    p.upload("probe", PROBE).await;
    p.admin(
        "POST",
        "/v1/actions",
        json!({
            "identifier": "probe_any",
            "trigger": { "type": "self-service", "operation": "CREATE",
                "userInputs": { "properties": { "steps": { "type": "array" } } } },
            "invocationMethod": { "type": "WASM", "plugin": "probe", "limits": limits }
        }),
    )
    .await
    .expect(201);
}

#[tokio::test]
async fn millions_of_empty_log_lines_store_at_most_log_lines_rows() {
    for p in Portico::each().await {
        probe_action(&p, json!({})).await;
        let steps = json!([{ "logLines": { "count": 500_000 } }]);
        let id = p
            .run("probe_any", json!({ "properties": { "steps": steps } }))
            .await;
        let run = p.finished(&id).await;
        assert_eq!(run["status"], "SUCCESS", "{run}");

        let logs = p
            .admin(
                "GET",
                &format!("/v1/actions/runs/{id}/logs?limit=10000&after=9990"),
                json!(null),
            )
            .await;
        let logs = logs.expect(200)["logs"].as_array().unwrap().clone();
        let last = logs.last().unwrap();
        assert!(
            logs.len() <= 11,
            "at most 10,000 lines and the notes: {}",
            logs.len()
        );
        assert!(
            last["message"]
                .as_str()
                .unwrap()
                .contains("limits.logLines"),
            "{last}"
        );
        if let Some(path) = p.database_url().strip_prefix("sqlite://") {
            let size: u64 = [path.to_owned(), format!("{path}-wal")]
                .iter()
                .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
                .sum();
            assert!(size < 16 << 20, "the database grew to {size} bytes");
        }
    }
}

#[tokio::test]
async fn an_output_over_output_bytes_fails_the_run_and_is_not_stored() {
    for p in Portico::each().await {
        probe_action(&p, json!({ "outputBytes": 65536 })).await;
        let steps = json!([{ "repeat": { "text": "x", "times": 4 << 20 } }]);
        let id = p
            .run("probe_any", json!({ "properties": { "steps": steps } }))
            .await;
        let run = p.finished(&id).await;
        assert_eq!(run["status"], "FAILURE");
        assert_eq!(run["error"]["kind"], "limit", "{run}");
        assert!(
            run["error"]["message"]
                .as_str()
                .unwrap()
                .contains("(limits.outputBytes)"),
            "{run}"
        );
        let listed = p
            .admin("GET", "/v1/actions/runs?action=probe_any", json!(null))
            .await;
        assert!(
            listed.expect(200).to_string().len() < 64 << 10,
            "the run list stays small"
        );
    }
}

#[tokio::test]
async fn a_limit_over_its_maximum_is_refused_when_the_action_is_written() {
    for p in Portico::each().await {
        p.upload("probe", PROBE).await;
        p.admin(
            "POST",
            "/v1/actions",
            json!({
                "identifier": "greedy",
                "trigger": { "type": "self-service", "operation": "CREATE" },
                "invocationMethod": { "type": "WASM", "plugin": "probe",
                    "limits": { "outputBytes": 1_000_000_000 } }
            }),
        )
        .await
        .expect_violation(
            "invocationMethod.limits.outputBytes",
            "must be between 0 and 16777216",
        );
    }
}
