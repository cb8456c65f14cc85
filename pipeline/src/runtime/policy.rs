//! What becomes of a received message: run its stage, then settle it.
//!
//! Success acknowledges. A retryable failure puts the message back with an
//! exponential backoff; after `max_attempts` receives the message goes to
//! the dead-letter queue and its job (or delivery) is marked failed with the
//! reason. A permanent failure ends the job at once. A message whose body
//! does not parse is dead-lettered. Nothing is dropped without a trace.

use std::time::{Duration, Instant};

use tracing::Instrument;

use super::handlers::Handlers;
use crate::domain::{Failure, PortError, StageError, StageMessage, now_ms};
use crate::metrics;
use crate::ports::Received;
use crate::settings::WorkerSettings;
use crate::stages::Pipeline;

/// The longest wait before a retry.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// What became of a received message, for the caller to settle it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Handled, or failed for good (the job says why): delete it.
    Done,
    /// Worth another try: make it visible again after this delay.
    Retry(Duration),
    /// Already settled here (moved to the dead-letter queue).
    Settled,
}

/// Runs one received message through its stage, with the retry, dead-letter
/// and failure policy of the module docs. Shared by the long-running
/// workers and the Lambda handlers, which differ only in how they settle.
pub async fn handle(handlers: &Handlers, settings: &WorkerSettings, received: &Received) -> Outcome {
    let pipeline = &handlers.pipeline;
    let message = match received.message() {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(stage = %received.stage, error = %e, "dead-lettering an unreadable message");
            settle(pipeline.queue.dead_letter(received, &e).await);
            return Outcome::Settled;
        }
    };
    if let Some(sent_ms) = received.sent_ms {
        metrics::stage_waited(received.stage, Duration::from_millis((now_ms() - sent_ms).max(0) as u64));
    }
    let request = match &message {
        StageMessage::Inbound { key, .. } => Some(key.as_str()),
        _ => None,
    };
    let span = tracing::info_span!(
        "stage",
        stage = %received.stage,
        job = message.job().map(|j| j.as_str()),
        request,
        attempt = received.receive_count,
    );
    async {
        let max = settings.max_attempts;
        if received.receive_count > max {
            // Received too often without being settled: its handler kept
            // crashing or timing out.
            let reason = format!("processing was interrupted {} times", received.receive_count - 1);
            give_up(pipeline, received, &message, &reason, &reason).await;
            return Outcome::Settled;
        }
        let start = Instant::now();
        let result = with_heartbeat(pipeline, settings.visibility, received, handlers.handle(&message)).await;
        // The original service's per-stage timing: one line per handling,
        // with the elapsed time, and the histogram.
        let elapsed = start.elapsed();
        metrics::stage_handled(received.stage, elapsed);
        let outcome = match &result {
            Ok(()) => "done",
            Err(StageError::Retry(_)) => "retry",
            Err(StageError::Permanent(_)) => "failed",
        };
        tracing::info!(elapsed_ms = elapsed.as_millis() as u64, outcome, "stage finished");
        match result {
            Ok(()) => Outcome::Done,
            Err(StageError::Retry(e)) if received.receive_count >= max => {
                give_up(pipeline, received, &message, &e.to_string(), e.public()).await;
                Outcome::Settled
            }
            Err(StageError::Retry(e)) => {
                let delay = backoff(settings.retry_base, received.receive_count);
                tracing::warn!(error = %e, retry_in = ?delay, "stage failed; will retry");
                if let Some(job) = message.job()
                    && let Err(e2) = pipeline.note_retry(job, e.public()).await
                {
                    tracing::warn!(error = %e2, "could not record the retry on the job");
                }
                Outcome::Retry(delay)
            }
            Err(StageError::Permanent(failure)) => {
                fail(pipeline, &message, failure).await;
                Outcome::Done
            }
        }
    }
    .instrument(span)
    .await
}

/// Runs a handler while periodically extending the message's visibility,
/// so a slow page is not handed to a second worker meanwhile.
async fn with_heartbeat<F: std::future::Future<Output = Result<(), StageError>>>(
    pipeline: &Pipeline,
    visibility: Duration,
    received: &Received,
    handler: F,
) -> Result<(), StageError> {
    let mut beat = tokio::time::interval(visibility / 3);
    beat.tick().await;
    tokio::pin!(handler);
    loop {
        tokio::select! {
            result = &mut handler => return result,
            _ = beat.tick() => {
                if let Err(e) = pipeline.queue.set_visibility(received, visibility).await {
                    tracing::warn!(error = %e, "could not extend the message's visibility");
                }
            }
        }
    }
}

/// Dead-letters a message that kept failing (with `last_error` in full, for
/// the operator) and fails its job (with `public`, for the user).
async fn give_up(pipeline: &Pipeline, received: &Received, message: &StageMessage, last_error: &str, public: &str) {
    let attempts = received.receive_count;
    tracing::error!(error = %last_error, attempts, "giving up on a message; moving it to the dead-letter queue");
    settle(pipeline.queue.dead_letter(received, last_error).await);
    let failure = Failure::new(
        "kept_failing",
        format!("Storytime tried {attempts} times and gave up. The last problem was: {public}."),
    );
    fail(pipeline, message, failure).await;
}

/// Marks what a message was for as failed: the job for reading and
/// narration, the one delivery for a delivery.
async fn fail(pipeline: &Pipeline, message: &StageMessage, failure: Failure) {
    let result = match message {
        // A delivery that cannot be made falls back to email; the job
        // itself stays done.
        StageMessage::Deliver { job, recipient } => pipeline.give_up_delivery(job, *recipient, &failure.message).await,
        StageMessage::Read { job, .. } | StageMessage::Narrate { job, .. } => pipeline.fail_job(job, failure).await,
        StageMessage::Inbound { source, key, payload } => {
            tracing::error!(source, key, reason = %failure.message, "gave up on an inbound request");
            if source == crate::stages::UPLOAD_SOURCE {
                pipeline.give_up_upload(payload, &failure.message).await.map_err(Into::into)
            } else {
                Ok(())
            }
        }
    };
    if let Err(e) = result {
        tracing::error!(error = %e, "could not record the failure on the job; the stall sweep will retry");
    }
}

pub(super) fn settle(result: Result<(), PortError>) {
    if let Err(e) = result {
        // The message will come back after its visibility timeout.
        tracing::warn!(error = %e, "could not settle a message with the queue");
    }
}

/// `base × 2^(attempt-1)`, capped, with up to 25% random jitter so that
/// messages that failed together do not retry together.
pub(super) fn backoff(base: Duration, attempt: u32) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(16)).min(MAX_BACKOFF);
    let jitter = (uuid::Uuid::new_v4().as_u128() % 1000) as u32;
    exp + exp.mul_f64(jitter as f64 / 4000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let base = Duration::from_secs(2);
        assert!((Duration::from_secs(2)..=Duration::from_millis(2500)).contains(&backoff(base, 1)));
        assert!((Duration::from_secs(8)..=Duration::from_secs(10)).contains(&backoff(base, 3)));
        assert!(backoff(base, 40) <= MAX_BACKOFF.mul_f64(1.25));
    }
}
