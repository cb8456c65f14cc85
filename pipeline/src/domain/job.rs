//! A job: one book (one or more pages) to read and narrate, and the people
//! to deliver it to.

use serde::{Deserialize, Serialize};

use super::timings::WordTiming;
use super::{BlobKey, ContentId, Failure, JobId, Language, Speed};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Accepted; waiting for the reader.
    Queued,
    /// At least one page is being read.
    Reading,
    /// All pages read; waiting for or in narration.
    Narrating,
    /// Text and audio are ready.
    Done,
    /// Finished normally, but the pages hold no text to narrate.
    NoText,
    /// Ended without audio; `Job::failure` says why.
    Failed,
}

impl JobStatus {
    /// No more stage work will happen (deliveries may still be pending).
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Done | Self::NoText | Self::Failed)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Reading => "reading",
            Self::Narrating => "narrating",
            Self::Done => "done",
            Self::NoText => "no_text",
            Self::Failed => "failed",
        }
    }
}

/// One photographed page of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page {
    /// Identity of the image content (metadata ignored).
    pub content_id: ContentId,
    /// The photo as uploaded.
    pub original: BlobKey,
    pub content_type: String,
    /// The file name the user gave, if any.
    pub name: String,
    pub width: u32,
    pub height: u32,
    /// Filled in by the read stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reading: Option<PageReading>,
}

/// What the read stage found on a page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PageReading {
    /// The page text in reading order; empty when the page has none.
    pub text: String,
    pub language: Language,
    /// Clockwise degrees the stored pixels were turned before reading.
    pub rotation: u16,
    /// The reader's mean word confidence, 0–100.
    pub confidence: f32,
    /// The reader's raw answer, kept in the blob store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<BlobKey>,
}

/// The narration of a job's text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioRef {
    pub key: BlobKey,
    pub seconds: f32,
    pub voice: String,
    pub bytes: u64,
    /// When each word of the text is spoken.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub words: Vec<WordTiming>,
    /// The same timings as WebVTT captions, beside the MP3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub captions: Option<BlobKey>,
}

/// Where a finished job goes, besides being retrievable by id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Destination {
    /// An email through the notifier; `to: None` means the service's default
    /// recipients (the SNS topic's subscribers, or the configured address).
    Email { to: Option<String> },
    /// A reply in a chat thread (Slack): the audio goes into the thread of
    /// the message the photo came in. If that fails for good, the result is
    /// emailed to `fallback_email` (or the default recipients).
    Chat {
        workspace: String,
        channel: String,
        /// The thread to reply in (the parent message's timestamp).
        thread: String,
        /// The message the photos came in, for progress reactions.
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fallback_email: Option<String>,
        /// A message in the thread that shows progress and, once the
        /// result is in, what can be done with it next.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<String>,
    },
}

/// How far delivery to one recipient got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum DeliveryState {
    Pending,
    /// A deliverer took it on; another copy of the message leaves it alone
    /// unless this is older than the stall limit.
    Sending {
        since_ms: i64,
    },
    Delivered {
        at_ms: i64,
    },
    /// The primary channel failed for good; the result went by email.
    FellBack {
        reason: String,
        at_ms: i64,
    },
    /// Nothing could be delivered; the result stays retrievable by id.
    Failed {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    pub destination: Destination,
    pub state: DeliveryState,
    /// Deliveries taken on so far; past the first, an earlier one may have
    /// reached the destination before its outcome was recorded.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tries: u32,
}

/// How much earlier work a new submission may reuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reuse {
    /// The same pages and voice join the earlier job (the original API's
    /// duplication check): one job, one reading, one narration.
    SameJob,
    /// A job of its own (for its own thread), but earlier readings of the
    /// same pixels and narrations of the same text are reused.
    Results,
    /// Everything is done afresh (duplication check turned off).
    Nothing,
}

/// A unit of work: one book, read once, narrated once, delivered to each of
/// its recipients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: JobId,
    /// Creation time in epoch seconds, as a string: the original API's sort
    /// key, which clients send back with the id.
    pub timestamp: String,
    /// A name for the book: the first page's file name by default.
    pub name: String,
    /// The deduplication key: same pages and voice give the same key. `None`
    /// when the submitter turned the duplication check off.
    pub content_key: Option<ContentId>,
    pub pages: Vec<Page>,
    /// The voice asked for, if any; otherwise the narrator picks one for the
    /// page's language.
    pub voice: Option<String>,
    /// The reading speed asked for; `None` reads at the voice's own pace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed: Option<Speed>,
    /// Skip every reuse of earlier results (duplication check off).
    pub fresh: bool,
    /// The front-end request this job was made for (e.g. one Slack message):
    /// submitting the same request again yields this job, not a second one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    pub status: JobStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// The last transient error, shown while the job is being retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<Language>,
    /// Set when the text was cut to the narration limit.
    #[serde(default)]
    pub truncated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<AudioRef>,
    pub recipients: Vec<Recipient>,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// Optimistic-concurrency counter: every stored update increments it, and
    /// a write based on a stale copy is refused.
    pub version: u64,
}

