//! The portal's templates, embedded in the binary and compiled once. HTML is autoescaped: a
//! value reaches the page as text unless a template says otherwise.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use minijinja::Environment;
use std::sync::OnceLock;

/// Every template, by name.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("macros.html", include_str!("../templates/macros.html")),
    ("error.html", include_str!("../templates/error.html")),
    ("login.html", include_str!("../templates/login.html")),
    ("hub.html", include_str!("../templates/hub.html")),
    ("action.html", include_str!("../templates/action.html")),
    ("fields.html", include_str!("../templates/fields.html")),
    ("options.html", include_str!("../templates/options.html")),
    ("run.html", include_str!("../templates/run.html")),
    ("runs.html", include_str!("../templates/runs.html")),
    (
        "approvals.html",
        include_str!("../templates/approvals.html"),
    ),
    (
        "blueprints.html",
        include_str!("../templates/blueprints.html"),
    ),
    ("table.html", include_str!("../templates/table.html")),
    ("entity.html", include_str!("../templates/entity.html")),
    ("audit.html", include_str!("../templates/audit.html")),
    ("admin.html", include_str!("../templates/admin.html")),
];

fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .unwrap_or_else(|e| panic!("template {name} does not compile: {e:#}"));
        }
        env
    })
}

/// Renders a template with `context` as an HTML page. A template that fails to render is a
/// bug: the answer is a 500 that says only that, and the log holds the cause.
pub fn render(name: &str, context: &impl serde::Serialize) -> Response {
    let rendered = environment()
        .get_template(name)
        .and_then(|t| t.render(context));
    match rendered {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!("template {name} failed: {e:#}");
            let page =
                "<!doctype html><title>Server error</title><p>The server failed to show this page.";
            (StatusCode::INTERNAL_SERVER_ERROR, Html(page)).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_template_renders_with_nothing_given() {
        // Catches what compiling does not: an unknown filter or test, a bad macro call.
        for (name, _) in super::TEMPLATES {
            let template = super::environment().get_template(name).unwrap();
            if let Err(e) = template.render(serde_json::json!({})) {
                panic!("{name}: {e:#}");
            }
        }
    }
}
