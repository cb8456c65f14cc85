//! Intake, run by the front end on every submission: check each photo
//! without decoding it, store it once per content, create or join the job,
//! and queue the pages for reading.

use std::time::Duration;

use bytes::Bytes;

use super::Pipeline;
use crate::domain::{BlobKey, Destination, Job, JobStatus, Page, PortError, Reuse, Speed, StageMessage, now_ms};
use crate::image::{Cleaning, ImageInfo, ImageRejection, clean, cleaning, decode_cost, inspect, stored_kind};
use crate::ports::Submitted;

/// One photo as received.
#[derive(Debug, Clone)]
pub struct Upload {
    pub bytes: Bytes,
    /// The file name the sender gave, if any.
    pub name: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SubmitRequest {
    /// The pages of one book, in reading order.
    pub pages: Vec<Upload>,
    pub voice: Option<String>,
    /// The reading speed; `None` is the voice's own pace.
    pub speed: Option<Speed>,
    /// How much earlier work on the same pages may be reused.
    pub reuse: Reuse,
    /// Where to send the result besides keeping it retrievable.
    pub destinations: Vec<Destination>,
    /// The front-end request this is (e.g. one Slack message): submitting
    /// it again yields the same job.
    pub request_key: Option<String>,
    /// Who sent it (an API key's digest, an address, a chat user): the
    /// same pages join an earlier job only if the same owner sent them, so
    /// nobody learns of another uploader's job, name or time.
    pub owner: String,
}

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("{reason}")]
    Rejected { page: usize, reason: ImageRejection },
    #[error("a book holds at most {max} pages; this one has {count}")]
    TooManyPages { count: usize, max: usize },
    #[error("no photo was sent")]
    NoPages,
    /// A new narration was asked of a book whose pages are not read yet.
    #[error("the book is still being read")]
    NotRead,
    /// Pictures being decoded fill the memory budget: try again shortly.
    #[error("Storytime is busy with other large pictures; try again in {} seconds", retry_after.as_secs())]
    Busy { retry_after: Duration },
    #[error(transparent)]
    Unavailable(#[from] PortError),
}

/// A new narration of a book already read: [`Pipeline::retell`].
#[derive(Debug, Clone)]
pub struct Retell {
    pub source: crate::domain::JobId,
    /// `None` keeps the book's voice.
    pub voice: Option<String>,
    pub speed: Option<Speed>,
    pub destinations: Vec<Destination>,
    pub request_key: Option<String>,
    pub owner: String,
}

/// How long an upload that must decode its picture waits for its share of
/// the memory budget before it is answered busy.
const MEMORY_WAIT: Duration = Duration::from_secs(10);

enum CleanError {
    Rejected(ImageRejection),
    Busy,
    Stopped(PortError),
}

/// The job a submission ended in.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub job: Job,
    /// False when the same pages had been submitted before and this is
    /// that earlier job.
    pub created: bool,
}

impl Pipeline {
    pub async fn submit(&self, request: SubmitRequest) -> Result<Accepted, IntakeError> {
        let count = request.pages.len();
        if count == 0 {
            return Err(IntakeError::NoPages);
        }
        if count > self.config.limits.max_pages {
            return Err(IntakeError::TooManyPages { count, max: self.config.limits.max_pages });
        }
        let mut pages = Vec::with_capacity(count);
        for (index, upload) in request.pages.into_iter().enumerate() {
            let limits = self.config.limits.image;
            let bytes = upload.bytes.clone();
            // Hashing a 2 MB photo takes a few milliseconds: keep it off the
            // async threads that answer other requests.
            let info = tokio::task::spawn_blocking(move || inspect(&bytes, &limits))
                .await
                .map_err(|e| PortError::unavailable("intake", e))?
                .map_err(|reason| IntakeError::Rejected { page: index, reason })?;
            // Stored without metadata: one copy per picture, whoever sent it.
            let cleaning = cleaning(&upload.bytes, info.kind);
            let stored_kind = stored_kind(info.kind, cleaning);
            let original = BlobKey::original(&info.content_id, stored_kind.extension());
            if !self.blobs.exists(&original).await? {
                let cleaned = self.clean(upload.bytes, &info, cleaning).await.map_err(|e| match e {
                    CleanError::Rejected(reason) => IntakeError::Rejected { page: index, reason },
                    CleanError::Busy => IntakeError::Busy { retry_after: MEMORY_WAIT },
                    CleanError::Stopped(e) => IntakeError::Unavailable(e),
                })?;
                self.blobs.put(&original, cleaned).await?;
            }
            pages.push(Page {
                name: clean_name(upload.name.as_deref())
                    .unwrap_or_else(|| format!("page-{}.{}", &info.content_id.as_str()[..12], info.kind.extension())),
                content_id: info.content_id,
                original,
                content_type: stored_kind.mime().to_owned(),
                width: info.width,
                height: info.height,
                reading: None,
            });
        }
        let name = pages[0].name.clone();
        let voice = request.voice.or_else(|| self.config.default_voice.clone());
        let mut job =
            Job::new(pages, name, voice, request.reuse, now_ms()).with_speed(request.speed).owned_by(&request.owner);
        job.request = request.request_key;
        self.start(job, request.destinations).await
    }

