//! An action's form: shown, re-evaluated as the user changes a field, and submitted to the run
//! intake. The intake's refusal comes back into the same form, each problem by its field, with
//! everything typed kept (except secrets, which are never sent back to the browser).

use super::page as render_page;
use crate::Portal;
use crate::error::{PageError, PageResult};
use crate::form::{self, Choice, Step, Widget};
use crate::templates;
use crate::viewer::Viewer;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use portico_catalog::Violation;
use portico_runs::compiled::{Action, TriggerKind};
use portico_runs::intake::{IntakeError, RunAsk, Source};
use portico_store::RunRecord;
use serde_json::{Value, json};
use std::sync::Arc;

/// The form's own fields beside the inputs.
type Pairs = Vec<(String, String)>;

fn pair<'a>(pairs: &'a Pairs, key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

async fn action(portal: &Portal, id: &str) -> PageResult<Arc<Action>> {
    match portal.state.intake.action(id).await {
        Ok(Some(a)) if a.trigger_kind == TriggerKind::SelfService => Ok(a),
        Ok(_) => Err(PageError::NotFound(format!(
            "no self-service action `{id}`"
        ))),
        Err(e) => Err(PageError::internal(e)),
    }
}

/// What the form is being filled for.
struct Filling<'a> {
    action: &'a Action,
    entity: Option<String>,
    retry_of: Option<String>,
    /// The values as the browser sent them (or the previous run's, or none).
    submitted: Value,
    violations: Vec<Violation>,
    /// A refusal that is not about one field.
    refusal: Option<String>,
}

impl<'a> Filling<'a> {
    /// An empty form for `action`.
    fn blank(action: &'a Action) -> Self {
        Self {
            action,
            entity: None,
            retry_of: None,
            submitted: json!({}),
            violations: Vec::new(),
            refusal: None,
        }
    }
}

/// Builds the form's steps: the intake decides what is visible, required and disabled, the
/// catalog and directory fill the pickers.
async fn steps(portal: &Portal, viewer: &Viewer, f: &Filling<'_>) -> (Vec<Step>, Vec<String>) {
    let state = portal
        .state
        .intake
        .form_state(&viewer.user, f.action, f.entity.clone(), &f.submitted)
        .await;
    // The run's entity has its own picker above the inputs (see `render`).
    let inputs: Vec<Violation> = f
        .violations
        .iter()
        .filter(|v| v.path != "entity")
        .cloned()
        .collect();
    let (by_field, mut general) = form::errors(&inputs);
    // jq failures are the action's fault, not the user's: shown once, above the form.
    for p in &state.problems {
        let line = format!("{}: {}", p.path, p.message);
        if !general.contains(&line) {
            general.push(line);
        }
    }
    let mut steps = form::steps(f.action.inputs.definition(), &state, &by_field);
    for step in &mut steps {
        for field in &mut step.fields {
            let chosen = form::selected(state.values.get(&field.name));
            match field.widget {
                Widget::User | Widget::Users => {
                    let users = portal.state.store.list_users().await.unwrap_or_default();
                    field.choices = users
                        .into_iter()
                        .filter(|u| !u.disabled)
                        .map(|u| choice(&u.identifier, &u.identifier, &chosen))
                        .collect();
                }
                Widget::Team | Widget::Teams => {
                    let teams = portal.state.store.list_teams().await.unwrap_or_default();
                    field.choices = teams
                        .into_iter()
                        .map(|t| choice(&t.name, &t.name, &chosen))
                        .collect();
                }
                Widget::Entity | Widget::Entities => {
                    let dataset = state.datasets.get(&field.name);
                    let blueprint = field.blueprint.clone().unwrap_or_default();
                    field.choices = entity_choices(portal, &blueprint, dataset, "", &chosen).await;
                }
                _ => {}
            }
        }
    }
    (steps, general)
}

fn choice(value: &str, label: &str, chosen: &[String]) -> Choice {
    Choice {
        value: value.to_owned(),
        label: label.to_owned(),
        color: None,
        selected: chosen.iter().any(|c| c == value),
    }
}

/// How many entities a picker offers at once; typing narrows them.
const PICKER_SIZE: usize = 50;

