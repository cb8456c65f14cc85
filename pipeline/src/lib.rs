//! Storytime's pipeline: the domain (jobs, pages, messages), the ports it
//! needs from the outside world, the four stages that turn a photographed
//! page into narration, the worker runtime that drives them, and the
//! adapters that run it all on one machine.
//!
//! This crate knows nothing about Slack or HTTP; the front end (`bot`)
//! depends on it, never the other way round.

pub mod adapters;
pub mod audio;
pub mod domain;
pub mod image;
pub mod ports;
pub mod priority;
pub mod runtime;
pub mod settings;
pub mod stages;
pub mod wiring;

pub use domain::*;
pub use stages::Pipeline;
