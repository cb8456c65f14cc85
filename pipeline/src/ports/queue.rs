use std::time::Duration;

use async_trait::async_trait;

use crate::domain::{PortError, Stage, StageMessage};

/// A message handed to a consumer, invisible to others until acknowledged,
/// released, or its visibility timeout runs out.
#[derive(Debug, Clone)]
pub struct Received {
    pub stage: Stage,
    /// The raw body; a body that does not parse is dead-lettered.
    pub body: String,
    /// Handle for acknowledging or releasing this delivery.
    pub receipt: String,
    /// How many times the message has been received, this time included.
    pub receive_count: u32,
    /// When the message was sent (ms since the epoch), if the queue says.
    pub sent_ms: Option<i64>,
}

impl Received {
    pub fn message(&self) -> Result<StageMessage, String> {
        StageMessage::from_json(&self.body)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepth {
    /// Ready to be received (or waiting out a delay).
    pub waiting: u64,
    /// Received and not yet acknowledged.
    pub in_flight: u64,
    /// In the dead-letter queue.
    pub dead: u64,
    /// Age of the oldest message ready to be received, when the queue can
    /// tell (SQS publishes it to CloudWatch instead).
    pub oldest_waiting: Option<Duration>,
    /// How long the oldest dead letter has waited for an operator.
    pub oldest_dead: Option<Duration>,
}

impl QueueDepth {
    /// The message counts alone: waiting, in flight, dead.
    pub fn counts(&self) -> (u64, u64, u64) {
        (self.waiting, self.in_flight, self.dead)
    }
}

/// One durable queue per stage, with SQS semantics: at-least-once delivery,
/// a visibility timeout, a receive count, delays, and a dead-letter queue.
#[async_trait]
pub trait Queue: Send + Sync {
    async fn send(&self, message: &StageMessage, delay: Duration) -> Result<(), PortError>;

    /// Sends several messages at once (a book's pages); queues with batch
    /// calls override this to make fewer requests.
    async fn send_many(&self, messages: &[StageMessage]) -> Result<(), PortError> {
        for m in messages {
            self.send(m, Duration::ZERO).await?;
        }
        Ok(())
    }

    /// Waits up to `wait` for messages of `stage` and receives at most `max`
    /// of them, hiding each for `visibility`.
    async fn receive(
        &self,
        stage: Stage,
        max: usize,
        wait: Duration,
        visibility: Duration,
    ) -> Result<Vec<Received>, PortError>;

    /// Done with a message: delete it.
    async fn ack(&self, received: &Received) -> Result<(), PortError>;

    /// Makes a message visible again after `delay` (a retry with backoff, or
    /// a heartbeat that extends the time a slow handler may take).
    async fn set_visibility(&self, received: &Received, delay: Duration) -> Result<(), PortError>;

    /// Moves a message to the stage's dead-letter queue with the reason.
    async fn dead_letter(&self, received: &Received, reason: &str) -> Result<(), PortError>;

    async fn depth(&self, stage: Stage) -> Result<QueueDepth, PortError>;
}
