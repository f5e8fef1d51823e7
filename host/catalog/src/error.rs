//! Catalog errors: each says what to fix, and which field.

use portico_store::StoreError;
use serde::Serialize;

/// One problem with a request, at a path such as `schema.properties.replicas.type`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// Where, in the request body.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl Violation {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Why a catalog operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The blueprint or entity does not exist.
    #[error("{0}")]
    NotFound(String),
    /// It exists already, or something depends on it.
    #[error("{0}")]
    Conflict(String),
    /// The request is invalid; `details` lists every problem.
    #[error("{message}")]
    Invalid {
        /// A summary.
        message: String,
        /// Every problem, with its path.
        details: Vec<Violation>,
    },
    /// The caller may not do this; the text says what would allow it.
    #[error("{0}")]
    Forbidden(String),
    /// The store failed: internal, never shown as is.
    #[error(transparent)]
    Store(StoreError),
}

impl CatalogError {
    /// A 422 listing every problem.
    pub fn invalid(details: Vec<Violation>) -> Self {
        let message = match details.as_slice() {
            [one] => format!("{}: {}", one.path, one.message),
            many => format!("{} problems, listed in details", many.len()),
        };
        Self::Invalid { message, details }
    }

    /// A 422 for one field.
    pub fn field(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self::invalid(vec![Violation::new(path, message)])
    }
}

impl From<StoreError> for CatalogError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => Self::Conflict(format!("{what} already exists")),
            StoreError::InUse(message) => Self::Conflict(message),
            StoreError::Query(q) => Self::field("query", q.0),
            other => Self::Store(other),
        }
    }
}

/// Result of a catalog operation.
pub type Result<T, E = CatalogError> = std::result::Result<T, E>;
