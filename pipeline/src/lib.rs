//! Storytime's pipeline: the domain (jobs, pages, messages), the ports it
//! needs from the outside world, the stages that turn a photographed page
//! into narration, the worker runtime that drives them, and the adapters
//! that run it on one machine or on AWS.
//!
//! This crate knows nothing about Slack or HTTP; the front end (`bot`)
//! depends on it, never the other way round. Which adapter backs which
//! port is decided by the front end's composition root, from [`settings`].

pub mod adapters;
pub mod audio;
#[cfg(any(test, feature = "test-support"))]
pub mod contract;
pub mod domain;
pub mod image;
pub mod links;
pub mod memory;
pub mod metrics;
pub mod ports;
pub mod rate;
pub mod runtime;
pub mod settings;
pub mod setup;
pub mod stages;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;

pub use domain::*;
pub use stages::Pipeline;
