//! CREATE: scaffolds a service. Checks the name, refuses one that exists, and records the new
//! `service` entity in the catalog with a link to where its repository will live.
//!
//! Action config: `{ "org": "acme" }` (the Git organisation). Grants: catalog write `service`.

use portico_sdk::{Action, Entity, Failure, Outcome, Request, catalog, info, progress};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Inputs {
    name: String,
    #[serde(default = "default_language")]
    language: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    team: Option<String>,
}

fn default_language() -> String {
    "rust".to_owned()
}

#[derive(Deserialize)]
struct Config {
    org: String,
}

struct ScaffoldService;

impl Action for ScaffoldService {
    type Inputs = Inputs;

    fn run(request: Request<Inputs>) -> Result<Outcome, Failure> {
        let config: Config = request.config()?;
        let inputs = &request.inputs;
        check_name(&inputs.name)?;

        progress::report(10, "Checking the catalog");
        if catalog::get("service", &inputs.name)?.is_some() {
            return Err(Failure::invalid_input(format!(
                "a service named `{}` already exists",
                inputs.name
            )));
        }

        progress::report(50, "Registering the service");
        let repository = format!("https://github.com/{}/{}", config.org, inputs.name);
        let mut service = Entity::new("service", &inputs.name);
        service.title = Some(inputs.name.clone());
        service.team = inputs.team.iter().cloned().collect();
        service.set_property("language", inputs.language.as_str());
        service.set_property("repository", repository.as_str());
        if let Some(description) = &inputs.description {
            service.set_property("description", description.as_str());
        }
        let stored = catalog::upsert(&service)?;
        info!(
            "registered service {} ({}) for {}",
            stored.identifier, inputs.language, request.triggered_by.identifier
        );
        progress::add_link("Repository", &repository);

        progress::report(100, "Done");
        Ok(
            Outcome::summary(format!("Service {} scaffolded", stored.identifier))
                .with_output(serde_json::json!({ "repository": repository })),
        )
    }
}

/// Lower-case letters, digits and dashes; starts with a letter; 2 to 63 characters.
fn check_name(name: &str) -> Result<(), Failure> {
    let ok = (2..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(Failure::invalid_input(format!(
            "service name `{name}` must be 2-63 lower-case letters, digits or dashes, \
             starting with a letter and not ending with a dash"
        )))
    }
}

portico_sdk::export_action!(ScaffoldService);
