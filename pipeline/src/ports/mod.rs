//! The ports: what the stages need from the outside world, as traits. Each
//! has a local adapter (files, SQLite, Tesseract, espeak-ng, an outbox) and
//! may have cloud ones; stages hold them as `Arc<dyn Port>` and never know
//! which is behind.
//!
//! Methods speak domain types and return [`PortError`], classified by the
//! adapter by kind. [`crate::contract`] holds the checks every adapter of
//! a port must pass.

mod blob_store;
mod inbound;
mod job_store;
mod messenger;
mod narrator;
mod notifier;
mod preferences;
mod queue;
mod text_reader;

pub use blob_store::{BlobRead, BlobStore, ByteRange};
pub use inbound::InboundHandler;
pub use job_store::{JobStore, MAX_RECIPIENTS, Reusable, Submitted};
pub use messenger::{ChatResult, Delivery, Messenger, Progress};
pub use narrator::{Narrator, Speech, Voice};
pub use notifier::{Email, Notifier};
pub use preferences::{PendingEmail, Preferences, UserPrefs};
pub use queue::{Queue, QueueDepth, Received};
pub use text_reader::{PageLayout, Reading, Script, TextReader};

pub use crate::domain::PortError;
