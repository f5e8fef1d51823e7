//! User inputs, rule by rule: what an action may declare (`check_definition`) and what a user may
//! submit when triggering it (`validate`). Each test shows a rule both ways: what passes, and
//! what fails, with the path and the message the caller gets.

use async_trait::async_trait;
use portico_catalog::Violation;
use portico_runs::inputs::{
    CompiledInputs, InputContext, InputLookup, Validated, check_definition, validate,
};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// A small catalog and directory, and helpers.

/// Two services, one user and one team.
struct Directory;

#[async_trait]
impl InputLookup for Directory {
    async fn entity(&self, blueprint: &str, identifier: &str) -> Option<Value> {
        match (blueprint, identifier) {
            ("service", "api" | "web") => Some(json!({
                "identifier": identifier,
                "title": identifier.to_uppercase(),
                "blueprint": "service",
                "properties": { "tier": "gold" },
            })),
            _ => None,
        }
    }
    /// Understands one rule set: `$identifier = X`.
    async fn in_dataset(
        &self,
        _blueprint: &str,
        identifier: &str,
        dataset: &Value,
    ) -> Result<bool, String> {
        match dataset["rules"].as_array().map(Vec::as_slice) {
            Some([rule]) if rule["property"] == "$identifier" && rule["operator"] == "=" => {
                Ok(rule["value"] == identifier)
            }
            _ => Err(format!("this directory cannot search {dataset}")),
        }
    }
    async fn user_exists(&self, identifier: &str) -> bool {
        matches!(identifier, "alice" | "alice@example.com")
    }
    async fn team_exists(&self, name: &str) -> bool {
        name == "platform"
    }
}

/// Alice, a member of the platform team, running a CREATE action (no entity).
fn alice() -> InputContext {
    InputContext {
        entity: None,
        user: json!({
            "identifier": "alice",
            "email": "alice@example.com",
            "roles": ["Member"],
            "teams": ["platform"],
        }),
    }
}

/// `userInputs` compiled, as an action's are when it is compiled.
fn compiled(user_inputs: &Value) -> CompiledInputs {
    CompiledInputs::compile(user_inputs)
}

/// `userInputs` with these properties and nothing required.
fn inputs(properties: Value) -> Value {
    json!({ "properties": properties, "required": [] })
}

async fn check(user_inputs: &Value, submitted: Value) -> Result<Validated, Vec<Violation>> {
    validate(&compiled(user_inputs), &submitted, &alice(), &Directory).await
}

/// The values a valid submission runs with.
async fn accepted(user_inputs: &Value, submitted: Value) -> Value {
    match check(user_inputs, submitted).await {
        Ok(v) => v.properties,
        Err(e) => panic!("expected the submission to pass, got {e:#?}"),
    }
}

/// The one problem of an invalid submission.
async fn refused(user_inputs: &Value, submitted: Value) -> Violation {
    let mut problems = all_problems(user_inputs, submitted).await;
    assert_eq!(problems.len(), 1, "expected one problem, got {problems:#?}");
    problems.remove(0)
}

/// Every problem of an invalid submission.
async fn all_problems(user_inputs: &Value, submitted: Value) -> Vec<Violation> {
    match check(user_inputs, submitted).await {
        Ok(v) => panic!("expected the submission to fail, it passed with {v:?}"),
        Err(problems) => problems,
    }
}

/// The one problem of an invalid definition.
fn bad_definition(user_inputs: Value) -> Violation {
    let mut problems = check_definition(&user_inputs).expect_err("the definition should fail");
    assert_eq!(problems.len(), 1, "expected one problem, got {problems:#?}");
    problems.remove(0)
}

fn assert_problem(v: &Violation, path: &str, message_contains: &str) {
    assert_eq!(v.path, path, "{v:?}");
    assert!(
        v.message.contains(message_contains),
        "expected {:?} to mention {message_contains:?}",
        v.message
    );
}

// ---------------------------------------------------------------------------------------------
// validate: submitted keys.

#[tokio::test]
async fn valid_values_come_back_as_submitted() {
    let def = inputs(json!({
        "name": { "type": "string" },
        "replicas": { "type": "number" },
        "public": { "type": "boolean" },
        "labels": { "type": "object" },
        "ports": { "type": "array", "items": { "type": "number" } },
    }));
    let submitted = json!({
        "name": "billing", "replicas": 3, "public": false,
        "labels": { "team": "payments" }, "ports": [80, 443],
    });
    assert_eq!(accepted(&def, submitted.clone()).await, submitted);
}

#[tokio::test]
async fn a_key_that_is_not_an_input_is_refused() {
    let def = inputs(json!({ "name": { "type": "string" } }));
    let v = refused(&def, json!({ "name": "x", "nmae": "typo" })).await;
    assert_problem(&v, "properties.nmae", "not an input of this action");
}

