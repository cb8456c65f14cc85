//! Storytime's front end: the REST API (compatible with the original
//! service), the Slack app, signed media links, health and metrics, the
//! commands of the `storytime` binary, and the composition root that
//! builds a process from its settings. The pipeline behind it lives in
//! `storytime-pipeline`.

pub mod app;
pub mod cli;
pub mod error;
pub mod health;
pub mod jwt;
pub mod listener;
pub mod routes;
pub mod secrets;
pub mod settings;
pub mod slack;
pub mod state;
pub mod telemetry;

pub use routes::router;
pub use state::AppState;