    /// A new narration of a book already read (another voice or speed, or
    /// the same one for another destination): the pages are not stored or
    /// read again, and a narration made before is reused.
    pub async fn retell(&self, request: Retell) -> Result<Accepted, IntakeError> {
        let Some(source) = self.jobs.get(&request.source).await? else {
            return Err(IntakeError::Unavailable(PortError::not_found("the book")));
        };
        if !source.all_pages_read() {
            return Err(IntakeError::NotRead);
        }
        let voice = request.voice.or_else(|| source.voice.clone());
        let mut job = Job::new(source.pages.clone(), source.name.clone(), voice, Reuse::Results, now_ms())
            .with_speed(request.speed)
            .owned_by(&request.owner);
        job.status = JobStatus::Narrating;
        job.request = request.request_key;
        self.start(job, request.destinations).await
    }

    /// Stores a new job (or finds the one it repeats) and queues its work.
    async fn start(&self, job: Job, destinations: Vec<Destination>) -> Result<Accepted, IntakeError> {
        match self.jobs.submit(job, destinations).await? {
            Submitted::Created(job) => {
                tracing::info!(job = %job.id, pages = job.pages.len(), "job created");
                let work: Vec<StageMessage> = if job.all_pages_read() {
                    vec![StageMessage::narrate_of(&job)]
                } else {
                    (0..job.pages.len()).map(|page| StageMessage::read_of(&job, page)).collect()
                };
                // A failed send leaves the job for the stall sweep to re-queue.
                if let Err(e) = self.queue.send_many(&work).await {
                    tracing::error!(job = %job.id, error = %e, "could not queue the pages; the stall sweep will retry");
                }
                Ok(Accepted { job, created: true })
            }
            Submitted::Existing { job, recipients } => {
                tracing::info!(job = %job.id, status = job.status.as_str(), "same pages or request as an earlier job");
                crate::metrics::job_ended("duplicate");
                if job.status.is_finished() {
                    for recipient in recipients {
                        let message = StageMessage::Deliver { job: job.id.clone(), recipient };
                        self.queue.send(&message, Default::default()).await?;
                    }
                }
                Ok(Accepted { job, created: false })
            }
        }
    }
}

impl Pipeline {
    /// The bytes to store for an upload; decoding ones wait for their share
    /// of the memory budget.
    async fn clean(&self, bytes: Bytes, info: &ImageInfo, cleaning: Cleaning) -> Result<Bytes, CleanError> {
        let limits = self.config.limits.image;
        let _memory = match cleaning {
            Cleaning::Strip => None,
            Cleaning::Encode => {
                let cost = decode_cost(&bytes, info.width, info.height);
                Some(self.memory.reserve_within(cost, MEMORY_WAIT).await.ok_or(CleanError::Busy)?)
            }
        };
        let kind = info.kind;
        let cleaned = tokio::task::spawn_blocking(move || clean(&bytes, kind, &limits))
            .await
            .map_err(|e| CleanError::Stopped(PortError::unavailable("intake", e)))?
            .map_err(CleanError::Rejected)?;
        Ok(Bytes::from(cleaned.bytes))
    }
}

/// Keeps the last path component of a client-supplied name, without
/// control or hidden formatting characters, at most 200 characters.
fn clean_name(name: Option<&str>) -> Option<String> {
    let base = name?.rsplit(['/', '\\']).next()?;
    let clean: String = base.chars().filter(|c| !crate::domain::names::is_hidden(*c)).take(200).collect();
    let clean = clean.trim().trim_start_matches('.').to_owned();
    (!clean.is_empty()).then_some(clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_names_lose_paths_and_control_characters() {
        assert_eq!(clean_name(Some("../../etc/passwd")).as_deref(), Some("passwd"));
        assert_eq!(clean_name(Some("C:\\photos\\page 1.jpeg")).as_deref(), Some("page 1.jpeg"));
        assert_eq!(clean_name(Some("a\r\nb.png")).as_deref(), Some("ab.png"));
        assert_eq!(clean_name(Some("page\u{202E}gpj.exe")).as_deref(), Some("pagegpj.exe"));
        assert_eq!(clean_name(Some("..")), None);
        assert_eq!(clean_name(None), None);
    }
}
