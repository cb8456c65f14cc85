//! The HTTP routes: the original REST API (`/upload`, `/retrieve`,
//! `/bulk`), the web page, signed media links, health and metrics.

mod access;
mod bulk;
mod form;
mod health;
mod media;
mod page;
pub(crate) mod request;
mod retrieve;
mod router;
mod upload;
mod uploads;
mod view;

#[cfg(test)]
mod tests;

pub use request::host_of;
pub use router::router;