/// Entities of `blueprint` an input offers: its dataset, narrowed by `q` (identifier or title
/// contains), with those already chosen kept in the list.
async fn entity_choices(
    portal: &Portal,
    blueprint: &str,
    dataset: Option<&Value>,
    q: &str,
    chosen: &[String],
) -> Vec<Choice> {
    let mut rules = vec![json!({ "property": "$blueprint", "operator": "=", "value": blueprint })];
    if let Some(dataset) = dataset {
        rules.push(dataset.clone());
    }
    if !q.is_empty() {
        rules.push(json!({ "combinator": "or", "rules": [
            { "property": "$identifier", "operator": "contains", "value": q },
            { "property": "$title", "operator": "contains", "value": q },
        ] }));
    }
    let query = json!({ "combinator": "and", "rules": rules });
    let found = match portal.state.catalog.search(&query, PICKER_SIZE, None).await {
        Ok((found, _)) => found,
        Err(e) => {
            tracing::warn!("an entity picker's search failed: {e}");
            Vec::new()
        }
    };
    let mut choices: Vec<Choice> = found
        .iter()
        .map(|e| {
            let label = match &e.title {
                Some(t) if t != &e.identifier => format!("{t} ({})", e.identifier),
                _ => e.identifier.clone(),
            };
            choice(&e.identifier, &label, chosen)
        })
        .collect();
    for c in chosen {
        if !choices.iter().any(|x| &x.value == c) {
            choices.push(choice(c, c, chosen));
        }
    }
    choices
}

async fn render(
    portal: &Portal,
    viewer: &Viewer,
    f: Filling<'_>,
    status: StatusCode,
) -> PageResult<Response> {
    let (steps, mut general) = steps(portal, viewer, &f).await;
    if let Some(refusal) = f.refusal {
        general.insert(0, refusal);
    }
    let entity_error: Vec<&str> = f
        .violations
        .iter()
        .filter(|v| v.path == "entity")
        .map(|v| v.message.as_str())
        .collect();
    let a = f.action;
    let needs_entity = a.trigger.operation != "CREATE";
    let entities = if needs_entity {
        let chosen: Vec<String> = f.entity.iter().cloned().collect();
        let blueprint = a.trigger.blueprint_identifier.clone().unwrap_or_default();
        entity_choices(portal, &blueprint, None, "", &chosen).await
    } else {
        Vec::new()
    };
    let context = json!({
        "action": super::hub::card(a),
        "steps": steps,
        "errors": general,
        "entity": f.entity,
        "entity_error": (!entity_error.is_empty()).then(|| entity_error.join("; ")),
        "entities": entities,
        "needs_entity": needs_entity,
        "retry_of": f.retry_of,
        "secrets_again": f.retry_of.is_some() && has_secrets(a),
        "dynamic": a.inputs.depends_on_form(),
    });
    Ok((status, render_page("action.html", viewer, "hub", context)).into_response())
}

fn has_secrets(action: &Action) -> bool {
    form::ordered(action.inputs.definition())
        .iter()
        .any(|(_, def)| def.contains_key("encryption"))
}

#[derive(serde::Deserialize)]
pub struct On {
    entity: Option<String>,
}

/// `GET /actions/{action}[?entity=]`: the empty form (defaults filled in).
pub async fn page(
    State(portal): State<Portal>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    Query(on): Query<On>,
) -> PageResult<Response> {
    let action = action(&portal, &id).await?;
    let filling = Filling {
        entity: on.entity.filter(|e| !e.is_empty()),
        ..Filling::blank(&action)
    };
    render(&portal, &viewer, filling, StatusCode::OK).await
}

/// `GET /runs/{run}/again`: the form with the inputs a run ran with; secrets are asked again.
pub async fn again(
    State(portal): State<Portal>,
    Extension(viewer): Extension<Viewer>,
    Path(run_id): Path<String>,
) -> PageResult<Response> {
    let control = portal.state.run_control();
    let run: RunRecord = control.visible(&viewer.user, &run_id).await?;
    let action = action(&portal, &run.action).await?;
    let mut values =
        portico_runs::inputs::as_submitted(action.inputs.definition(), &run.properties);
    // The run shows secrets redacted; the form asks for them again instead.
    if let Some(map) = values.as_object_mut() {
        for (name, def) in form::ordered(action.inputs.definition()) {
            if def.contains_key("encryption") {
                map.remove(&name);
            }
        }
    }
    let filling = Filling {
        entity: run.entity.clone(),
        retry_of: Some(run.id.clone()),
        submitted: values,
        ..Filling::blank(&action)
    };
    render(&portal, &viewer, filling, StatusCode::OK).await
}

