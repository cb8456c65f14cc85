//! The HTTP routes: the original REST API (`/upload`, `/retrieve`,
//! `/bulk`), signed media links, health and metrics.

mod access;
mod bulk;
mod health;
mod media;
pub(crate) mod request;
mod retrieve;
mod router;
mod upload;
mod view;

#[cfg(test)]
mod tests;

pub use router::router;