#[tokio::test]
async fn null_counts_as_no_value_and_properties_must_be_an_object() {
    let def = json!({ "properties": { "name": { "type": "string" } }, "required": ["name"] });
    assert_problem(
        &refused(&def, json!({ "name": null })).await,
        "properties.name",
        "required",
    );
    assert_eq!(accepted(&inputs(json!({})), Value::Null).await, json!({}));
    assert_problem(
        &refused(&def, json!(["name"])).await,
        "properties",
        "must be an object",
    );
}

// ---------------------------------------------------------------------------------------------
// validate: default, visible, disabled, required.

#[tokio::test]
async fn a_default_fills_a_missing_input_but_never_overrides_one() {
    let def = inputs(json!({ "region": { "type": "string", "default": "eu-west-1" } }));
    assert_eq!(
        accepted(&def, json!({})).await,
        json!({ "region": "eu-west-1" })
    );
    assert_eq!(
        accepted(&def, json!({ "region": "us-east-1" })).await,
        json!({ "region": "us-east-1" })
    );
}

#[tokio::test]
async fn a_jq_default_is_computed_from_the_user_and_the_form() {
    let def = inputs(json!({
        "name": { "type": "string" },
        "owner": { "type": "string", "default": { "jqQuery": ".user.email" } },
        "repo": { "type": "string", "default": { "jqQuery": ".form.name + \"-service\"" } },
    }));
    assert_eq!(
        accepted(&def, json!({ "name": "billing" })).await,
        json!({ "name": "billing", "owner": "alice@example.com", "repo": "billing-service" })
    );
    // A default that computes to null gives no value.
    let def =
        inputs(json!({ "x": { "type": "string", "default": { "jqQuery": ".form.nothing" } } }));
    assert_eq!(accepted(&def, json!({})).await, json!({}));
}

#[tokio::test]
async fn a_hidden_input_is_dropped_and_never_required() {
    let def = json!({
        "properties": { "internal": { "type": "string", "visible": false } },
        "required": ["internal"],
    });
    assert_eq!(accepted(&def, json!({})).await, json!({}));
    assert_eq!(
        accepted(&def, json!({ "internal": "ignored" })).await,
        json!({})
    );
}

#[tokio::test]
async fn a_jq_visible_shows_an_input_only_when_it_returns_true() {
    let def = json!({
        "properties": {
            "kind": { "type": "string", "enum": ["app", "db"] },
            "engine": { "type": "string", "visible": { "jqQuery": ".form.kind == \"db\"" } },
        },
        "required": ["engine"],
    });
    assert_eq!(
        accepted(&def, json!({ "kind": "app", "engine": "postgres" })).await,
        json!({ "kind": "app" })
    );
    assert_eq!(
        accepted(&def, json!({ "kind": "db", "engine": "postgres" })).await,
        json!({ "kind": "db", "engine": "postgres" })
    );
    let v = refused(&def, json!({ "kind": "db" })).await;
    assert_problem(&v, "properties.engine", "required");
}

#[tokio::test]
async fn a_hidden_step_hides_its_inputs() {
    let def = json!({
        "properties": {
            "advanced": { "type": "boolean", "default": false },
            "cpu": { "type": "number", "default": 2 },
        },
        "required": ["cpu"],
        "steps": [
            { "title": "Basics", "order": ["advanced"] },
            { "title": "Tuning", "order": ["cpu"], "visible": { "jqQuery": ".form.advanced" } },
        ],
    });
    assert_eq!(
        accepted(&def, json!({ "cpu": 8 })).await,
        json!({ "advanced": false })
    );
    assert_eq!(
        accepted(&def, json!({ "advanced": true, "cpu": 8 })).await,
        json!({ "advanced": true, "cpu": 8 })
    );
}

#[tokio::test]
async fn a_disabled_input_keeps_its_default() {
    let def = inputs(json!({ "region": { "type": "string", "default": "eu", "disabled": true } }));
    assert_eq!(accepted(&def, json!({})).await, json!({ "region": "eu" }));
    assert_eq!(
        accepted(&def, json!({ "region": "eu" })).await,
        json!({ "region": "eu" })
    );
    let v = refused(&def, json!({ "region": "us" })).await;
    assert_problem(&v, "properties.region", "is disabled");

    let def = inputs(json!({ "note": { "type": "string", "disabled": true } }));
    assert_problem(
        &refused(&def, json!({ "note": "hi" })).await,
        "properties.note",
        "takes no value",
    );
}