impl Job {
    pub fn new(pages: Vec<Page>, name: String, voice: Option<String>, reuse: Reuse, now_ms: i64) -> Self {
        let content_key = (reuse == Reuse::SameJob).then(|| {
            let voice_part = voice.clone().unwrap_or_default();
            ContentId::combine(pages.iter().map(|p| p.content_id.as_str()).chain([voice_part.as_str()]))
        });
        Self {
            id: JobId::new(),
            timestamp: (now_ms / 1000).to_string(),
            name,
            content_key,
            pages,
            voice,
            speed: None,
            fresh: reuse == Reuse::Nothing,
            request: None,
            status: JobStatus::Queued,
            failure: None,
            last_error: None,
            text: None,
            language: None,
            truncated: false,
            audio: None,
            recipients: Vec::new(),
            created_ms: now_ms,
            updated_ms: now_ms,
            version: 0,
        }
    }

    /// Reads the job at `speed`; a speed other than normal is part of the
    /// deduplication key, so it never joins a job read at another pace.
    pub fn with_speed(mut self, speed: Option<Speed>) -> Self {
        let speed = speed.filter(|s| !s.is_normal());
        if let (Some(speed), Some(key)) = (speed, &self.content_key) {
            self.content_key = Some(ContentId::combine([key.as_str(), "speed", &speed.to_string()]));
        }
        self.speed = speed;
        self
    }

    /// Only the same owner's submissions join this job: the owner is part
    /// of the deduplication key.
    pub fn owned_by(mut self, owner: &str) -> Self {
        if let Some(key) = &self.content_key {
            self.content_key = Some(ContentId::combine([key.as_str(), "owner", owner]));
        }
        self
    }

    pub fn all_pages_read(&self) -> bool {
        self.pages.iter().all(|p| p.reading.is_some())
    }

    /// Adds a recipient and returns its index. Every request is its own
    /// recipient, even to the same destination: two uploads asking for an
    /// email get two emails, as in the original API. (Retries of one
    /// request are filtered before they get here.)
    pub fn add_recipient(&mut self, destination: Destination) -> usize {
        self.recipients.push(Recipient { destination, state: DeliveryState::Pending, tries: 0 });
        self.recipients.len() - 1
    }

    /// Indexes of recipients still waiting for a delivery.
    pub fn pending_recipients(&self) -> Vec<usize> {
        self.recipients
            .iter()
            .enumerate()
            .filter(|(_, r)| matches!(r.state, DeliveryState::Pending | DeliveryState::Sending { .. }))
            .map(|(i, _)| i)
            .collect()
    }

    /// Work remains: stages to run or deliveries to make. Such a job that
    /// has not moved for a while has lost its message and is re-queued.
    pub fn needs_attention(&self) -> bool {
        !self.status.is_finished() || !self.pending_recipients().is_empty()
    }

    /// How long ago the job was created.
    pub fn age(&self, now_ms: i64) -> std::time::Duration {
        std::time::Duration::from_millis((now_ms - self.created_ms).max(0) as u64)
    }

    pub fn fail(&mut self, failure: Failure, now_ms: i64) {
        self.status = JobStatus::Failed;
        self.failure = Some(failure);
        self.updated_ms = now_ms;
    }

    /// Seconds since the last recorded progress.
    pub fn idle_ms(&self, now_ms: i64) -> i64 {
        now_ms - self.updated_ms
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(bytes: &[u8]) -> Page {
        let content_id = ContentId::of(bytes);
        Page {
            original: BlobKey::original(&content_id, "png"),
            content_id,
            content_type: "image/png".into(),
            name: "p.png".into(),
            width: 10,
            height: 10,
            reading: None,
        }
    }

    #[test]
    fn the_content_key_depends_on_pages_order_and_voice() {
        let a = Job::new(vec![page(b"1"), page(b"2")], "b".into(), None, Reuse::SameJob, 0);
        let b = Job::new(vec![page(b"1"), page(b"2")], "b".into(), None, Reuse::SameJob, 0);
        let swapped = Job::new(vec![page(b"2"), page(b"1")], "b".into(), None, Reuse::SameJob, 0);
        let voiced = Job::new(vec![page(b"1"), page(b"2")], "b".into(), Some("en-gb".into()), Reuse::SameJob, 0);
        assert_eq!(a.content_key, b.content_key);
        assert_ne!(a.content_key, swapped.content_key);
        assert_ne!(a.content_key, voiced.content_key);
        assert_ne!(a.id, b.id);
    }

    #[test]
    fn without_duplication_check_a_job_has_no_key_and_works_fresh() {
        let j = Job::new(vec![page(b"1")], "b".into(), None, Reuse::Nothing, 5_000);
        assert!(j.content_key.is_none());
        assert!(j.fresh);
        assert_eq!(j.timestamp, "5");
    }

    #[test]
    fn each_request_is_a_recipient_of_its_own() {
        let mut j = Job::new(vec![page(b"1")], "b".into(), None, Reuse::SameJob, 0);
        let a = j.add_recipient(Destination::Email { to: None });
        let b = j.add_recipient(Destination::Email { to: None });
        assert_eq!((a, b), (0, 1));
        j.recipients[0].state = DeliveryState::Delivered { at_ms: 1 };
        assert_eq!(j.pending_recipients(), vec![1]);
        assert!(j.needs_attention());
    }
}
