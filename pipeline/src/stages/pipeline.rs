//! The pipeline: the ports the stages work through, the policy they apply,
//! and what every stage shares (job updates, links, the stall sweep).

use std::sync::Arc;
use std::time::Duration;

use crate::domain::{ErrorKind, Failure, Job, JobId, JobStatus, PortError, StageError, StageMessage, now_ms};
use crate::memory::MemoryBudget;
use crate::metrics;
use crate::ports::{BlobStore, JobStore, Messenger, Narrator, Notifier, Preferences, Queue, Reusable, TextReader};
use crate::rate::RateLimits;
use crate::settings::Limits;

/// Policy the stages apply, from settings.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    pub limits: Limits,
    /// No progress for this long means a message was lost: re-queue.
    pub stall_after: Duration,
    pub default_voice: Option<String>,
}

/// The adapters behind the pipeline's ports.
pub struct Ports {
    pub blobs: Arc<dyn BlobStore>,
    pub queue: Arc<dyn Queue>,
    pub jobs: Arc<dyn JobStore>,
    pub prefs: Arc<dyn Preferences>,
    pub reader: Arc<dyn TextReader>,
    pub narrator: Arc<dyn Narrator>,
    pub notifier: Arc<dyn Notifier>,
    /// Chat delivery, when a chat front end is configured. Without it, a
    /// chat destination falls back to email.
    pub messenger: Option<Arc<dyn Messenger>>,
}

/// The pipeline: its ports and policy.
pub struct Pipeline {
    pub blobs: Arc<dyn BlobStore>,
    pub queue: Arc<dyn Queue>,
    pub jobs: Arc<dyn JobStore>,
    pub reader: Arc<dyn TextReader>,
    pub narrator: Arc<dyn Narrator>,
    pub notifier: Arc<dyn Notifier>,
    pub prefs: Arc<dyn Preferences>,
    pub messenger: Option<Arc<dyn Messenger>>,
    pub config: PipelineConfig,
    /// Decoded pixels, on the upload path and in the readers.
    pub memory: MemoryBudget,
    /// Uploads, commands and mail per sender.
    pub rates: RateLimits,
}

/// Links to a job's files, fresh each time they are asked for.
#[derive(Debug, Clone, Default)]
pub struct Links {
    /// The first page's photo.
    pub original: String,
    /// The narration, once there is one.
    pub audio: Option<String>,
    /// Its word timings as WebVTT captions.
    pub captions: Option<String>,
}

impl Pipeline {
    pub fn new(ports: Ports, config: PipelineConfig) -> Self {
        let Ports { blobs, queue, jobs, prefs, reader, narrator, notifier, messenger } = ports;
        let memory = MemoryBudget::new(config.limits.memory_budget);
        let rates = RateLimits::new(&config.limits);
        Self { blobs, queue, jobs, reader, narrator, notifier, prefs, messenger, config, memory, rates }
    }

    /// Runs the stage a pipeline message belongs to. Inbound requests
    /// belong to the front end that recorded them (see `runtime::Handlers`).
    pub async fn handle(&self, message: &StageMessage) -> Result<(), StageError> {
        match message {
            StageMessage::Read { job, page, snapshot } => self.read(job, *page, snapshot.clone()).await,
            StageMessage::Narrate { job, snapshot } => self.narrate(job, snapshot.clone()).await,
            StageMessage::Deliver { job, recipient } => self.deliver(job, *recipient).await,
            StageMessage::Inbound { source, .. } => {
                Err(StageError::retry(format!("{source} requests"), "no inbound handler in this process"))
            }
        }
    }

    /// Ends a job as failed (unless it already finished) and lets its
    /// recipients know.
    pub async fn fail_job(&self, id: &JobId, failure: Failure) -> Result<(), StageError> {
        let now = now_ms();
        let failed =
            self.update_job(id, |job| (!job.status.is_finished()).then(|| job.fail(failure.clone(), now))).await?;
        if let Some((job, ())) = failed {
            tracing::error!(job = %id, reason = %failure.message, "job failed");
            self.job_finished(&job);
            self.enqueue_deliveries(&job).await?;
        }
        Ok(())
    }

    /// Counts a job that just ended; one with nobody to deliver to is also
    /// delivered, as far as its duration goes.
    pub(super) fn job_finished(&self, job: &Job) {
        metrics::job_ended(job.status.as_str());
        if job.recipients.is_empty() {
            metrics::job_delivered(job.status.as_str(), job.age(now_ms()));
        }
    }

    /// Records a transient error on the job, so a user polling it sees why
    /// it is taking long.
    pub async fn note_retry(&self, id: &JobId, error: &str) -> Result<(), StageError> {
        self.update_job(id, |job| (!job.status.is_finished()).then(|| job.last_error = Some(error.to_owned())))
            .await
            .map(|_| ())
    }

