//! Adapters: the ports implemented on real infrastructure.

pub mod aws;
pub mod local;
