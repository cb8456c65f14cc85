//! Adapters: the ports implemented on real infrastructure, one family per
//! backend (`local`, `aws`), plus in-memory ones for tests.

#[cfg(feature = "aws")]
pub mod aws;
pub mod local;
#[cfg(any(test, feature = "test-support"))]
pub mod memory;
