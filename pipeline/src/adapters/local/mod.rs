//! The embedded default: everything on one machine with no cloud account.
//! Files under the data directory, one SQLite database for jobs and queues,
//! Tesseract and espeak-ng as engines, and an outbox folder for email.

mod db;
mod espeak;
mod fs_blobs;
mod journal;
mod media;
mod outbox;
mod process;
mod sqlite_jobs;
mod sqlite_queue;
mod tesseract;

pub use db::Db;
pub use espeak::EspeakNarrator;
pub use fs_blobs::FsBlobStore;
pub use media::{LinkError, MediaSigner, percent_encode};
pub use outbox::OutboxNotifier;
pub use sqlite_jobs::{SqliteJobStore, SqlitePreferences};
pub use sqlite_queue::SqliteQueue;
pub use tesseract::TesseractReader;
