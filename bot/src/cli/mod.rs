//! The commands of the `storytime` binary. Each gets its parts from the
//! composition root ([`crate::app`]).

pub mod doctor;
pub mod init;
#[cfg(feature = "aws")]
pub mod lambda;
pub mod narrate;
pub mod serve;
mod signal;
pub mod worker;