/// `POST /actions/{action}/fields`: the fields again for what the browser holds now (htmx
/// swaps them in as the user changes a field).
pub async fn fields(
    State(portal): State<Portal>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    Form(pairs): Form<Pairs>,
) -> PageResult<Response> {
    let action = action(&portal, &id).await?;
    let filling = Filling {
        entity: pair(&pairs, "_entity").map(str::to_owned),
        submitted: form::properties(action.inputs.definition(), &pairs),
        ..Filling::blank(&action)
    };
    let (steps, errors) = steps(&portal, &viewer, &filling).await;
    let body = templates::render(
        "fields.html",
        &json!({ "steps": steps, "errors": errors, "action_id": id }),
    );
    Ok(body.into_response())
}

/// `GET /actions/{action}/options/{input}?q=`: an entity picker's choices for what is typed,
/// within the input's dataset for the form's values now.
pub async fn options(
    State(portal): State<Portal>,
    Extension(viewer): Extension<Viewer>,
    Path((id, input)): Path<(String, String)>,
    Query(pairs): Query<Pairs>,
) -> PageResult<Response> {
    let action = action(&portal, &id).await?;
    let q = pair(&pairs, &format!("q.{input}")).unwrap_or_default();
    let (blueprint, dataset) = if input == "_entity" {
        (action.trigger.blueprint_identifier.clone(), None)
    } else {
        let submitted = form::properties(action.inputs.definition(), &pairs);
        let entity = pair(&pairs, "_entity").map(str::to_owned);
        let state = portal
            .state
            .intake
            .form_state(&viewer.user, &action, entity, &submitted)
            .await;
        let def = form::ordered(action.inputs.definition())
            .into_iter()
            .find(|(n, _)| *n == input)
            .map(|(_, d)| d)
            .ok_or_else(|| PageError::NotFound(format!("no input `{input}` in `{id}`")))?;
        let blueprint = def
            .get("blueprint")
            .or_else(|| def.get("items").and_then(|i| i.get("blueprint")))
            .and_then(Value::as_str)
            .map(str::to_owned);
        (blueprint, state.datasets.get(&input).cloned())
    };
    let chosen: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| {
            *k == format!("{}{input}", form::PREFIX) || (input == "_entity" && k == "_entity")
        })
        .map(|(_, v)| v.clone())
        .filter(|v| !v.is_empty())
        .collect();
    let blueprint = blueprint.unwrap_or_default();
    let choices = entity_choices(&portal, &blueprint, dataset.as_ref(), q, &chosen).await;
    Ok(templates::render("options.html", &json!({ "choices": choices })).into_response())
}

/// `POST /actions/{action}`: asks the intake for a run; on success the browser goes to the run.
pub async fn submit(
    State(portal): State<Portal>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    Form(pairs): Form<Pairs>,
) -> PageResult<Response> {
    let action = action(&portal, &id).await?;
    let properties = form::properties(action.inputs.definition(), &pairs);
    let entity = pair(&pairs, "_entity").map(str::to_owned);
    let retry_of = pair(&pairs, "_retry_of").map(str::to_owned);
    let intake = &portal.state.intake;
    let result = match &retry_of {
        Some(previous) => {
            let control = portal.state.run_control();
            let previous = control.visible(&viewer.user, previous).await?;
            intake
                .retry(&viewer.user, Source::Ui, &previous, properties.clone())
                .await
        }
        None => {
            let ask = RunAsk {
                properties: properties.clone(),
                entity: entity.clone(),
            };
            intake.request(&viewer.user, Source::Ui, &id, ask).await
        }
    };
    // Refusals come back into the form: each violation by its field, the rest above it.
    let (status, violations, refusal) = match result {
        Ok(run) => return Ok(Redirect::to(&format!("/runs/{}", run.id)).into_response()),
        Err(IntakeError::Invalid(v)) => (StatusCode::UNPROCESSABLE_ENTITY, v, None),
        Err(e @ IntakeError::Forbidden(_)) => (StatusCode::FORBIDDEN, vec![], Some(e.to_string())),
        Err(e @ IntakeError::Quota(_)) => {
            (StatusCode::TOO_MANY_REQUESTS, vec![], Some(e.to_string()))
        }
        Err(e @ IntakeError::Overloaded { .. }) => {
            (StatusCode::SERVICE_UNAVAILABLE, vec![], Some(e.to_string()))
        }
        Err(e @ (IntakeError::NotFound(_) | IntakeError::Automation(_))) => {
            return Err(PageError::NotFound(e.to_string()));
        }
        Err(e) => return Err(PageError::internal(e)),
    };
    let filling = Filling {
        action: &action,
        entity,
        retry_of,
        submitted: properties,
        violations,
        refusal,
    };
    render(&portal, &viewer, filling, status).await
}
