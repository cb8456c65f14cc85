//! Errors of the ports and stages, classified once where they arise so the
//! runtime can decide between retrying and giving up, and so `doctor` can
//! say how to fix what failed.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// What kind of failure a port met. The adapter decides, from its
/// service's own codes; everything downstream reads the kind, never the
/// message text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The item asked for is not there (a blob, a job, a record).
    NotFound,
    /// A conditional write lost a race: re-read and try again.
    Conflict,
    /// The service asked us to slow down.
    Throttled,
    /// A timeout, a server error, a lost connection: may pass.
    Unavailable,
    /// The disk (or store) is full: may pass once space is freed.
    StorageFull,
    /// The credentials or permissions refused the call.
    AccessDenied,
    /// Something the adapter needs does not exist: a bucket, queue, table,
    /// topic or program (`storytime init` or an install creates it).
    Missing,
    /// The request itself is unacceptable (a bad parameter, too long).
    Invalid,
    /// Any other failure that retrying will not fix.
    Failed,
}

impl ErrorKind {
    /// Worth another try later.
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::Conflict | Self::Throttled | Self::Unavailable | Self::StorageFull)
    }
}

/// What a port (storage, queue, engine, notifier) reports when it fails:
/// its kind, what failed, the detail in the service's own words, and the
/// underlying error when there is one.
#[derive(Debug, Clone)]
pub struct PortError {
    kind: ErrorKind,
    what: String,
    detail: String,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl PortError {
    pub fn new(kind: ErrorKind, what: impl Into<String>, detail: impl ToString) -> Self {
        Self { kind, what: what.into(), detail: detail.to_string(), source: None }
    }

    /// `what` is not there.
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, what, "")
    }

    /// A conditional write on `what` lost a race.
    pub fn conflict(what: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, what, "")
    }

    /// Worth retrying: a timeout, a service briefly down.
    pub fn unavailable(what: impl Into<String>, detail: impl ToString) -> Self {
        Self::new(ErrorKind::Unavailable, what, detail)
    }

    /// The disk `what` writes to is full.
    pub fn storage_full(what: impl Into<String>, detail: impl ToString) -> Self {
        Self::new(ErrorKind::StorageFull, what, detail)
    }

    /// The kind of an I/O error: a full disk, one that may pass, or a
    /// fault.
    pub fn io(what: impl Into<String>, e: std::io::Error) -> Self {
        let kind = match e.kind() {
            std::io::ErrorKind::NotFound => ErrorKind::NotFound,
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => ErrorKind::StorageFull,
            std::io::ErrorKind::Interrupted | std::io::ErrorKind::TimedOut => ErrorKind::Unavailable,
            std::io::ErrorKind::PermissionDenied => ErrorKind::AccessDenied,
            _ => ErrorKind::Failed,
        };
        Self::new(kind, what, e.to_string()).with_source(e)
    }

    /// Retrying will not help, and no more precise kind applies.
    pub fn rejected(what: impl Into<String>, detail: impl ToString) -> Self {
        Self::new(ErrorKind::Failed, what, detail)
    }

    /// Keeps the underlying error, for logs and `source()` chains.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// What failed, e.g. `the blob store` or `queue storytime-read`.
    pub fn what(&self) -> &str {
        &self.what
    }

    /// The detail, in the words of the service that failed.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }

    /// What went wrong, for the person waiting: by kind only, never what
    /// failed or the detail (they may name programs, paths or cloud
    /// resources; the log has them).
    pub fn public(&self) -> &'static str {
        match self.kind {
            ErrorKind::NotFound => "something it needed was missing",
            ErrorKind::Conflict => "another update of the same job got in the way",
            ErrorKind::Throttled => "a service it relies on asked it to slow down",
            ErrorKind::Unavailable => "a service it relies on failed or did not answer in time",
            ErrorKind::StorageFull => "the server's storage is full",
            ErrorKind::AccessDenied => "it was not allowed to use a service it relies on",
            ErrorKind::Missing | ErrorKind::Invalid | ErrorKind::Failed => "a service it relies on refused the work",
        }
    }
}

impl std::fmt::Display for PortError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (what, detail) = (&self.what, &self.detail);
        match self.kind {
            ErrorKind::NotFound if detail.is_empty() => write!(f, "{what} not found"),
            ErrorKind::NotFound => write!(f, "{what} not found: {detail}"),
            ErrorKind::Conflict => write!(f, "conflicting update of {what}"),
            ErrorKind::Throttled | ErrorKind::Unavailable => write!(f, "{what} is unavailable: {detail}"),
            ErrorKind::StorageFull => write!(f, "{what} is out of space: {detail}"),
            ErrorKind::AccessDenied | ErrorKind::Missing | ErrorKind::Invalid | ErrorKind::Failed => {
                write!(f, "{what} refused: {detail}")
            }
        }
    }
}

impl std::error::Error for PortError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
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

    /// A fault on our side: the detail (which may name programs, paths or
    /// cloud resources) goes to the operator's log, the user reads that
    /// it was not their photo.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "a job failed for a reason on Storytime's side");
        Self::new(
            "internal",
            "Storytime could not finish this page because of a problem on its side, not with the photo. \
             Please try again later.",
        )
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
    Retry(#[source] PortError),
    /// Final: the job ends failed with this reason; retrying cannot help.
    #[error("permanent: {0}")]
    Permanent(Failure),
}

impl StageError {
    /// A transient failure of our own machinery (a task that stopped, a
    /// record being updated by too many others).
    pub fn retry(what: impl Into<String>, detail: impl ToString) -> Self {
        Self::Retry(PortError::unavailable(what, detail))
    }
}

impl From<PortError> for StageError {
    fn from(e: PortError) -> Self {
        if e.is_retryable() { Self::Retry(e) } else { Self::Permanent(Failure::internal(e)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kind_decides_between_retrying_and_giving_up() {
        for kind in [ErrorKind::Conflict, ErrorKind::Throttled, ErrorKind::Unavailable] {
            let e = PortError::new(kind, "the queue", "busy");
            assert!(matches!(StageError::from(e), StageError::Retry(p) if p.kind() == kind));
        }
        for kind in [ErrorKind::NotFound, ErrorKind::AccessDenied, ErrorKind::Missing, ErrorKind::Invalid] {
            let e = PortError::new(kind, "the bucket", "no");
            assert!(matches!(StageError::from(e), StageError::Permanent(f) if f.code == "internal"));
        }
    }

    #[test]
    fn the_source_is_kept() {
        let io = std::io::Error::other("disk on fire");
        let e = PortError::unavailable("the blob store", "could not write").with_source(io);
        let source = std::error::Error::source(&e).expect("a source");
        assert_eq!(source.to_string(), "disk on fire");
        assert_eq!(e.to_string(), "the blob store is unavailable: could not write");
    }
}
