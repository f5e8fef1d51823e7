//! The SDK's side of the contract's types: plain Rust structs with JSON already parsed.

use crate::bindings::portico::action::types as wit;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A catalog entity.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Entity {
    /// Unique within its blueprint.
    pub identifier: String,
    /// The blueprint it belongs to.
    pub blueprint: String,
    /// Human-friendly name.
    pub title: Option<String>,
    /// Owning teams.
    pub team: Vec<String>,
    /// A JSON object of properties.
    pub properties: Value,
    /// A JSON object of relations.
    pub relations: Value,
}

impl Entity {
    /// A new entity with no title, teams, properties or relations.
    pub fn new(blueprint: impl Into<String>, identifier: impl Into<String>) -> Self {
        Self {
            identifier: identifier.into(),
            blueprint: blueprint.into(),
            title: None,
            team: Vec::new(),
            properties: Value::Object(Default::default()),
            relations: Value::Object(Default::default()),
        }
    }

    /// One property, if set.
    pub fn property(&self, name: &str) -> Option<&Value> {
        self.properties.get(name)
    }

    /// Sets one property.
    pub fn set_property(&mut self, name: &str, value: impl Into<Value>) {
        if !self.properties.is_object() {
            self.properties = Value::Object(Default::default());
        }
        if let Value::Object(map) = &mut self.properties {
            map.insert(name.to_owned(), value.into());
        }
    }

    pub(crate) fn from_wit(e: wit::Entity) -> Self {
        Self {
            properties: parse_object(&e.properties),
            relations: parse_object(&e.relations),
            identifier: e.identifier,
            blueprint: e.blueprint,
            title: e.title,
            team: e.team,
        }
    }

    pub(crate) fn to_wit(&self) -> wit::Entity {
        wit::Entity {
            identifier: self.identifier.clone(),
            blueprint: self.blueprint.clone(),
            title: self.title.clone(),
            team: self.team.clone(),
            properties: self.properties.to_string(),
            relations: self.relations.to_string(),
        }
    }
}

fn parse_object(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::Object(Default::default()))
}

/// The user who triggered the run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Identifier in Portico.
    pub identifier: String,
    /// E-mail, when known.
    pub email: Option<String>,
    /// Roles.
    pub roles: Vec<String>,
    /// Teams.
    pub teams: Vec<String>,
}

/// The action's operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operation {
    /// Creates something.
    Create,
    /// Changes an existing entity.
    DayTwo,
    /// Deletes an existing entity.
    Delete,
}

/// One run's request, with the inputs deserialized into `I`.
#[derive(Clone, Debug)]
pub struct Request<I> {
    /// The run's id.
    pub run_id: String,
    /// The action's identifier.
    pub action: String,
    /// The action's operation.
    pub operation: Operation,
    /// The validated user inputs (secrets in clear: never log them).
    pub inputs: I,
    /// The entity a DAY-2 or DELETE run acts on.
    pub entity: Option<Entity>,
    /// Who triggered the run.
    pub triggered_by: User,
    /// The static `config` JSON from the action's invocation method.
    pub config: Value,
}

impl<I: DeserializeOwned> Request<I> {
    pub(crate) fn from_wit(r: wit::RunRequest) -> Result<Self, Failure> {
        let inputs: Value = serde_json::from_str(&r.inputs)
            .map_err(|e| Failure::invalid_input(format!("inputs are not valid JSON: {e}")))?;
        let inputs = serde_json::from_value(inputs)
            .map_err(|e| Failure::invalid_input(format!("inputs: {e}")))?;
        Ok(Self {
            run_id: r.run_id,
            action: r.action,
            operation: match r.operation {
                wit::Operation::Create => Operation::Create,
                wit::Operation::DayTwo => Operation::DayTwo,
                wit::Operation::Delete => Operation::Delete,
            },
            inputs,
            entity: r.entity.map(Entity::from_wit),
            triggered_by: User {
                identifier: r.triggered_by.identifier,
                email: r.triggered_by.email,
                roles: r.triggered_by.roles,
                teams: r.triggered_by.teams,
            },
            config: serde_json::from_str(&r.config).unwrap_or(Value::Null),
        })
    }
}

impl<I> Request<I> {
    /// The action's `config` deserialized into `C`; a mismatch fails the run as a plugin error.
    pub fn config<C: DeserializeOwned>(&self) -> Result<C, Failure> {
        serde_json::from_value(self.config.clone())
            .map_err(|e| Failure::failed(format!("the action's plugin config: {e}")))
    }

    /// The entity a DAY-2 or DELETE run acts on, or a failure saying it is missing.
    pub fn entity(&self) -> Result<&Entity, Failure> {
        self.entity
            .as_ref()
            .ok_or_else(|| Failure::invalid_input("this action must run on an entity"))
    }
}

/// A link shown on the run page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// The link's text.
    pub title: String,
    /// An absolute URL.
    pub url: String,
}

/// How a successful run ended.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    /// One line shown as the run's summary.
    pub summary: Option<String>,
    /// Links shown on the run page.
    pub links: Vec<Link>,
    /// JSON kept with the run.
    pub output: Option<Value>,
}

impl Outcome {
    /// An outcome with just a summary.
    pub fn summary(summary: impl Into<String>) -> Self {
        Self {
            summary: Some(summary.into()),
            ..Self::default()
        }
    }

    /// Adds a link.
    pub fn with_link(mut self, title: impl Into<String>, url: impl Into<String>) -> Self {
        self.links.push(Link {
            title: title.into(),
            url: url.into(),
        });
        self
    }

    /// Sets the output JSON.
    pub fn with_output(mut self, output: Value) -> Self {
        self.output = Some(output);
        self
    }

    pub(crate) fn into_wit(self) -> wit::RunOutcome {
        wit::RunOutcome {
            summary: self.summary,
            links: self
                .links
                .into_iter()
                .map(|l| wit::Link {
                    title: l.title,
                    url: l.url,
                })
                .collect(),
            output: self.output.map(|v| v.to_string()),
        }
    }
}

impl From<Outcome> for wit::RunOutcome {
    fn from(outcome: Outcome) -> Self {
        outcome.into_wit()
    }
}

/// Why a run failed, shown to the user as is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The inputs are well-formed but unusable.
    InvalidInput(String),
    /// The work failed.
    Failed(String),
    /// Something the backend needed was refused.
    Denied(String),
}

impl Failure {
    /// The inputs are unusable.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::InvalidInput(message.into())
    }

    /// The work failed.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::Failed(message.into())
    }

    /// Something was refused.
    pub fn denied(message: impl Into<String>) -> Self {
        Self::Denied(message.into())
    }

    pub(crate) fn into_wit(self) -> wit::RunFailure {
        match self {
            Self::InvalidInput(m) => wit::RunFailure::InvalidInput(m),
            Self::Failed(m) => wit::RunFailure::Failed(m),
            Self::Denied(m) => wit::RunFailure::Denied(m),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InvalidInput(m) => write!(f, "invalid input: {m}"),
            Self::Failed(m) => f.write_str(m),
            Self::Denied(m) => write!(f, "denied: {m}"),
        }
    }
}

impl std::error::Error for Failure {}
