//! Error pages. A 4xx says what to do next; a 5xx says only that the server failed (the cause
//! goes to the log).

use crate::templates;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use portico_runs::control::ControlError;
use portico_store::StoreError;
use serde_json::json;

/// Why a page cannot be shown.
#[derive(Debug)]
pub enum PageError {
    /// 404 with what was not found.
    NotFound(String),
    /// 403 with who may.
    Forbidden(String),
    /// 400 with what to fix.
    BadRequest(String),
    /// 500; the text is for the log only.
    Internal(String),
}

/// What page handlers return.
pub type PageResult<T = Response> = Result<T, PageError>;

impl PageError {
    /// A server fault, logged.
    pub fn internal(e: impl std::fmt::Display) -> Self {
        Self::Internal(e.to_string())
    }
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        Self::internal(e)
    }
}

impl From<portico_catalog::CatalogError> for PageError {
    fn from(e: portico_catalog::CatalogError) -> Self {
        use portico_catalog::CatalogError;
        match e {
            CatalogError::NotFound(m) => Self::NotFound(m),
            e @ CatalogError::Invalid { .. } => Self::BadRequest(e.to_string()),
            e => Self::internal(e),
        }
    }
}

impl From<ControlError> for PageError {
    fn from(e: ControlError) -> Self {
        match e {
            ControlError::NotFound(_) => Self::NotFound(e.to_string()),
            e @ (ControlError::Ended { .. } | ControlError::Approval(_)) => {
                Self::BadRequest(e.to_string())
            }
            e => Self::internal(e),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title, message) = match self {
            Self::NotFound(m) => (StatusCode::NOT_FOUND, "Not found", m),
            Self::Forbidden(m) => (StatusCode::FORBIDDEN, "Not allowed", m),
            Self::BadRequest(m) => (StatusCode::BAD_REQUEST, "Cannot do that", m),
            Self::Internal(m) => {
                tracing::error!("portal page failed: {m}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Server error",
                    "The server failed to show this page; try again. Its log says why.".into(),
                )
            }
        };
        let body = templates::render(
            "error.html",
            &json!({ "title": title, "message": message, "status": status.as_u16() }),
        );
        (status, body).into_response()
    }
}
