//! The commands of the `storytime` binary.

pub mod doctor;
pub mod init;
pub mod narrate;
pub mod serve;
pub mod worker;
