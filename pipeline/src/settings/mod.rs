//! The pipeline's configuration, read once from the environment and split
//! by concern: which adapter backs each port, the AWS resource names, the
//! workers, the limits. Components receive their own part.
//!
//! Every variable is read through [`Env`], which remembers the names read,
//! so a `STORYTIME_*` variable nobody reads (a misspelling) can be named at
//! start with the closest real one.

mod aws;
mod backends;
mod env;
mod limits;
mod pipeline;
mod workers;

pub use aws::AwsSettings;
pub use backends::{
    Backends, BlobsBackend, JobsBackend, NarratorBackend, NotifierBackend, QueueBackend, ReaderBackend,
};
pub use env::{Env, Secret, SettingsError, closest};
pub use limits::Limits;
pub use pipeline::{EngineSettings, PipelineSettings};
pub use workers::WorkerSettings;
