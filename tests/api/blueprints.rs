//! `/v1/blueprints`: create, read, replace, delete, and every validation rule (422 naming the
//! path of each problem).

use portico_tests::api::Portico;
use serde_json::{Value, json};

pub fn service_blueprint() -> Value {
    json!({
        "identifier": "service",
        "title": "Service",
        "icon": "Microservice",
        "description": "A deployable service",
        "schema": {
            "properties": {
                "language": { "type": "string", "enum": ["go", "rust", "python"] },
                "replicas": { "type": "number", "minimum": 0, "maximum": 50, "default": 1 },
                "slug": { "type": "string", "pattern": "^[a-z-]+$", "minLength": 2, "maxLength": 20 },
                "public": { "type": "boolean" },
                "owners": { "type": "array" },
                "settings": { "type": "object" },
                "launched": { "type": "string", "format": "date-time" },
                "expires": { "type": "string", "format": "timer" },
                "docs": { "type": "string", "format": "url" },
                "oncall": { "type": "string", "format": "email" },
                "ip": { "type": "string", "format": "ipv4" },
                "ip6": { "type": "string", "format": "ipv6" },
                "readme": { "type": "string", "format": "markdown" },
                "values": { "type": "string", "format": "yaml" },
                "lead": { "type": "string", "format": "user" },
                "squad": { "type": "string", "format": "team" }
            },
            "required": ["language"]
        },
        "relations": {}
    })
}

#[tokio::test]
async fn an_admin_creates_reads_lists_replaces_and_deletes_a_blueprint() {
    for p in Portico::each().await {
        let created = p.admin("POST", "/v1/blueprints", service_blueprint()).await;
        let bp = created.expect(201)["blueprint"].clone();
        assert_eq!(bp["identifier"], "service");
        assert_eq!(bp["createdBy"], "admin");
        assert_eq!(
            p.admin("GET", "/v1/blueprints/service", json!(null))
                .await
                .expect(200)["blueprint"],
            bp
        );
        let list = p.admin("GET", "/v1/blueprints", json!(null)).await;
        assert_eq!(list.expect(200)["blueprints"].as_array().unwrap().len(), 1);

        p.admin("POST", "/v1/blueprints", service_blueprint())
            .await
            .expect_error(409, "conflict", "blueprint `service` already exists");

        let mut changed = service_blueprint();
        changed["title"] = json!("Microservice");
        let replaced = p.admin("PUT", "/v1/blueprints/service", changed).await;
        assert_eq!(replaced.expect(200)["blueprint"]["title"], "Microservice");
        assert_eq!(
            replaced.body["blueprint"]["createdAt"], bp["createdAt"],
            "creation is kept"
        );

        p.admin("DELETE", "/v1/blueprints/service", json!(null))
            .await
            .expect(200);
        p.admin("GET", "/v1/blueprints/service", json!(null))
            .await
            .expect_error(404, "not_found", "blueprint `service` not found");
    }
}

#[tokio::test]
async fn each_blueprint_rule_is_reported_at_its_path() {
    let cases = [
        (
            json!({ "identifier": "bad id!" }),
            "identifier",
            "letters, digits",
        ),
        (
            json!({ "identifier": "x", "schema": { "properties": { "a": { "type": "strin" } } } }),
            "schema.properties.a.type",
            "unknown type `strin`",
        ),
        (
            json!({ "identifier": "x", "schema": { "properties": { "a": {} } } }),
            "schema.properties.a.type",
            "required",
        ),
        (
            json!({ "identifier": "x", "schema": { "properties": { "a": { "type": "string", "format": "phone" } } } }),
            "schema.properties.a.format",
            "unknown format",
        ),
        (
            json!({ "identifier": "x", "schema": { "properties": { "a": { "type": "number", "format": "email" } } } }),
            "schema.properties.a.format",
            "formats apply to string",
        ),
        (
            json!({ "identifier": "x", "schema": { "properties": { "a": { "type": "string", "pattern": "([" } } } }),
            "schema.properties.a.pattern",
            "valid regular expression",
        ),
        (
            json!({ "identifier": "x", "schema": { "properties": { "a": { "type": "string", "enum": [] } } } }),
            "schema.properties.a.enum",
            "non-empty list",
        ),
        (
            json!({ "identifier": "x", "schema": { "properties": { "a": { "type": "number", "minimum": "0" } } } }),
            "schema.properties.a.minimum",
            "must be a number",
        ),
        (
            json!({ "identifier": "x", "schema": { "properties": { "a": { "type": "string", "maxLength": -1 } } } }),
            "schema.properties.a.maxLength",
            "non-negative integer",
        ),
        (
            json!({ "identifier": "x", "schema": { "properties": { "a": { "type": "number", "default": "one" } } } }),
            "schema.properties.a.default",
            "not a valid value",
        ),
        (
            json!({ "identifier": "x", "schema": { "properties": { "a": { "type": "string", "colour": "red" } } } }),
            "schema.properties.a.colour",
            "unknown key",
        ),
        (
            json!({ "identifier": "x", "schema": { "properties": {}, "required": ["ghost"] } }),
            "schema.required[0]",
            "`ghost` is not a property",
        ),
        (
            json!({ "identifier": "x", "relations": { "owner": { "target": "team" } } }),
            "relations.owner.target",
            "blueprint `team` does not exist",
        ),
        (
            json!({ "identifier": "x", "relations": { "owner": { "title": "Owner" } } }),
            "relations.owner.target",
            "required",
        ),
        (
            json!({ "identifier": "x", "relations": { "owner": { "target": "x", "many": "yes" } } }),
            "relations.owner.many",
            "true or false",
        ),
    ];
    for p in Portico::each().await {
        for (body, path, message) in &cases {
            let answer = p.admin("POST", "/v1/blueprints", body.clone()).await;
            answer.expect_violation(path, message);
        }
        let unknown_field = p
            .admin(
                "POST",
                "/v1/blueprints",
                json!({ "identifier": "x", "colour": 1 }),
            )
            .await;
        unknown_field.expect_error(422, "invalid", "unknown field `colour`");
    }
}

#[tokio::test]
async fn a_blueprint_with_entities_is_deleted_only_when_asked() {
    for p in Portico::each().await {
        p.admin("POST", "/v1/blueprints", service_blueprint())
            .await
            .expect(201);
        p.admin(
            "POST",
            "/v1/blueprints/service/entities",
            json!({ "identifier": "a", "properties": { "language": "go" } }),
        )
        .await
        .expect(201);
        p.admin("DELETE", "/v1/blueprints/service", json!(null))
            .await
            .expect_error(
                409,
                "conflict",
                "has 1 entities; delete them first or pass ?delete_entities=true",
            );
        p.admin(
            "DELETE",
            "/v1/blueprints/service?delete_entities=true",
            json!(null),
        )
        .await
        .expect(200);
        p.admin("GET", "/v1/blueprints/service/entities/a", json!(null))
            .await
            .expect(404);
    }
}

#[tokio::test]
async fn a_blueprint_that_another_relates_to_cannot_be_deleted() {
    for p in Portico::each().await {
        p.admin("POST", "/v1/blueprints", json!({ "identifier": "team" }))
            .await
            .expect(201);
        p.admin(
            "POST",
            "/v1/blueprints",
            json!({ "identifier": "app", "relations": { "owner": { "target": "team" } } }),
        )
        .await
        .expect(201);
        p.admin("DELETE", "/v1/blueprints/team", json!(null))
            .await
            .expect_error(
                409,
                "conflict",
                "is the target of relation `owner` of blueprint `app`",
            );
    }
}
