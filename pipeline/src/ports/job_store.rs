use async_trait::async_trait;

use crate::domain::{ContentId, Destination, Job, JobId, PageReading, PortError};

/// What happened to a submission.
#[derive(Debug, Clone)]
pub enum Submitted {
    /// A new job was stored; its pages must be queued for reading.
    Created(Job),
    /// The same pages and voice were already submitted: this is that job.
    /// `recipient` is the index of the destination added to it, if one was
    /// given.
    Existing { job: Job, recipient: Option<usize> },
}

/// Keeps jobs and the reusable results of earlier work.
///
/// Deduplication is race-free: `submit` claims the job's content key with a
/// conditional write, so two concurrent submissions of the same pages end
/// in one job, never two.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Stores `job`, unless a job with the same content key exists that has
    /// not failed: then `destination` (if any) is added to that job instead.
    /// A failed job's key is taken over by the new job, so sending a page
    /// again retries it.
    async fn submit(&self, job: Job, destination: Option<Destination>) -> Result<Submitted, PortError>;

    async fn get(&self, id: &JobId) -> Result<Option<Job>, PortError>;

    /// Writes `job` if the stored copy still has `job.version`; the stored
    /// version becomes `job.version + 1`, which is returned. A stale copy
    /// gets `PortError::Conflict`.
    async fn save(&self, job: &Job) -> Result<u64, PortError>;

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

    /// Counts of jobs per status, for health and metrics.
    async fn counts(&self) -> Result<Vec<(String, u64)>, PortError>;
}