#[tokio::test]
async fn a_jq_disabled_can_depend_on_the_user() {
    let def = inputs(json!({
        "size": {
            "type": "string",
            "default": "small",
            "disabled": { "jqQuery": ".user.roles | index(\"Admin\") | not" },
        },
    }));
    // Alice is a Member: the size stays small.
    assert_problem(
        &refused(&def, json!({ "size": "large" })).await,
        "properties.size",
        "is disabled",
    );
    let admin = InputContext {
        user: json!({ "identifier": "root", "roles": ["Admin"], "teams": [] }),
        ..alice()
    };
    let v = validate(
        &compiled(&def),
        &json!({ "size": "large" }),
        &admin,
        &Directory,
    )
    .await;
    assert_eq!(v.unwrap().properties, json!({ "size": "large" }));
}

#[tokio::test]
async fn a_required_input_must_have_a_value() {
    let def = json!({
        "properties": { "name": { "type": "string" }, "note": { "type": "string" } },
        "required": ["name"],
    });
    assert_eq!(
        accepted(&def, json!({ "name": "x" })).await,
        json!({ "name": "x" })
    );
    assert_problem(
        &refused(&def, json!({ "note": "n" })).await,
        "properties.name",
        "required",
    );
    // A default satisfies it.
    let def = json!({
        "properties": { "name": { "type": "string", "default": "svc" } },
        "required": ["name"],
    });
    assert_eq!(accepted(&def, json!({})).await, json!({ "name": "svc" }));
}

#[tokio::test]
async fn a_jq_required_returns_the_names_required_for_this_form() {
    let def = json!({
        "properties": {
            "env": { "type": "string", "enum": ["dev", "prod"] },
            "reason": { "type": "string" },
        },
        "required": { "jqQuery": "if .form.env == \"prod\" then [\"env\", \"reason\"] else [\"env\"] end" },
    });
    assert_eq!(
        accepted(&def, json!({ "env": "dev" })).await,
        json!({ "env": "dev" })
    );
    assert_problem(
        &refused(&def, json!({ "env": "prod" })).await,
        "properties.reason",
        "required",
    );
    assert_problem(
        &refused(&def, json!({})).await,
        "properties.env",
        "required",
    );

    let def = json!({ "properties": {}, "required": { "jqQuery": "\"env\"" } });
    assert_problem(
        &refused(&def, json!({})).await,
        "trigger.userInputs.required.jqQuery",
        "must return a list of input names, not a string",
    );
}

#[tokio::test]
async fn jq_sees_the_entity_of_a_day_2_action() {
    let def = inputs(json!({
        "tier": { "type": "string", "default": { "jqQuery": ".entity.properties.tier" } },
    }));
    let context = InputContext {
        entity: Some(json!({ "identifier": "api", "properties": { "tier": "gold" } })),
        ..alice()
    };
    let v = validate(&compiled(&def), &json!({}), &context, &Directory).await;
    assert_eq!(v.unwrap().properties, json!({ "tier": "gold" }));
    // Without an entity, `.entity` is null.
    assert_eq!(accepted(&def, json!({})).await, json!({}));
}

#[tokio::test]
async fn a_jq_expression_that_fails_at_run_time_refuses_the_run() {
    let failing = json!({ "jqQuery": ".form.count + \"a\"" });
    let cases = [
        ("default", "trigger.userInputs.properties.x.default.jqQuery"),
        ("visible", "trigger.userInputs.properties.x.visible.jqQuery"),
        (
            "disabled",
            "trigger.userInputs.properties.x.disabled.jqQuery",
        ),
    ];
    for (key, path) in cases {
        let def = inputs(json!({
            "count": { "type": "number" },
            "x": { "type": "string", key: failing },
        }));
        let v = refused(&def, json!({ "count": 1, "x": "a" })).await;
        // What failed, without the values involved (they are inputs).
        assert_problem(
            &v,
            path,
            "jq error: an arithmetic operation got values it cannot combine",
        );
    }
    let def = json!({ "properties": { "count": { "type": "number" } }, "required": failing });
    let v = refused(&def, json!({ "count": 1 })).await;
    assert_problem(
        &v,
        "trigger.userInputs.required.jqQuery",
        "an arithmetic operation",
    );

    // error(...) and a result of the wrong kind fail closed too.
    let def =
        inputs(json!({ "x": { "type": "string", "visible": { "jqQuery": "error(\"no\")" } } }));
    assert_problem(
        &refused(&def, json!({})).await,
        "trigger.userInputs.properties.x.visible.jqQuery",
        "jq error: no",
    );
    let def = inputs(json!({ "x": { "type": "string", "visible": { "jqQuery": "\"yes\"" } } }));
    assert_problem(
        &refused(&def, json!({})).await,
        "trigger.userInputs.properties.x.visible.jqQuery",
        "must return true or false, not a string",
    );
}

// ---------------------------------------------------------------------------------------------
// validate: the JSON Schema of each value.

