//! Errors of the ports and stages, classified once where they arise so the
//! runtime can decide between retrying and giving up.

use serde::{Deserialize, Serialize};

/// What a port (storage, queue, engine, notifier) reports when it fails.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PortError {
    #[error("{0} not found")]
    NotFound(String),
    /// A conditional write lost a race; re-read and try again.
    #[error("conflicting update of {0}")]
    Conflict(String),
    /// Worth retrying: throttling, timeouts, a service briefly down.
    #[error("{what} is unavailable: {detail}")]
    Unavailable { what: String, detail: String },
    /// Retrying will not help: bad input, a missing permission or resource.
    #[error("{what} refused: {detail}")]
    Rejected { what: String, detail: String },
}

impl PortError {
    pub fn unavailable(what: impl Into<String>, detail: impl ToString) -> Self {
        Self::Unavailable { what: what.into(), detail: detail.to_string() }
    }

    pub fn rejected(what: impl Into<String>, detail: impl ToString) -> Self {
        Self::Rejected { what: what.into(), detail: detail.to_string() }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::Conflict(_))
    }
}

/// Why a job ended without audio, in words the user reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// A stable machine-readable code, e.g. `not_an_image`.
    pub code: String,
    /// A sentence for the person who sent the photo.
    pub message: String,
}

impl Failure {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self { code: code.to_owned(), message: message.into() }
    }

    pub fn damaged_image(detail: impl std::fmt::Display) -> Self {
        Self::new("damaged_image", format!("The photo could not be decoded ({detail}). Please send it again."))
    }

    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Self::new("internal", format!("Storytime could not finish this page: {detail}."))
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The outcome of a stage that did not succeed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StageError {
    /// Transient: the runtime puts the message back with a backoff and, after
    /// too many attempts, dead-letters it and fails the job.
    #[error("retryable: {0}")]
    Retry(String),
    /// Final: the job ends failed with this reason; retrying cannot help.
    #[error("permanent: {0}")]
    Permanent(Failure),
}

impl From<PortError> for StageError {
    fn from(e: PortError) -> Self {
        match e {
            PortError::Unavailable { .. } | PortError::Conflict(_) => Self::Retry(e.to_string()),
            PortError::NotFound(_) | PortError::Rejected { .. } => Self::Permanent(Failure::internal(e)),
        }
    }
}
