//! The deliver stage: hand a finished (or failed) job to one recipient.

use super::Pipeline;
use crate::domain::{DeliveryState, Destination, Job, JobId, JobStatus, StageError, now_ms};
use crate::ports::Email;

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
                Some(recipient.destination.clone())
            })
            .await?;
        let Some((job, destination)) = taken else {
            return Ok(());
        };
        let outcome = match &destination {
            Destination::Email { to } => {
                let email = self.compose_email(&job, to.clone()).await?;
                self.notifier.notify(&email).await
            }
        };
        let state = match outcome {
            Ok(()) => DeliveryState::Delivered { at_ms: now_ms() },
            Err(e) if e.is_retryable() => {
                self.set_delivery_state(job_id, index, DeliveryState::Pending).await?;
                return Err(StageError::Retry(e.to_string()));
            }
            Err(e) => {
                tracing::error!(job = %job_id, recipient = index, error = %e, "delivery failed for good");
                DeliveryState::Failed { reason: e.to_string() }
            }
        };
        self.set_delivery_state(job_id, index, state).await
    }

    /// Records how delivery to one recipient ended.
    pub async fn set_delivery_state(
        &self,
        job_id: &JobId,
        index: usize,
        state: DeliveryState,
    ) -> Result<(), StageError> {
        self.update_job(job_id, |job| {
            let r = job.recipients.get_mut(index)?;
            r.state = state.clone();
            Some(())
        })
        .await
        .map(|_| ())
    }

    /// The email for a job: the text and links when done, the reason
    /// otherwise.
    pub async fn compose_email(&self, job: &Job, to: Option<String>) -> Result<Email, StageError> {
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
                    job.failure
                        .as_ref()
                        .map(|f| f.message.as_str())
                        .unwrap_or("Something went wrong."),
                    links.original
                ),
            ),
        };
        Ok(Email {
            to,
            subject: one_line(&subject, 99),
            body,
        })
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
