//! What every adapter of a port must do, as checks any adapter's tests run
//! against a live instance: the in-memory adapters, the local ones (SQLite
//! and files in a temporary directory) and the AWS ones (on moto). The
//! same checks on every backend keep the backends from drifting apart.

mod blob_store;
mod job_store;
mod queue;

pub use blob_store::blob_store;
pub use job_store::{job_store, preferences};
pub use queue::queue;
