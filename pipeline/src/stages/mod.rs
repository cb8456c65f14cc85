//! The stages: intake (run by the front end), read, narrate and deliver
//! (run by workers behind queues). Each is idempotent per message, because
//! queues deliver at least once; each checks the stored job before working.
//!
//! Stages talk to ports only; they never know whether they run inside
//! `storytime serve`, a worker process or a Lambda function.

mod deliver;
mod intake;
mod narrate;
mod pipeline;
mod read;
#[cfg(test)]
mod tests;
mod uploads;

pub use intake::{Accepted, IntakeError, Retell, SubmitRequest, Upload};
pub use narrate::synthesize_book;
pub use pipeline::{Links, Pipeline, PipelineConfig, Ports};
pub use read::{PageResult, read_page};
pub use uploads::{ExpectedUpload, UPLOAD_SOURCE, UploadRequest, UploadState};