    /// Re-sends the messages of a job that has made no progress for the
    /// stall limit (a message was lost, or its worker died). Returns whether
    /// anything was re-queued. Safe to call from anywhere at any time:
    /// stages are idempotent, and the job's timestamp is moved first so
    /// concurrent callers re-queue once.
    pub async fn requeue_if_stalled(&self, job: &Job) -> Result<bool, StageError> {
        let now = now_ms();
        let stall = self.config.stall_after.as_millis() as i64;
        let is_stalled = |j: &Job| j.needs_attention() && j.idle_ms(now) >= stall;
        if !is_stalled(job) {
            return Ok(false);
        }
        let Some((job, ())) = self.update_job(&job.id, |j| is_stalled(j).then_some(())).await? else {
            return Ok(false);
        };
        tracing::warn!(job = %job.id, status = job.status.as_str(), "re-queueing a stalled job");
        match job.status {
            JobStatus::Queued | JobStatus::Reading => {
                let unread: Vec<usize> =
                    job.pages.iter().enumerate().filter(|(_, p)| p.reading.is_none()).map(|(i, _)| i).collect();
                if unread.is_empty() {
                    self.send(&StageMessage::narrate(job.id.clone())).await?;
                }
                for page in unread {
                    self.send(&StageMessage::read(job.id.clone(), page)).await?;
                }
            }
            JobStatus::Narrating => self.send(&StageMessage::narrate(job.id.clone())).await?,
            JobStatus::Done | JobStatus::NoText | JobStatus::Failed => self.enqueue_deliveries(&job).await?,
        }
        Ok(true)
    }

    /// Re-queues every stalled job; run periodically by the workers.
    pub async fn sweep_stalled(&self) -> Result<usize, StageError> {
        let cutoff = now_ms() - self.config.stall_after.as_millis() as i64;
        let mut count = 0;
        for job in self.jobs.stalled(cutoff, 100).await? {
            if self.requeue_if_stalled(&job).await? {
                count += 1;
            }
        }
        Ok(count)
    }

    /// Tells the job's chat recipients how far the work got (best effort:
    /// a failure is logged, the work goes on).
    pub async fn report(&self, job: &Job, step: crate::ports::Progress) {
        let Some(messenger) = &self.messenger else { return };
        for recipient in &job.recipients {
            if let crate::domain::Destination::Chat { status: Some(_), .. } = &recipient.destination
                && let Err(e) = messenger.progress(&recipient.destination, step).await
            {
                tracing::warn!(job = %job.id, error = %e, "could not show progress in the chat");
            }
        }
    }

    /// Fresh links to a job's photo and audio.
    pub async fn links(&self, job: &Job) -> Result<Links, PortError> {
        let ttl = self.config.limits.link_ttl;
        let mut links = Links::default();
        if let Some(page) = job.pages.first() {
            links.original = self.blobs.link(&page.original, ttl, &page.name).await?;
        }
        if let Some(audio) = &job.audio {
            let name = format!("{}.mp3", stem(&job.name));
            links.audio = Some(self.blobs.link(&audio.key, ttl, &name).await?);
            if let Some(captions) = &audio.captions {
                let name = format!("{}.vtt", stem(&job.name));
                links.captions = Some(self.blobs.link(captions, ttl, &name).await?);
            }
        }
        Ok(links)
    }

    /// The job a message is about: the copy it carries, or the stored job
    /// (`None`, logged, when there is no such job).
    pub(super) async fn job_for(
        &self,
        id: &JobId,
        snapshot: Option<crate::domain::Snapshot>,
        stage: &str,
    ) -> Result<Option<Job>, StageError> {
        if let Some(snapshot) = snapshot {
            return Ok(Some(snapshot.into_job()));
        }
        let job = self.jobs.get(id).await?;
        if job.is_none() {
            tracing::warn!(job = %id, stage, "no such job");
        }
        Ok(job)
    }

    pub(super) async fn send(&self, message: &StageMessage) -> Result<(), StageError> {
        self.queue.send(message, Duration::ZERO).await.map_err(StageError::from)
    }

    pub(super) async fn enqueue_deliveries(&self, job: &Job) -> Result<(), StageError> {
        for recipient in job.pending_recipients() {
            self.send(&StageMessage::Deliver { job: job.id.clone(), recipient }).await?;
        }
        Ok(())
    }

    /// Read-modify-write of a job with optimistic concurrency: `change` runs
    /// on the freshest copy and returns `None` to leave the job as it is.
    /// A write that loses a race is retried on the new copy.
    pub(super) async fn update_job<T>(
        &self,
        id: &JobId,
        change: impl FnMut(&mut Job) -> Option<T>,
    ) -> Result<Option<(Job, T)>, StageError> {
        self.update_job_from(id, None, None, change).await
    }

    /// [`update_job`](Self::update_job) starting from `copy` (a job read
    /// earlier, or carried by a message) instead of reading the job first,
    /// and remembering `result` with the write.
    pub(super) async fn update_job_from<T>(
        &self,
        id: &JobId,
        mut copy: Option<Job>,
        result: Option<Reusable<'_>>,
        mut change: impl FnMut(&mut Job) -> Option<T>,
    ) -> Result<Option<(Job, T)>, StageError> {
        for _ in 0..20 {
            let mut job = match copy.take() {
                Some(job) => job,
                None => match self.jobs.get(id).await? {
                    Some(job) => job,
                    None => return Ok(None),
                },
            };
            let Some(out) = change(&mut job) else {
                return Ok(None);
            };
            job.updated_ms = now_ms();
            let saved = match result {
                Some(result) => self.jobs.save_with(&job, result).await,
                None => self.jobs.save(&job).await,
            };
            match saved {
                Ok(version) => {
                    job.version = version;
                    return Ok(Some((job, out)));
                }
                Err(e) if e.kind() == ErrorKind::Conflict => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StageError::retry(format!("job {id}"), "it is being updated by too many others at once"))
    }
}

/// A file name without its extension.
pub(super) fn stem(name: &str) -> &str {
    match name.rsplit_once('.') {
        Some((s, _)) if !s.is_empty() => s,
        _ => name,
    }
}
