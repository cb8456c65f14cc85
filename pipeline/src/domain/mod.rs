//! The domain layer: plain data and rules, no I/O.

mod error;
mod ids;
mod job;
mod language;
mod message;
pub mod text;

pub use error::{Failure, PortError, StageError};
pub use ids::{BlobKey, ContentId, JobId};
pub use job::{AudioRef, DeliveryState, Destination, Job, JobStatus, Page, PageReading, Recipient, Reuse};
pub use language::Language;
pub use message::{Stage, StageMessage};

/// Milliseconds since the Unix epoch, the one clock reading the domain uses.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
}
