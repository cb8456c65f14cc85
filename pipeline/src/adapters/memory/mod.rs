//! In-memory adapters for every port, for fast tests of the stages, the
//! runtime and the front ends in one process: no files, no engines, no
//! network. Each keeps what tests need to look at (emails sent, chat
//! deliveries made) and can be told to fail like the real thing.
//!
//! Built with the `test-support` feature; never chosen by the settings.

mod blob_store;
mod channels;
mod engines;
mod faults;
mod job_store;
mod queue;

pub use blob_store::InMemoryBlobStore;
pub use channels::{InMemoryMessenger, InMemoryNotifier};
pub use engines::{StandInNarrator, StandInReader};
pub use job_store::InMemoryJobStore;
pub use queue::InMemoryQueue;
