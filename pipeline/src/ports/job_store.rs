use async_trait::async_trait;

use crate::domain::{ContentId, Destination, Job, JobId, PageReading, PortError};

/// Most recipients one job takes; later submissions of the same pages start
/// a new job (which reuses the earlier reading and narration).
pub const MAX_RECIPIENTS: usize = 100;

/// What happened to a submission.
#[derive(Debug, Clone)]
pub enum Submitted {
    /// A new job was stored; its pages must be queued for reading.
    Created(Job),
    /// The same pages and voice (or the same request) were already
    /// submitted: this is that job. `recipients` are the indexes of the
    /// destinations added to it (none for a repeated request).
    Existing { job: Job, recipients: Vec<usize> },
}

/// A reusable result written together with a job update.
#[derive(Debug, Clone, Copy)]
pub enum Reusable<'a> {
    /// The reading of a page, by pixel hash.
    Page(&'a ContentId, &'a PageReading),
    /// A narration, by narration key.
    Narration(&'a ContentId, &'a crate::domain::AudioRef),
}

/// Keeps jobs and the reusable results of earlier work.
///
/// Deduplication is race-free: `submit` claims the job's content key with a
/// conditional write, so two concurrent submissions of the same pages end
/// in one job, never two.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Stores `job` with `destinations` as its recipients. A job already
    /// made for the same request (`job.request`) is returned as it is.
    /// Otherwise, if a job with the same content key exists that has not
    /// failed, the destinations are added to that job instead.
    /// A failed job's key is taken over by the new job, so sending a page
    /// again retries it; so is the key of a job that already has
    /// [`MAX_RECIPIENTS`] recipients, which keeps every record small.
    async fn submit(&self, job: Job, destinations: Vec<Destination>) -> Result<Submitted, PortError>;

    async fn get(&self, id: &JobId) -> Result<Option<Job>, PortError>;

    /// Writes `job` if the stored copy still has `job.version`; the stored
    /// version becomes `job.version + 1`, which is returned. A stale copy
    /// gets `PortError::Conflict`.
    async fn save(&self, job: &Job) -> Result<u64, PortError>;

    /// [`save`](Self::save), also remembering `result` for reuse. A store
    /// that can do both in one request does (a DynamoDB transaction), and
    /// then the result is written only with the job, replacing an earlier
    /// result under the same key (the same key gives an equivalent result).
    async fn save_with(&self, job: &Job, result: Reusable<'_>) -> Result<u64, PortError> {
        match result {
            Reusable::Page(pixels, reading) => self.put_page_reading(pixels, reading).await?,
            Reusable::Narration(key, audio) => self.put_narration(key, audio).await?,
        }
        self.save(job).await
    }

    /// Jobs not finished whose last update is older than `before_ms`: the
    /// candidates for re-queueing after a crash or a lost message.
    async fn stalled(&self, before_ms: i64, limit: usize) -> Result<Vec<Job>, PortError>;

    /// The reading of a page seen before, by pixel hash.
    async fn page_reading(&self, pixels: &ContentId) -> Result<Option<PageReading>, PortError>;

    /// Remembers a page's reading (first writer wins).
    async fn put_page_reading(&self, pixels: &ContentId, reading: &PageReading) -> Result<(), PortError>;

    /// A narration made before, by narration key (text, voice, engine).
    async fn narration(&self, key: &ContentId) -> Result<Option<crate::domain::AudioRef>, PortError>;

    async fn put_narration(&self, key: &ContentId, audio: &crate::domain::AudioRef) -> Result<(), PortError>;

    /// Claims a key for good: true for the first caller, false for every
    /// later one. Used to handle each inbound request once, however often it
    /// is delivered.
    async fn claim(&self, key: &str) -> Result<bool, PortError>;

    /// Counts of jobs per status, for health and metrics.
    async fn counts(&self) -> Result<Vec<(String, u64)>, PortError>;
}
