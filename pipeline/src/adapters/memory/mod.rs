//! In-memory adapters for every port, for fast tests of the stages, the
//! runtime and the front ends in one process: no files, no engines, no
//! network. Each keeps what tests need to look at (emails sent, chat
//! deliveries made) and can be told to fail like the real thing.
//!
//! Built with the `test-support` feature; never chosen by the settings.

mod blob_store;
mod channels;
mod engines;
mod job_store;
mod queue;

pub use blob_store::InMemoryBlobStore;
pub use channels::{InMemoryMessenger, InMemoryNotifier};
pub use engines::{StandInNarrator, StandInReader};
pub use job_store::InMemoryJobStore;
pub use queue::InMemoryQueue;

use std::sync::Mutex;

use crate::domain::{ErrorKind, PortError};

/// Failures a stand-in has been told to report, one per call, before it
/// works again.
#[derive(Default)]
pub(crate) struct Faults(Mutex<Vec<ErrorKind>>);

impl Faults {
    pub(crate) fn push(&self, kind: ErrorKind, times: usize) {
        self.0.lock().expect("faults lock").extend(std::iter::repeat_n(kind, times));
    }

    /// The next failure to report, if any.
    pub(crate) fn next(&self, what: &str) -> Result<(), PortError> {
        match self.0.lock().expect("faults lock").pop() {
            Some(kind) => Err(PortError::new(kind, what, "a failure the test asked for")),
            None => Ok(()),
        }
    }
}
