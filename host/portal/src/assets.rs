//! Static files, embedded in the binary: htmx (vendored, see `assets/htmx-LICENSE`), the
//! portal's script and its stylesheet. Names carry a version, so they are cached for a year.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Each file's name, content type and bytes.
const FILES: &[(&str, &str, &str)] = &[
    (
        "htmx-2.0.11.min.js",
        "text/javascript",
        include_str!("../assets/htmx-2.0.11.min.js"),
    ),
    (
        "portal-1.js",
        "text/javascript",
        include_str!("../assets/portal.js"),
    ),
    (
        "portal-1.css",
        "text/css",
        include_str!("../assets/portal.css"),
    ),
];

/// `GET /assets/{file}`.
pub async fn serve(Path(file): Path<String>) -> Response {
    match FILES.iter().find(|(name, _, _)| *name == file) {
        Some((_, kind, body)) => (
            [
                (header::CONTENT_TYPE, *kind),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            ],
            *body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}