#[tokio::test]
async fn each_json_schema_keyword_is_enforced() {
    // (definition, a valid value, an invalid value, the path of the problem)
    let cases = [
        (
            json!({ "type": "string" }),
            json!("a"),
            json!(1),
            "properties.x",
        ),
        (
            json!({ "type": "number" }),
            json!(1.5),
            json!("1.5"),
            "properties.x",
        ),
        (
            json!({ "type": "boolean" }),
            json!(true),
            json!("true"),
            "properties.x",
        ),
        (
            json!({ "type": "object" }),
            json!({ "a": 1 }),
            json!([1]),
            "properties.x",
        ),
        (
            json!({ "type": "array" }),
            json!([1, "a"]),
            json!({}),
            "properties.x",
        ),
        (
            json!({ "type": "string", "enum": ["a", "b"] }),
            json!("b"),
            json!("c"),
            "properties.x",
        ),
        (
            json!({ "type": "string", "pattern": "^[a-z]+$" }),
            json!("abc"),
            json!("ABC"),
            "properties.x",
        ),
        (
            json!({ "type": "string", "minLength": 2 }),
            json!("ab"),
            json!("a"),
            "properties.x",
        ),
        (
            json!({ "type": "string", "maxLength": 2 }),
            json!("ab"),
            json!("abc"),
            "properties.x",
        ),
        (
            json!({ "type": "number", "minimum": 1 }),
            json!(1),
            json!(0),
            "properties.x",
        ),
        (
            json!({ "type": "number", "maximum": 10 }),
            json!(10),
            json!(11),
            "properties.x",
        ),
        (
            json!({ "type": "number", "exclusiveMinimum": 1 }),
            json!(1.01),
            json!(1),
            "properties.x",
        ),
        (
            json!({ "type": "number", "exclusiveMaximum": 10 }),
            json!(9),
            json!(10),
            "properties.x",
        ),
        (
            json!({ "type": "array", "items": { "type": "string" } }),
            json!(["a", "b"]),
            json!(["a", 2]),
            "properties.x.1",
        ),
        (
            json!({ "type": "array", "items": { "type": "string", "enum": ["a", "b"] } }),
            json!(["a"]),
            json!(["a", "z"]),
            "properties.x.1",
        ),
        (
            json!({ "type": "array", "minItems": 1 }),
            json!([1]),
            json!([]),
            "properties.x",
        ),
        (
            json!({ "type": "array", "maxItems": 1 }),
            json!([1]),
            json!([1, 2]),
            "properties.x",
        ),
        (
            json!({ "type": "array", "uniqueItems": true }),
            json!([1, 2]),
            json!([1, 1]),
            "properties.x",
        ),
    ];
    for (input, good, bad, path) in cases {
        let def = inputs(json!({ "x": input }));
        assert_eq!(
            accepted(&def, json!({ "x": good })).await,
            json!({ "x": good }),
            "{input}"
        );
        let v = refused(&def, json!({ "x": bad })).await;
        assert_eq!(v.path, path, "{input}: {v:?}");
    }
    // The message is the validator's own.
    let def = inputs(json!({ "x": { "type": "number", "maximum": 10 } }));
    let v = refused(&def, json!({ "x": 11 })).await;
    assert_problem(&v, "properties.x", "11 is greater than the maximum of 10");
}

#[tokio::test]
async fn each_string_format_is_checked() {
    // (format, a valid value, an invalid value)
    let cases = [
        ("date-time", "2026-05-01T12:00:00Z", "yesterday"),
        ("url", "https://example.com/x", "not a url"),
        ("email", "alice@example.com", "alice"),
        ("ipv4", "10.0.0.1", "10.0.0.300"),
        ("ipv6", "2001:db8::1", "2001:db8::zz"),
    ];
    for (format, good, bad) in cases {
        let def = inputs(json!({ "x": { "type": "string", "format": format } }));
        assert_eq!(
            accepted(&def, json!({ "x": good })).await,
            json!({ "x": good })
        );
        let v = refused(&def, json!({ "x": bad })).await;
        assert_problem(&v, "properties.x", format);
    }
    // The text formats take any string.
    for format in ["yaml", "multi-line", "markdown"] {
        let def = inputs(json!({ "x": { "type": "string", "format": format } }));
        assert_eq!(
            accepted(&def, json!({ "x": "a: 1\nb" })).await,
            json!({ "x": "a: 1\nb" })
        );
        assert_eq!(refused(&def, json!({ "x": 1 })).await.path, "properties.x");
    }
}

// ---------------------------------------------------------------------------------------------
// validate: entities, users, teams.

