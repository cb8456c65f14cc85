//! The narrate stage: join the pages' text, pick the voice for its
//! language, synthesize it in chunks the narrator accepts, and store one
//! MP3, shared by every job with the same text and voice.

use bytes::Bytes;

use super::Pipeline;
use crate::audio::{self, Mp3};
use crate::domain::narration_text::{split_for_narration, truncate_at_sentence};
use crate::domain::{AudioRef, BlobKey, ContentId, Failure, JobId, JobStatus, Language, StageError, StageMessage};
use crate::ports::{Narrator, Voice};

impl Pipeline {
    pub(super) async fn narrate(&self, job_id: &JobId) -> Result<(), StageError> {
        let Some(job) = self.jobs.get(job_id).await? else {
            tracing::warn!(job = %job_id, "narrate: no such job");
            return Ok(());
        };
        match job.status {
            JobStatus::Failed => return Ok(()),
            // Finished before: a repeated message, or a crash before the
            // deliveries were queued. Queue whatever is still pending.
            JobStatus::Done | JobStatus::NoText => return self.enqueue_deliveries(&job).await,
            _ => {}
        }
        if !job.all_pages_read() {
            for (page, _) in job.pages.iter().enumerate().filter(|(_, p)| p.reading.is_none()) {
                self.send(&StageMessage::Read { job: job.id.clone(), page }).await?;
            }
            return Ok(());
        }
        let full: Vec<&str> = job
            .pages
            .iter()
            .filter_map(|p| p.reading.as_ref().map(|r| r.text.trim()))
            .filter(|t| !t.is_empty())
            .collect();
        if full.is_empty() {
            let finished =
                self.update_job(job_id, |j| (!j.status.is_finished()).then(|| j.status = JobStatus::NoText)).await?;
            if let Some((job, ())) = finished {
                tracing::info!(job = %job.id, "no text on the pages");
                self.job_finished(&job);
                self.enqueue_deliveries(&job).await?;
            }
            return Ok(());
        }
        let (text, truncated) = truncate_at_sentence(&full.join("\n"), self.config.limits.max_text_chars);
        let language = Language::detect(&text);
        let voice = self.narrator.choose_voice(job.voice.as_deref(), language);
        let key = ContentId::combine([self.narrator.engine(), voice.name.as_str(), text.as_str()]);

        let cached = match (job.fresh, self.jobs.narration(&key).await?) {
            (false, Some(audio)) if self.blobs.exists(&audio.key).await? => Some(audio),
            _ => None,
        };
        let audio = match cached {
            Some(audio) => {
                tracing::info!(job = %job_id, "reusing an earlier narration of the same text");
                audio
            }
            None => {
                let Mp3 { bytes, seconds } = synthesize_book(self.narrator.as_ref(), &text, &voice).await?;
                let audio = AudioRef {
                    key: BlobKey::audio(&key),
                    seconds,
                    voice: voice.name.clone(),
                    bytes: bytes.len() as u64,
                };
                self.blobs.put(&audio.key, Bytes::from(bytes)).await?;
                self.jobs.put_narration(&key, &audio).await?;
                audio
            }
        };
        let finished = self
            .update_job(job_id, |j| {
                if j.status.is_finished() {
                    return None;
                }
                j.text = Some(text.clone());
                j.language = Some(language);
                j.truncated = truncated;
                j.audio = Some(audio.clone());
                j.status = JobStatus::Done;
                j.last_error = None;
                Some(())
            })
            .await?;
        if let Some((job, ())) = finished {
            tracing::info!(job = %job.id, seconds = audio.seconds, voice = %audio.voice, "narration ready");
            self.job_finished(&job);
            self.enqueue_deliveries(&job).await?;
        }
        Ok(())
    }
}

/// Synthesizes a whole text with a narrator into one MP3, splitting it
/// into chunks the narrator accepts. Shared by the narrate stage and
/// `storytime narrate`.
pub async fn synthesize_book(narrator: &dyn Narrator, text: &str, voice: &Voice) -> Result<Mp3, StageError> {
    let mut speech = Vec::new();
    for chunk in split_for_narration(text, narrator.max_chunk_chars()) {
        speech.push(narrator.synthesize(&chunk, voice).await?);
    }
    if speech.is_empty() {
        return Err(StageError::Permanent(Failure::new("no_text", "There is no text to narrate.")));
    }
    tokio::task::spawn_blocking(move || audio::join(speech))
        .await
        .map_err(|e| StageError::retry("encoding", format!("it stopped: {e}")))?
        .map_err(|e| StageError::Permanent(Failure::internal(format!("the audio could not be encoded ({e})"))))
}
