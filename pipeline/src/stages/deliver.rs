//! The deliver stage: hand a finished (or failed) job to one recipient. A
//! chat thread that cannot be reached for good gets the result by email
//! instead; whatever happens is recorded on the job.

use super::Pipeline;
use crate::domain::{DeliveryState, Destination, Job, JobId, JobStatus, PortError, StageError, now_ms};
use crate::metrics;
use crate::ports::{ChatResult, Delivery, Email};

impl Pipeline {
    pub(super) async fn deliver(&self, job_id: &JobId, index: usize) -> Result<(), StageError> {
        let now = now_ms();
        let stall = self.config.stall_after.as_millis() as i64;
        // Take the delivery on, so a second copy of this message does not
        // send the result twice. A taker that died long ago is replaced.
        let taken = self
            .update_job(job_id, |job| {
                if !job.status.is_finished() {
                    return None;
                }
                let recipient = job.recipients.get_mut(index)?;
                match recipient.state {
                    DeliveryState::Pending => {}
                    DeliveryState::Sending { since_ms } if now - since_ms >= stall => {}
                    _ => return None,
                }
                recipient.state = DeliveryState::Sending { since_ms: now };
                recipient.tries += 1;
                Some((recipient.destination.clone(), recipient.tries))
            })
            .await?;
        let Some((job, (destination, tries))) = taken else {
            return Ok(());
        };
        let outcome = match &destination {
            Destination::Email { to } => self.email(&job, to.clone()).await,
            Destination::Chat { .. } => {
                let delivery = Delivery {
                    key: format!("storytime-{}-{index}", job.id),
                    repeat: tries > 1,
                    job: job.id.to_string(),
                };
                self.to_chat(&job, &destination, &delivery).await
            }
        };
        let state = match outcome {
            Ok(()) => DeliveryState::Delivered { at_ms: now_ms() },
            Err(e) if e.is_retryable() => {
                self.set_delivery_state(job_id, index, DeliveryState::Pending).await?;
                return Err(StageError::Retry(e));
            }
            Err(e) => self.fall_back(&job, &destination, &e.to_string()).await,
        };
        self.set_delivery_state(job_id, index, state).await
    }

    /// After a delivery failed for good (or its retries ran out): email the
    /// result instead when the destination was a chat, and say what
    /// happened. Returns the state to record.
    pub async fn fall_back(&self, job: &Job, destination: &Destination, reason: &str) -> DeliveryState {
        match destination {
            Destination::Chat { fallback_email, .. } => {
                tracing::warn!(job = %job.id, reason, "chat delivery failed for good; emailing the result instead");
                match self.email(job, fallback_email.clone()).await {
                    Ok(()) => DeliveryState::FellBack { reason: reason.to_owned(), at_ms: now_ms() },
                    Err(e) => {
                        tracing::error!(job = %job.id, error = %e, "the fallback email failed too");
                        DeliveryState::Failed { reason: format!("{reason}; the fallback email failed: {e}") }
                    }
                }
            }
            Destination::Email { .. } => {
                tracing::error!(job = %job.id, reason, "email delivery failed for good");
                DeliveryState::Failed { reason: reason.to_owned() }
            }
        }
    }

    /// Gives up on one delivery after its retries ran out.
    pub async fn give_up_delivery(&self, job_id: &JobId, index: usize, reason: &str) -> Result<(), StageError> {
        let Some(job) = self.jobs.get(job_id).await? else {
            return Ok(());
        };
        let Some(recipient) = job.recipients.get(index) else {
            return Ok(());
        };
        let state = self.fall_back(&job, &recipient.destination, reason).await;
        self.set_delivery_state(job_id, index, state).await
    }

    /// Records how delivery to one recipient ended. The job's last
    /// delivery ends its time in the pipeline.
    pub async fn set_delivery_state(
        &self,
        job_id: &JobId,
        index: usize,
        state: DeliveryState,
    ) -> Result<(), StageError> {
        let updated = self
            .update_job(job_id, |job| {
                let had_pending = !job.pending_recipients().is_empty();
                let r = job.recipients.get_mut(index)?;
                r.state = state.clone();
                Some(had_pending && job.pending_recipients().is_empty())
            })
            .await?;
        if let Some((job, true)) = updated {
            metrics::job_delivered(job.status.as_str(), job.age(now_ms()));
        }
        Ok(())
    }

    async fn email(&self, job: &Job, to: Option<String>) -> Result<(), PortError> {
        let email = self.compose_email(job, to).await?;
        self.notifier.notify(&email).await
    }

    async fn to_chat(&self, job: &Job, destination: &Destination, delivery: &Delivery) -> Result<(), PortError> {
        let Some(messenger) = &self.messenger else {
            return Err(PortError::rejected("chat delivery", "chat is not configured in this process"));
        };
        let title = job.name.clone();
        let result = match (&job.status, &job.audio) {
            (JobStatus::Done, Some(audio)) => {
                let links = self.links(job).await?;
                ChatResult::Narrated {
                    title,
                    text: job.text.clone().unwrap_or_default(),
                    truncated: job.truncated,
                    audio: self.blobs.get(&audio.key).await?,
                    file_name: format!("{}.mp3", super::pipeline::stem(&job.name)),
                    seconds: audio.seconds,
                    link: links.audio.unwrap_or_default(),
                }
            }
            (JobStatus::NoText, _) => ChatResult::NoText { title },
            _ => ChatResult::Failed {
                title,
                reason: job
                    .failure
                    .as_ref()
                    .map(|f| f.message.clone())
                    .unwrap_or_else(|| "Something went wrong.".into()),
            },
        };
        messenger.deliver(destination, &result, delivery).await
    }

    /// The email for a job: the text and links when done, the reason
    /// otherwise.
    pub async fn compose_email(&self, job: &Job, to: Option<String>) -> Result<Email, PortError> {
        let links = self.links(job).await?;
        let name = &job.name;
        let (subject, body) = match job.status {
            JobStatus::Done => (
                format!("Your story is ready: {name}"),
                format!(
                    "Storytime read \"{name}\" aloud.\n\nListen: {}\nOriginal photo: {}\n\n{}\n",
                    links.audio.as_deref().unwrap_or("(no audio)"),
                    links.original,
                    job.text.as_deref().unwrap_or_default()
                ),
            ),
            JobStatus::NoText => (
                format!("No text found on {name}"),
                format!(
                    "Storytime found no text to read on \"{name}\".\nTry a closer, sharper photo of the page, in good light.\n\nOriginal photo: {}\n",
                    links.original
                ),
            ),
            _ => (
                format!("We could not read {name}"),
                format!(
                    "Storytime could not read \"{name}\" aloud.\n\n{}\n\nOriginal photo: {}\n",
                    job.failure.as_ref().map(|f| f.message.as_str()).unwrap_or("Something went wrong."),
                    links.original
                ),
            ),
        };
        Ok(Email { to, subject: one_line(&subject, 99), body })
    }
}

/// A subject line: no control characters, at most `max` characters.
fn one_line(s: &str, max: usize) -> String {
    let clean: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if clean.chars().count() <= max {
        return clean;
    }
    let mut cut: String = clean.chars().take(max - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn subjects_are_one_short_line() {
        assert_eq!(one_line("a\r\nb", 99), "a  b");
        let long = "x".repeat(150);
        assert_eq!(one_line(&long, 99).chars().count(), 99);
    }
}