#[tokio::test]
async fn an_entity_input_is_replaced_by_the_entity() {
    let def = inputs(json!({
        "service": { "type": "string", "format": "entity", "blueprint": "service" },
    }));
    let run = accepted(&def, json!({ "service": "api" })).await;
    assert_eq!(run["service"]["identifier"], "api");
    assert_eq!(run["service"]["title"], "API");
    assert_eq!(run["service"]["properties"]["tier"], "gold");

    let v = refused(&def, json!({ "service": "nope" })).await;
    assert_problem(
        &v,
        "properties.service",
        "no entity `nope` in blueprint `service`",
    );
    // The identifier is a string.
    let v = refused(&def, json!({ "service": 7 })).await;
    assert_eq!(v.path, "properties.service");
}

#[tokio::test]
async fn a_list_of_entities_is_replaced_item_by_item() {
    // Both shapes: the format on the array, or on its items (Port's).
    for def in [
        json!({ "type": "array", "format": "entity", "blueprint": "service" }),
        json!({ "type": "array", "items": { "type": "string", "format": "entity", "blueprint": "service" } }),
    ] {
        let def = inputs(json!({ "services": def }));
        let run = accepted(&def, json!({ "services": ["api", "web"] })).await;
        let ids: Vec<&Value> = run["services"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["identifier"])
            .collect();
        assert_eq!(ids, [&json!("api"), &json!("web")]);

        let v = refused(&def, json!({ "services": ["api", "gone"] })).await;
        assert_problem(&v, "properties.services.1", "no entity `gone`");
    }
}

