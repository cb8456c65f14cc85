//! The worker runtime: receive a message, run its stage, and settle it,
//! the same way in long-running workers and in Lambda functions.

mod handlers;
#[cfg(feature = "aws")]
pub mod lambda;
mod policy;
pub mod priority;
#[cfg(test)]
mod tests;
mod workers;

pub use handlers::{Handlers, Liveness};
pub use policy::{Outcome, handle};
pub use workers::{DRAIN, run};
