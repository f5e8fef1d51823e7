//! CREATE: scaffolds a service. Checks the name, refuses one that exists, and records the new
//! `service` entity in the catalog with a link to where its repository will live.
//!
//! Action config: `{ "org": "acme", "paceMs": 700 }`: the Git organisation, and how long each
//! step takes (default 0). Real scaffolding (a repository, a pipeline) takes seconds; the
//! example paces its steps so the portal's live log and progress have something to show.
//! Grants: catalog write `service`.

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
#[serde(rename_all = "camelCase")]
struct Config {
    org: String,
    #[serde(default)]
    pace_ms: u64,
}

impl Config {
    /// Waits as long as one step of real work would.
    fn pace(&self) {
        if self.pace_ms > 0 {
            std::thread::sleep(std::time::Duration::from_millis(self.pace_ms));
        }
    }
}

struct ScaffoldService;

impl Action for ScaffoldService {
    type Inputs = Inputs;

    fn run(request: Request<Inputs>) -> Result<Outcome, Failure> {
        let config: Config = request.config()?;
        let inputs = &request.inputs;
        check_name(&inputs.name)?;

        progress::report(10, "Checking the catalog");
        info!("checking that no service is named {}", inputs.name);
        config.pace();
        if catalog::get("service", &inputs.name)?.is_some() {
            return Err(Failure::invalid_input(format!(
                "a service named `{}` already exists",
                inputs.name
            )));
        }

        progress::report(40, "Creating the repository");
        info!("creating repository {}/{}", config.org, inputs.name);
        config.pace();
        progress::report(70, "Registering the service");
        config.pace();
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
