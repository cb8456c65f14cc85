//! The embedded default: everything on one machine with no cloud account.
//! Files under the data directory, one SQLite database for jobs and queues,
//! Tesseract, Piper and espeak-ng as engines, and an outbox folder for email.

mod database;
mod espeak;
mod fs_blobs;
mod journal;
mod outbox;
mod piper;
mod process;
mod sqlite_jobs;
mod sqlite_queue;
mod storage;
mod tesseract;

pub use database::Database;
pub use espeak::EspeakNarrator;
pub use fs_blobs::FsBlobStore;
pub use outbox::OutboxNotifier;
pub use piper::{PIPER_VOICE, PiperNarrator, PiperSetup, piper_found};
pub use sqlite_jobs::{SqliteJobStore, SqlitePreferences};
pub use sqlite_queue::SqliteQueue;
pub use storage::{LocalStorage, media_key};
pub use tesseract::TesseractReader;
