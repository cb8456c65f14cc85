//! What `storytime init` and `storytime doctor` ask of each adapter the
//! settings chose: to create what it needs (a directory, a database, a
//! bucket, queues, a table, a topic), and to say whether it can work here
//! (a program installed, a resource reachable with these credentials).
//! Adding a backend adds its own answers; the commands only loop.

use async_trait::async_trait;

use crate::domain::{ErrorKind, PortError};

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    /// Works, but worth knowing.
    Note,
    /// Does not work until fixed.
    Missing,
}

/// One line of `storytime doctor`'s report.
#[derive(Debug, Clone)]
pub struct Finding {
    pub verdict: Verdict,
    /// A short label: `tesseract`, `s3`, `data dir`.
    pub what: String,
    pub detail: String,
    pub fix: Option<String>,
}

impl Finding {
    pub fn ok(what: &str, detail: impl Into<String>) -> Self {
        Self { verdict: Verdict::Ok, what: what.into(), detail: detail.into(), fix: None }
    }

    pub fn note(what: &str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self { verdict: Verdict::Note, what: what.into(), detail: detail.into(), fix: Some(fix.into()) }
    }

    pub fn missing(what: &str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self { verdict: Verdict::Missing, what: what.into(), detail: detail.into(), fix: Some(fix.into()) }
    }

    /// A resource's check: fine, or what failed and, by the kind of the
    /// failure, how to fix it (`permission` is what to grant when access
    /// was refused).
    pub fn of(what: &str, resource: String, result: Result<(), PortError>, permission: &str) -> Self {
        match result {
            Ok(()) => Self::ok(what, resource),
            Err(e) => {
                let fix = match e.kind() {
                    ErrorKind::AccessDenied => format!("grant {permission} to this role"),
                    ErrorKind::Missing | ErrorKind::NotFound => "run `storytime init`".to_owned(),
                    _ => "check the credentials, the region and AWS_ENDPOINT_URL".to_owned(),
                };
                Self::missing(what, format!("{resource}: {e}"), fix)
            }
        }
    }
}

/// What became of one thing `storytime init` made sure of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Created,
    /// It was there already.
    Exists,
    /// Made sure of (created or not, it does not tell).
    Ready,
}

/// One line of `storytime init`'s report.
#[derive(Debug, Clone)]
pub struct Ensured {
    pub status: Status,
    /// `bucket`, `queue`, `table`, `topic`, `database`, …
    pub kind: &'static str,
    pub name: String,
}

impl Ensured {
    pub fn new(created: bool, kind: &'static str, name: impl Into<String>) -> Self {
        Self { status: if created { Status::Created } else { Status::Exists }, kind, name: name.into() }
    }

    pub fn ready(kind: &'static str, name: impl Into<String>) -> Self {
        Self { status: Status::Ready, kind, name: name.into() }
    }
}

impl std::fmt::Display for Ensured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = match self.status {
            Status::Created => "created",
            Status::Exists => "exists",
            Status::Ready => "ready",
        };
        write!(f, "{status:<7} {:<7} {}", self.kind, self.name)
    }
}

/// An adapter's part in `storytime init` and `storytime doctor`.
#[async_trait]
pub trait Setup: Send + Sync {
    /// Creates what the adapter needs and is missing; running it again
    /// changes nothing. Most adapters need nothing.
    async fn ensure(&self) -> Result<Vec<Ensured>, PortError> {
        Ok(Vec::new())
    }

    /// Whether the adapter can work here, and how to fix it if not.
    async fn check(&self) -> Vec<Finding>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_check_says_how_to_fix_it_by_the_kind_of_failure() {
        let denied = PortError::new(ErrorKind::AccessDenied, "the S3 bucket", "AccessDenied: no");
        let f = Finding::of("s3", "bucket b".into(), Err(denied), "s3:ListBucket on the bucket");
        assert_eq!(
            (f.verdict, f.fix.as_deref()),
            (Verdict::Missing, Some("grant s3:ListBucket on the bucket to this role"))
        );
        let missing = PortError::new(ErrorKind::Missing, "the S3 bucket", "NoSuchBucket: gone");
        let f = Finding::of("s3", "bucket b".into(), Err(missing), "s3:ListBucket");
        assert_eq!(f.fix.as_deref(), Some("run `storytime init`"));
        assert_eq!(Finding::of("s3", "bucket b".into(), Ok(()), "x").verdict, Verdict::Ok);
    }

    #[test]
    fn init_lines_line_up() {
        assert_eq!(Ensured::new(true, "bucket", "storytime-media").to_string(), "created bucket  storytime-media");
        assert_eq!(Ensured::new(false, "queue", "storytime-read").to_string(), "exists  queue   storytime-read");
    }
}
