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
///
/// Delivery is idempotent: every post carries `delivery.key`, and when
/// `delivery.repeat` says an earlier attempt may have posted (the process
/// died mid-delivery, or an answer was lost), the messenger looks in the
/// thread for the key first and posts nothing if it is there.
#[async_trait]
pub trait Messenger: Send + Sync {
    async fn deliver(&self, to: &Destination, result: &ChatResult, delivery: &Delivery) -> Result<(), PortError>;

    /// Shows how far the work on a job got, where the destination has a
    /// place for it (a status line in the thread). A courtesy: the caller
    /// logs a failure and goes on.
    async fn progress(&self, _to: &Destination, _step: Progress) -> Result<(), PortError> {
        Ok(())
    }
}

/// A step of the work on a job, for [`Messenger::progress`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Page `page` (from 1) of `of` is being read.
    Reading { page: usize, of: usize },
    /// The text is being narrated.
    Narrating,
}

/// Which delivery this is: `key` names it in the thread (unique per job and
/// recipient); `repeat` is set when an earlier attempt may have posted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub key: String,
    pub repeat: bool,
    /// The job delivered, for what the message offers to do with it next.
    pub job: String,
}