#[tokio::test]
async fn user_and_team_inputs_must_exist() {
    let def = inputs(json!({
        "reviewer": { "type": "string", "format": "user" },
        "team": { "type": "string", "format": "team" },
        "watchers": { "type": "array", "items": { "type": "string", "format": "user" } },
    }));
    let submitted =
        json!({ "reviewer": "alice", "team": "platform", "watchers": ["alice@example.com"] });
    assert_eq!(accepted(&def, submitted.clone()).await, submitted);

    let problems = all_problems(
        &def,
        json!({ "reviewer": "bob", "team": "sales", "watchers": ["alice", "eve"] }),
    )
    .await;
    let got: Vec<(&str, &str)> = problems
        .iter()
        .map(|v| (v.path.as_str(), v.message.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("properties.reviewer", "no user `bob`"),
            ("properties.team", "no team `sales`"),
            ("properties.watchers.1", "no user `eve`"),
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// validate: dependsOn, secrets, several problems.

#[tokio::test]
async fn an_input_has_a_value_only_when_its_dependencies_have_one() {
    let def = inputs(json!({
        "cloud": { "type": "string" },
        "region": { "type": "string", "dependsOn": ["cloud"] },
        "zone": { "type": "string", "default": "a", "dependsOn": ["region"] },
    }));
    assert_eq!(
        accepted(&def, json!({ "cloud": "aws", "region": "eu" })).await,
        json!({ "cloud": "aws", "region": "eu", "zone": "a" })
    );
    // A default whose dependency has no value is simply not applied.
    assert_eq!(
        accepted(&def, json!({ "cloud": "aws" })).await,
        json!({ "cloud": "aws" })
    );
    // A submitted value is an error.
    let v = refused(&def, json!({ "region": "eu" })).await;
    assert_problem(
        &v,
        "properties.region",
        "depends on `cloud`, which has no value",
    );
    // A required input says what it waits for.
    let def = json!({
        "properties": {
            "cloud": { "type": "string" },
            "region": { "type": "string", "default": "eu", "dependsOn": ["cloud"] },
        },
        "required": ["region"],
    });
    assert_eq!(
        accepted(&def, json!({ "cloud": "aws" })).await,
        json!({ "cloud": "aws", "region": "eu" })
    );
    let v = refused(&def, json!({})).await;
    assert_problem(&v, "properties.region", "required; it depends on `cloud`");
}

#[tokio::test]
async fn secret_inputs_are_listed_and_their_values_never_shown() {
    let def = inputs(json!({
        "token": { "type": "string", "encryption": "aes256-gcm", "minLength": 12 },
        "config": { "type": "object", "encryption": "aes256-gcm" },
        "name": { "type": "string" },
    }));
    let v = check(&def, json!({ "token": "0123456789abcdef", "name": "x" }))
        .await
        .unwrap();
    assert_eq!(v.secrets, ["token"]);
    assert_eq!(v.properties["token"], "0123456789abcdef");

    let v = refused(&def, json!({ "token": "hunter2" })).await;
    assert_eq!(v.path, "properties.token");
    assert!(!v.message.contains("hunter2"), "{v:?}");

    // A jq error that would print the secret is withheld too.
    let def = inputs(json!({
        "token": { "type": "string", "encryption": "aes256-gcm" },
        "x": { "type": "string", "visible": { "jqQuery": ".form.token | error" } },
    }));
    let v = refused(&def, json!({ "token": "hunter2" })).await;
    assert_eq!(v.path, "trigger.userInputs.properties.x.visible.jqQuery");
    assert!(!v.message.contains("hunter2"), "{v:?}");
}

#[tokio::test]
async fn every_problem_is_reported_at_once() {
    let def = json!({
        "properties": {
            "name": { "type": "string", "minLength": 3 },
            "replicas": { "type": "number", "maximum": 5 },
            "service": { "type": "string", "format": "entity", "blueprint": "service" },
            "owner": { "type": "string" },
            "region": { "type": "string", "dependsOn": ["owner"] },
        },
        "required": ["owner"],
    });
    let problems = all_problems(
        &def,
        json!({ "name": "x", "replicas": 9, "service": "gone", "region": "eu", "extra": 1 }),
    )
    .await;
    let mut paths: Vec<&str> = problems.iter().map(|v| v.path.as_str()).collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "properties.extra",
            "properties.name",
            "properties.owner",
            "properties.region",
            "properties.replicas",
            "properties.service",
        ]
    );
}

#[test]
fn validation_can_run_on_any_tokio_worker() {
    fn send<T: Send>(_: T) {}
    let (def, submitted, context) = (json!({}), json!({}), alice());
    let def = compiled(&def);
    send(validate(&def, &submitted, &context, &Directory));
}

// ---------------------------------------------------------------------------------------------
// check_definition.

#[test]
fn a_full_definition_passes() {
    let def = json!({
        "properties": {
            "name": { "type": "string", "title": "Name", "pattern": "^[a-z-]+$", "minLength": 3, "maxLength": 30 },
            "env": { "type": "string", "enum": ["dev", "prod"], "default": "dev" },
            "reason": { "type": "string", "format": "multi-line", "visible": { "jqQuery": ".form.env == \"prod\"" } },
            "replicas": { "type": "number", "minimum": 1, "exclusiveMaximum": 10, "default": 2 },
            "service": { "type": "string", "format": "entity", "blueprint": "service" },
            "services": { "type": "array", "items": { "type": "string", "format": "entity", "blueprint": "service" }, "minItems": 1, "uniqueItems": true },
            "reviewer": { "type": "string", "format": "user", "default": { "jqQuery": ".user.identifier" } },
            "team": { "type": "string", "format": "team", "disabled": { "jqQuery": ".user.roles | index(\"Admin\") | not" } },
            "token": { "type": "string", "encryption": "aes256-gcm", "icon": "Lock", "description": "API token" },
            "region": { "type": "string", "dependsOn": ["env"], "disabled": false },
            "when": { "type": "string", "format": "date-time" },
        },
        "required": { "jqQuery": "if .form.env == \"prod\" then [\"reason\"] else [] end" },
        "order": ["name", "env"],
        "steps": [{ "title": "Basics", "order": ["name", "env"], "visible": true }],
    });
    assert_eq!(check_definition(&def), Ok(()));
    assert_eq!(
        check_definition(&json!({ "properties": {}, "required": [] })),
        Ok(())
    );
}

#[test]
fn definition_type_must_be_known() {
    let v = bad_definition(inputs(json!({ "name": { "type": "text" } })));
    assert_problem(
        &v,
        "trigger.userInputs.properties.name.type",
        "unknown type \"text\"",
    );
    let v = bad_definition(inputs(json!({ "name": { "title": "Name" } })));
    assert_problem(&v, "trigger.userInputs.properties.name.type", "required");
}

#[test]
fn definition_format_must_be_known_and_fit_the_type() {
    let v = bad_definition(inputs(
        json!({ "x": { "type": "string", "format": "phone" } }),
    ));
    assert_problem(
        &v,
        "trigger.userInputs.properties.x.format",
        "unknown format \"phone\"",
    );
    let v = bad_definition(inputs(
        json!({ "x": { "type": "number", "format": "email" } }),
    ));
    assert_problem(
        &v,
        "trigger.userInputs.properties.x.format",
        "applies to string inputs",
    );
}

#[test]
fn definition_entity_inputs_need_a_blueprint() {
    let v = bad_definition(inputs(
        json!({ "svc": { "type": "string", "format": "entity" } }),
    ));
    assert_problem(
        &v,
        "trigger.userInputs.properties.svc.blueprint",
        "required with format entity",
    );
    let v = bad_definition(inputs(json!({
        "svcs": { "type": "array", "items": { "type": "string", "format": "entity" } },
    })));
    assert_problem(
        &v,
        "trigger.userInputs.properties.svcs.items.blueprint",
        "required",
    );
    let v = bad_definition(inputs(
        json!({ "x": { "type": "string", "blueprint": "service" } }),
    ));
    assert_problem(
        &v,
        "trigger.userInputs.properties.x.blueprint",
        "only to inputs with format entity",
    );
}

#[test]
fn definition_jq_expressions_must_compile() {
    for key in ["visible", "disabled", "default"] {
        let v = bad_definition(inputs(json!({
            "env": { "type": "string", key: { "jqQuery": ".form.x ==" } },
        })));
        assert_problem(
            &v,
            &format!("trigger.userInputs.properties.env.{key}.jqQuery"),
            "jq syntax error: expected term, found the end of the expression",
        );
    }
    let v = bad_definition(json!({ "properties": {}, "required": { "jqQuery": "nosuch(1)" } }));
    assert_problem(
        &v,
        "trigger.userInputs.required.jqQuery",
        "undefined filter `nosuch/1`",
    );
    // The host's environment is not reachable.
    let v = bad_definition(inputs(
        json!({ "x": { "type": "string", "default": { "jqQuery": "env.HOME" } } }),
    ));
    assert_problem(
        &v,
        "trigger.userInputs.properties.x.default.jqQuery",
        "undefined filter `env/0`",
    );
    // Anything else in a jq object is a mistake.
    let v = bad_definition(inputs(
        json!({ "x": { "type": "string", "visible": { "jqQuery": 1 } } }),
    ));
    assert_problem(
        &v,
        "trigger.userInputs.properties.x.visible",
        "must be true, false or",
    );
}

#[test]
fn definition_keys_must_be_known() {
    let v = bad_definition(inputs(
        json!({ "x": { "type": "string", "placeholder": "..." } }),
    ));
    assert_problem(
        &v,
        "trigger.userInputs.properties.x.placeholder",
        "unknown key",
    );
    let v = bad_definition(json!({ "properties": {}, "extra": 1 }));
    assert_problem(&v, "trigger.userInputs.extra", "unknown key");
    let v = bad_definition(inputs(json!({ "bad name": { "type": "string" } })));
    assert_problem(
        &v,
        "trigger.userInputs.properties.bad name",
        "letters, digits",
    );
    let v = check_definition(&json!("inputs")).unwrap_err();
    assert_eq!(v[0].path, "trigger.userInputs");
}

#[test]
fn definition_names_must_name_inputs() {
    let v = bad_definition(
        json!({ "properties": { "a": { "type": "string" } }, "required": ["a", "b"] }),
    );
    assert_problem(
        &v,
        "trigger.userInputs.required[1]",
        "`b` is not an input of this action",
    );
    let v = bad_definition(json!({ "properties": { "a": { "type": "string" } }, "order": ["b"] }));
    assert_problem(&v, "trigger.userInputs.order[0]", "`b` is not an input");
    let v = bad_definition(json!({
        "properties": { "a": { "type": "string" } },
        "steps": [{ "title": "One", "order": ["a", "a"] }],
    }));
    assert_problem(&v, "trigger.userInputs.steps[0].order[1]", "listed twice");
    let v = bad_definition(inputs(
        json!({ "a": { "type": "string", "dependsOn": ["b"] } }),
    ));
    assert_problem(
        &v,
        "trigger.userInputs.properties.a.dependsOn[0]",
        "`b` is not an input",
    );
    let v = bad_definition(inputs(
        json!({ "a": { "type": "string", "dependsOn": ["a"] } }),
    ));
    assert_problem(&v, "trigger.userInputs.properties.a.dependsOn[0]", "itself");
}

#[test]
fn definition_value_keywords_must_be_well_formed() {
    let cases = [
        (
            json!({ "type": "string", "pattern": "([a-z" }),
            "pattern",
            "valid regular expression",
        ),
        (
            json!({ "type": "string", "enum": [] }),
            "enum",
            "non-empty list",
        ),
        (
            json!({ "type": "number", "minimum": "1" }),
            "minimum",
            "must be a number",
        ),
        (
            json!({ "type": "number", "exclusiveMaximum": true }),
            "exclusiveMaximum",
            "must be a number",
        ),
        (
            json!({ "type": "string", "minLength": -1 }),
            "minLength",
            "non-negative integer",
        ),
        (
            json!({ "type": "array", "uniqueItems": "yes" }),
            "uniqueItems",
            "true or false",
        ),
        (
            json!({ "type": "array", "items": "string" }),
            "items",
            "must be an object",
        ),
        (
            json!({ "type": "string", "items": { "type": "string" } }),
            "items",
            "only to array inputs",
        ),
        (
            json!({ "type": "number", "default": "two" }),
            "default",
            "not a valid value",
        ),
        (
            json!({ "type": "string", "enum": ["a"], "default": "b" }),
            "default",
            "not a valid value",
        ),
        (
            json!({ "type": "string", "encryption": "rot13" }),
            "encryption",
            "aes256-gcm",
        ),
        (
            json!({ "type": "number", "encryption": "aes256-gcm" }),
            "encryption",
            "string and object",
        ),
        (
            json!({ "type": "string", "visible": "yes" }),
            "visible",
            "true, false or",
        ),
    ];
    for (input, key, message) in cases {
        let v = bad_definition(inputs(json!({ "x": input })));
        assert_problem(
            &v,
            &format!("trigger.userInputs.properties.x.{key}"),
            message,
        );
    }
}

#[test]
fn definition_problems_are_all_reported() {
    let problems = check_definition(&json!({
        "properties": {
            "a": { "type": "text" },
            "b": { "type": "string", "format": "entity" },
            "c": { "type": "string", "visible": { "jqQuery": "(" } },
        },
        "required": ["d"],
    }))
    .unwrap_err();
    let paths: Vec<&str> = problems.iter().map(|v| v.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "trigger.userInputs.properties.a.type",
            "trigger.userInputs.properties.b.blueprint",
            "trigger.userInputs.properties.c.visible.jqQuery",
            "trigger.userInputs.required[0]",
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Port's entity filter and enum colors.

/// A service picker that offers only the service named in another field.
fn picker() -> Value {
    inputs(json!({
        "pick": { "type": "string" },
        "svc": { "type": "string", "format": "entity", "blueprint": "service",
                 "dataset": { "combinator": "and", "rules": [
                     { "property": "$identifier", "operator": "=", "value": { "jqQuery": ".form.pick" } }
                 ] } },
    }))
}

#[tokio::test]
async fn an_entity_input_accepts_only_what_its_dataset_offers() {
    assert_eq!(check_definition(&picker()), Ok(()));
    let v = accepted(&picker(), json!({ "pick": "api", "svc": "api" })).await;
    assert_eq!(v["svc"]["identifier"], "api");
    let e = refused(&picker(), json!({ "pick": "api", "svc": "web" })).await;
    assert_problem(
        &e,
        "properties.svc",
        "entity `web` is not one this input offers (its dataset filters it out)",
    );
}

#[test]
fn a_dataset_is_checked_when_the_action_is_written() {
    let on_text = inputs(json!({ "name": { "type": "string", "dataset": { "rules": [] } } }));
    assert_problem(
        &bad_definition(on_text),
        "trigger.userInputs.properties.name.dataset",
        "applies only to inputs with format entity",
    );
    let bad_operator = inputs(json!({ "svc": { "type": "string", "format": "entity",
        "blueprint": "service",
        "dataset": { "rules": [{ "property": "tier", "operator": "near", "value": "x" }] } } }));
    assert_problem(
        &bad_definition(bad_operator),
        "trigger.userInputs.properties.svc.dataset.rules[0].operator",
        "near",
    );
    let bad_jq = inputs(json!({ "svc": { "type": "string", "format": "entity",
        "blueprint": "service",
        "dataset": { "rules": [{ "property": "tier", "operator": "=",
                                 "value": { "jqQuery": ".form.(" } }] } } }));
    assert_problem(
        &bad_definition(bad_jq),
        "trigger.userInputs.properties.svc.dataset.rules[0].value.jqQuery",
        "",
    );
}

#[test]
fn enum_colors_name_enum_values() {
    let colored = inputs(json!({ "env": { "type": "string", "enum": ["dev", "prod"],
        "enumColors": { "dev": "green", "prod": "red" } } }));
    assert_eq!(check_definition(&colored), Ok(()));
    let stray = inputs(json!({ "env": { "type": "string", "enum": ["dev", "prod"],
        "enumColors": { "staging": "blue" } } }));
    assert_problem(
        &bad_definition(stray),
        "trigger.userInputs.properties.env.enumColors.staging",
        "`staging` is not one of the input's enum values",
    );
    let no_enum = inputs(json!({ "env": { "type": "string", "enumColors": { "dev": "green" } } }));
    assert_problem(
        &bad_definition(no_enum),
        "trigger.userInputs.properties.env.enumColors",
        "applies only to inputs with an `enum` list",
    );
}

#[tokio::test]
async fn what_a_run_ran_with_goes_back_to_what_a_request_submits() {
    let def = inputs(json!({
        "svc": { "type": "string", "format": "entity", "blueprint": "service" },
        "svcs": { "type": "array", "items": { "type": "string", "format": "entity", "blueprint": "service" } },
        "name": { "type": "string" },
    }));
    let submitted = json!({ "svc": "api", "svcs": ["api", "web"], "name": "billing" });
    let ran = accepted(&def, submitted.clone()).await;
    assert_eq!(
        ran["svc"]["title"], "API",
        "entities are resolved for the plugin"
    );
    assert_eq!(portico_runs::inputs::as_submitted(&def, &ran), submitted);
}
