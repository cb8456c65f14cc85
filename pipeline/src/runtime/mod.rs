//! The worker runtime: receive a message, run its stage, and settle it.
//!
//! Success acknowledges. A retryable failure puts the message back with an
//! exponential backoff; after `max_attempts` receives the message goes to
//! the dead-letter queue and its job (or delivery) is marked failed with the
//! reason. A permanent failure ends the job at once. A message whose body
//! does not parse is dead-lettered. Nothing is dropped without a trace.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::domain::{Failure, Stage, StageError, StageMessage};
use crate::ports::Received;
use crate::settings::WorkerSettings;
use crate::stages::Pipeline;

/// How long one receive call waits for a message (SQS's maximum long poll).
const LONG_POLL: Duration = Duration::from_secs(20);
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Runs the given stages' workers, plus the stall sweep, until `shutdown`
/// turns true; then lets handlers in progress finish.
pub async fn run(pipeline: Arc<Pipeline>, stages: &[Stage], settings: WorkerSettings, shutdown: watch::Receiver<bool>) {
    let mut tasks = JoinSet::new();
    for &stage in stages {
        let n = match stage {
            Stage::Inbound => settings.inbound,
            Stage::Read => settings.read,
            Stage::Narrate => settings.narrate,
            Stage::Deliver => settings.deliver,
        };
        // Zero is allowed: the stage then runs in another process.
        for _ in 0..n {
            let worker = Worker { pipeline: pipeline.clone(), stage, settings: settings.clone() };
            tasks.spawn(worker.run(shutdown.clone()));
        }
    }
    tasks.spawn(sweep(pipeline, settings.stall_after, shutdown));
    while tasks.join_next().await.is_some() {}
}

/// Re-queues stalled jobs every half stall period.
async fn sweep(pipeline: Arc<Pipeline>, stall_after: Duration, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval((stall_after / 2).max(Duration::from_secs(1)));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        match pipeline.sweep_stalled().await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(jobs = n, "re-queued stalled jobs"),
            Err(e) => tracing::warn!(error = %e, "stall sweep failed"),
        }
    }
}

struct Worker {
    pipeline: Arc<Pipeline>,
    stage: Stage,
    settings: WorkerSettings,
}

impl Worker {
    async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut failures = 0u32;
        loop {
            if *shutdown.borrow() {
                return;
            }
            let received = tokio::select! {
                r = self.pipeline.queue.receive(self.stage, 1, LONG_POLL, self.settings.visibility) => r,
                _ = shutdown.changed() => return,
            };
            match received {
                Ok(batch) => {
                    failures = 0;
                    for message in batch {
                        self.process(message).await;
                    }
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(stage = %self.stage, error = %e, "receiving from the queue failed");
                    tokio::time::sleep(backoff(Duration::from_millis(500), failures)).await;
                }
            }
        }
    }

    async fn process(&self, received: Received) {
        let message = match received.message() {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(stage = %self.stage, error = %e, "dead-lettering an unreadable message");
                self.settle(self.pipeline.queue.dead_letter(&received, &e).await);
                return;
            }
        };
        let span = tracing::info_span!("stage", stage = %self.stage, subject = %message.subject(), attempt = received.receive_count);
        async {
            let max = self.settings.max_attempts;
            if received.receive_count > max {
                // Received too often without being settled: its handler kept
                // crashing or timing out.
                let reason = format!("processing was interrupted {} times", received.receive_count - 1);
                self.give_up(&received, &message, reason).await;
                return;
            }
            match self.with_heartbeat(&received, self.pipeline.handle(&message)).await {
                Ok(()) => self.settle(self.pipeline.queue.ack(&received).await),
                Err(StageError::Retry(e)) if received.receive_count >= max => {
                    self.give_up(&received, &message, e).await
                }
                Err(StageError::Retry(e)) => {
                    let delay = backoff(self.settings.retry_base, received.receive_count);
                    tracing::warn!(error = %e, retry_in = ?delay, "stage failed; will retry");
                    if let Some(job) = message.job()
                        && let Err(e2) = self.pipeline.note_retry(job, &e).await
                    {
                        tracing::warn!(error = %e2, "could not record the retry on the job");
                    }
                    self.settle(self.pipeline.queue.set_visibility(&received, delay).await);
                }
                Err(StageError::Permanent(failure)) => {
                    self.fail(&message, failure).await;
                    self.settle(self.pipeline.queue.ack(&received).await);
                }
            }
        }
        .instrument(span)
        .await
    }

    /// Runs a handler while periodically extending the message's visibility,
    /// so a slow page is not handed to a second worker meanwhile.
    async fn with_heartbeat<F: std::future::Future<Output = Result<(), StageError>>>(
        &self,
        received: &Received,
        handler: F,
    ) -> Result<(), StageError> {
        let visibility = self.settings.visibility;
        let mut beat = tokio::time::interval(visibility / 3);
        beat.tick().await;
        tokio::pin!(handler);
        loop {
            tokio::select! {
                result = &mut handler => return result,
                _ = beat.tick() => {
                    if let Err(e) = self.pipeline.queue.set_visibility(received, visibility).await {
                        tracing::warn!(error = %e, "could not extend the message's visibility");
                    }
                }
            }
        }
    }

    async fn give_up(&self, received: &Received, message: &StageMessage, last_error: String) {
        let attempts = received.receive_count;
        tracing::error!(error = %last_error, attempts, "giving up on a message; moving it to the dead-letter queue");
        self.settle(self.pipeline.queue.dead_letter(received, &last_error).await);
        let failure = Failure::new(
            "kept_failing",
            format!("Storytime tried {attempts} times and gave up. The last problem was: {last_error}."),
        );
        self.fail(message, failure).await;
    }

    /// Marks what a message was for as failed: the job for reading and
    /// narration, the one delivery for a delivery.
    async fn fail(&self, message: &StageMessage, failure: Failure) {
        let result = match message {
            // A delivery that cannot be made falls back to email; the job
            // itself stays done.
            StageMessage::Deliver { job, recipient } => {
                self.pipeline.give_up_delivery(job, *recipient, &failure.message).await
            }
            StageMessage::Read { job, .. } | StageMessage::Narrate { job } => {
                self.pipeline.fail_job(job, failure).await
            }
            StageMessage::Inbound { source, key, .. } => {
                tracing::error!(source, key, reason = %failure.message, "gave up on an inbound request");
                Ok(())
            }
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "could not record the failure on the job; the stall sweep will retry");
        }
    }

    fn settle(&self, result: Result<(), crate::domain::PortError>) {
        if let Err(e) = result {
            // The message will come back after its visibility timeout.
            tracing::warn!(error = %e, "could not settle a message with the queue");
        }
    }
}

/// `base × 2^(attempt-1)`, capped, with up to 25% random jitter so that
/// messages that failed together do not retry together.
fn backoff(base: Duration, attempt: u32) -> Duration {
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
