use async_trait::async_trait;
use bytes::Bytes;

use crate::domain::{Destination, PortError};

/// What a chat thread is told about a job.
#[derive(Debug, Clone)]
pub enum ChatResult {
    /// The narration, to upload into the thread so it plays inline.
    Narrated {
        /// The book's name (the first photo's file name).
        title: String,
        text: String,
        /// The text was cut at the narration limit.
        truncated: bool,
        audio: Bytes,
        /// File name for the upload, ending in `.mp3`.
        file_name: String,
        seconds: f32,
        /// A link to the MP3 that works outside the chat too.
        link: String,
    },
    /// Read, but the pages hold no text.
    NoText { title: String },
    /// The job ended without audio; `reason` is for the user.
    Failed { title: String, reason: String },
}

/// Delivers results into chat threads (Slack). Implemented by the front end.
///
/// Errors: `Rejected` when the destination cannot be reached for good (the
/// bot was removed from the channel, the token was revoked, the channel was
/// archived): the caller then falls back to email. `Unavailable` for what
/// may pass (rate limits that outlast the wait, server errors, network).
#[async_trait]
pub trait Messenger: Send + Sync {
    async fn deliver(&self, to: &Destination, result: &ChatResult) -> Result<(), PortError>;
}
