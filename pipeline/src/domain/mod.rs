//! The domain layer: plain data and rules, no I/O.

mod clock;
mod error;
mod ids;
mod job;
mod language;
mod message;
pub mod names;
pub mod narration_text;
pub mod page_text;
mod speed;
pub mod timings;

pub use clock::now_ms;
pub use error::{ErrorKind, Failure, PortError, StageError};
pub use ids::{BlobKey, ContentId, JobId};
pub use job::{AudioRef, DeliveryState, Destination, Job, JobStatus, Page, PageReading, Recipient, Reuse};
pub use language::Language;
pub use message::{MAX_SNAPSHOT_BYTES, Snapshot, Stage, StageMessage};
pub use speed::Speed;
