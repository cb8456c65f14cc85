//! Storytime's front end: the REST API (compatible with the original
//! service), signed media links, health and metrics, and the commands of the
//! `storytime` binary. The pipeline behind it lives in `storytime-pipeline`.

pub mod cli;
pub mod error;
pub mod routes;
pub mod slack;
pub mod state;
pub mod telemetry;

pub use routes::router;
pub use state::AppState;
