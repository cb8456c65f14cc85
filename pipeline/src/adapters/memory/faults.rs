//! Failures a stand-in reports on request, like the real thing would.

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
