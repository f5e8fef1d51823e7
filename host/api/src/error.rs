//! One error type for every route, in Portico's envelope:
//! `{"ok": false, "error": "<code>", "message": "<what to fix>", "details": [...]}`.
//! A 5xx never carries internals (they go to the log); a 4xx always says what to fix.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use portico_catalog::{CatalogError, Violation};
use portico_runs::approval::ApprovalError;
use portico_runs::control::ControlError;
use portico_runs::external::ReportError;
use portico_runs::intake::IntakeError;
use portico_runs::registry::RegistryError;
use portico_store::StoreError;
use serde_json::json;

/// An API error: status, a stable code, a plain message, and per-field details for 422.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Vec<Violation>,
    /// Seconds for a `Retry-After` header (a 503 that passes).
    retry_after: Option<u32>,
}

impl ApiError {
    /// An error with a status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: Vec::new(),
            retry_after: None,
        }
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 401.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 500, with the cause logged and not shown.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!("internal error: {cause}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "the server failed; the error is in its log",
        )
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "ok": false, "error": self.code, "message": self.message });
        if !self.details.is_empty() {
            body["details"] = json!(self.details);
        }
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

impl From<ReportError> for ApiError {
    fn from(e: ReportError) -> Self {
        match e {
            ReportError::Forbidden(m) => Self::forbidden(m),
            ReportError::NotFound(_) => Self::not_found(e.to_string()),
            ReportError::Ended(m) => Self::new(StatusCode::CONFLICT, "conflict", m),
            ReportError::Invalid(v) => CatalogError::invalid(vec![v]).into(),
            ReportError::Store(e) => e.into(),
        }
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::Invalid(details) => CatalogError::invalid(details).into(),
            RegistryError::Store(e) => e.into(),
            RegistryError::Internal(_) => Self::internal(e),
        }
    }
}

impl From<IntakeError> for ApiError {
    fn from(e: IntakeError) -> Self {
        match e {
            IntakeError::NotFound(_) => Self::not_found(e.to_string()),
            IntakeError::Automation(_) => {
                Self::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            IntakeError::Invalid(details) => CatalogError::invalid(details).into(),
            IntakeError::Forbidden(m) => Self::forbidden(m),
            IntakeError::Overloaded { .. } => Self {
                retry_after: Some(1),
                ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", e.to_string())
            },
            IntakeError::Quota(_) => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "quota_exceeded",
                e.to_string(),
            ),
            IntakeError::Store(e) => e.into(),
            IntakeError::Broken(_) | IntakeError::Internal(_) => Self::internal(e),
        }
    }
}

impl From<ApprovalError> for ApiError {
    fn from(e: ApprovalError) -> Self {
        match e {
            ApprovalError::Forbidden(m) => ApiError::forbidden(m),
            ApprovalError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            ApprovalError::Invalid { field, message } => CatalogError::field(field, message).into(),
            e @ ApprovalError::Broken(_) => ApiError::internal(e),
            ApprovalError::Store(e) => e.into(),
        }
    }
}

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> Self {
        match e {
            ControlError::NotFound(_) => ApiError::not_found(e.to_string()),
            ControlError::Ended { .. } => {
                ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            ControlError::Approval(e) => e.into(),
            e @ ControlError::Broken(_) => ApiError::internal(e),
            ControlError::Store(e) => e.into(),
        }
    }
}

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::NotFound(m) => Self::not_found(m),
            CatalogError::Conflict(m) => Self::new(StatusCode::CONFLICT, "conflict", m),
            CatalogError::Forbidden(m) => Self::forbidden(m),
            CatalogError::Invalid { message, details } => Self {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code: "invalid",
                message,
                details,
                retry_after: None,
            },
            CatalogError::Store(e) => Self::internal(e),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        CatalogError::from(e).into()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let status = rejection.status();
        let text = rejection.body_text();
        match rejection {
            JsonRejection::JsonSyntaxError(_) => Self::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("the body is not valid JSON: {text}"),
            ),
            JsonRejection::JsonDataError(_) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                format!("the body does not have the expected shape: {text}"),
            ),
            JsonRejection::MissingJsonContentType(_) => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with `Content-Type: application/json`",
            ),
            _ if status == StatusCode::PAYLOAD_TOO_LARGE => Self::new(
                status,
                "payload_too_large",
                "the body is larger than the server's request body limit",
            ),
            _ => Self::new(status, "bad_request", text),
        }
    }
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;
