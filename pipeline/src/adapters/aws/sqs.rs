//! One SQS queue per stage (`<prefix><stage>`), each with its dead-letter
//! queue (`<prefix><stage>-dlq`, reached through the redrive policy).
//!
//! Requests are kept few: receives long-poll for up to 20 s and take up to
//! ten messages; a book's pages go out in `SendMessageBatch` calls; acks
//! made at about the same time by different workers are coalesced into
//! `DeleteMessageBatch` calls.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName,
    SendMessageBatchRequestEntry,
};
use tokio::sync::{OnceCell, mpsc, oneshot};

use super::sdk_errors::classify;
use crate::domain::{ErrorKind, PortError, Stage, StageMessage};
use crate::ports::{Queue, QueueDepth, Received};
use crate::setup::{Ensured, Finding, Setup};

const WHAT: &str = "the SQS queue";
/// SQS's limits: messages per batch call and per receive, longest wait,
/// longest delay, longest visibility timeout.
const BATCH: usize = 10;
const MAX_WAIT: Duration = Duration::from_secs(20);
const MAX_DELAY: Duration = Duration::from_secs(900);
const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 3600);

pub struct SqsQueue {
    client: Client,
    prefix: String,
    /// For `storytime init`: receives before SQS moves a message to the
    /// dead-letter queue, and the queues' default visibility timeout.
    redrive: (u32, Duration),
    urls: HashMap<(Stage, bool), OnceCell<String>>,
    deletes: mpsc::UnboundedSender<Delete>,
}

struct Delete {
    url: String,
    receipt: String,
    done: oneshot::Sender<Result<(), PortError>>,
}

impl SqsQueue {
    /// Queues named `<prefix><stage>`. Their URLs are looked up on first use.
    /// Must be called inside a Tokio runtime (acks are sent by a task).
    pub fn new(config: &aws_config::SdkConfig, prefix: impl Into<String>) -> Self {
        let client = Client::new(config);
        let (deletes, rx) = mpsc::unbounded_channel();
        tokio::spawn(delete_in_batches(client.clone(), rx));
        let urls = Stage::ALL.into_iter().flat_map(|s| [((s, false), OnceCell::new()), ((s, true), OnceCell::new())]);
        Self { client, prefix: prefix.into(), redrive: (6, Duration::from_secs(30)), urls: urls.collect(), deletes }
    }

    /// The redrive policy `storytime init` sets: a message received
    /// `max_receives` times without being deleted moves to the dead-letter
    /// queue; `visibility` is the queues' default visibility timeout.
    pub fn with_redrive(mut self, max_receives: u32, visibility: Duration) -> Self {
        self.redrive = (max_receives, visibility);
        self
    }

    /// The queue's name; `dead` for its dead-letter queue.
    pub fn name(&self, stage: Stage, dead: bool) -> String {
        format!("{}{}{}", self.prefix, stage.name(), if dead { "-dlq" } else { "" })
    }

    async fn url(&self, stage: Stage, dead: bool) -> Result<&str, PortError> {
        let cell = &self.urls[&(stage, dead)];
        let url = cell
            .get_or_try_init(|| async {
                let name = self.name(stage, dead);
                match self.client.get_queue_url().queue_name(&name).send().await {
                    Ok(out) => out.queue_url.ok_or_else(|| PortError::rejected(WHAT, format!("{name}: no URL"))),
                    Err(e) if e.as_service_error().is_some_and(|s| s.is_queue_does_not_exist()) => Err(PortError::new(
                        ErrorKind::Missing,
                        WHAT,
                        format!("queue {name} does not exist (run `storytime init`)"),
                    )),
                    Err(e) => Err(classify(WHAT, e)),
                }
            })
            .await?;
        Ok(url)
    }

    /// Creates every stage's queue and dead-letter queue when missing and
    /// sets the redrive policy: a message received `max_receives` times
    /// without being deleted moves to the dead-letter queue. Idempotent.
    /// Returns the names of the queues it created.
    pub async fn ensure_queues(&self, max_receives: u32, visibility: Duration) -> Result<Vec<String>, PortError> {
        let mut created = Vec::new();
        for stage in Stage::ALL {
            let dlq_name = self.name(stage, true);
            let dlq_url = self.create(&dlq_name, &mut created).await?;
            let arn = queue_arn(&self.client, &dlq_url, &dlq_name).await?;
            let url = self.create(&self.name(stage, false), &mut created).await?;
            let redrive = serde_json::json!({ "deadLetterTargetArn": arn, "maxReceiveCount": max_receives });
            self.client
                .set_queue_attributes()
                .queue_url(&url)
                .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
                .attributes(QueueAttributeName::VisibilityTimeout, visibility.as_secs().to_string())
                .attributes(QueueAttributeName::ReceiveMessageWaitTimeSeconds, MAX_WAIT.as_secs().to_string())
                .send()
                .await
                .map_err(|e| classify(WHAT, e))?;
        }
        Ok(created)
    }

    async fn create(&self, name: &str, created: &mut Vec<String>) -> Result<String, PortError> {
        if let Ok(out) = self.client.get_queue_url().queue_name(name).send().await
            && let Some(url) = out.queue_url
        {
            return Ok(url);
        }
        let out = self.client.create_queue().queue_name(name).send().await.map_err(|e| classify(WHAT, e))?;
        created.push(name.to_owned());
        out.queue_url.ok_or_else(|| PortError::rejected(WHAT, format!("{name}: created without a URL")))
    }

    /// Whether every queue can be reached: the names of those that cannot,
    /// with the reason.
    pub async fn check(&self) -> Vec<(String, PortError)> {
        let mut problems = Vec::new();
        for stage in Stage::ALL {
            for dead in [false, true] {
                if let Err(e) = self.url(stage, dead).await {
                    problems.push((self.name(stage, dead), e));
                }
            }
        }
        problems
    }

    async fn count(&self, url: &str, names: &[QueueAttributeName]) -> Result<Vec<u64>, PortError> {
        let mut request = self.client.get_queue_attributes().queue_url(url);
        for name in names {
            request = request.attribute_names(name.clone());
        }
        let attributes = request.send().await.map_err(|e| classify(WHAT, e))?.attributes.unwrap_or_default();
        Ok(names.iter().map(|n| attributes.get(n).and_then(|v| v.parse().ok()).unwrap_or(0)).collect())
    }
}

fn seconds(d: Duration, cap: Duration) -> i32 {
    d.min(cap).as_secs() as i32
}

/// Sends acks as `DeleteMessageBatch` calls: whatever acks are waiting when
/// one call starts go together (up to ten per queue), so a busy worker pool
/// makes few calls and a quiet one adds no delay.
async fn delete_in_batches(client: Client, mut rx: mpsc::UnboundedReceiver<Delete>) {
    while let Some(first) = rx.recv().await {
        let mut waiting = vec![first];
        while waiting.len() < 100 {
            match rx.try_recv() {
                Ok(d) => waiting.push(d),
                Err(_) => break,
            }
        }
        let mut by_queue: HashMap<String, Vec<Delete>> = HashMap::new();
        for d in waiting {
            by_queue.entry(d.url.clone()).or_default().push(d);
        }
        for (url, deletes) in by_queue {
            let mut deletes = deletes.into_iter().peekable();
            while deletes.peek().is_some() {
                let chunk: Vec<Delete> = deletes.by_ref().take(BATCH).collect();
                tokio::spawn(delete_batch(client.clone(), url.clone(), chunk));
            }
        }
    }
}

async fn delete_batch(client: Client, url: String, chunk: Vec<Delete>) {
    let entries: Vec<DeleteMessageBatchRequestEntry> = chunk
        .iter()
        .enumerate()
        .filter_map(|(i, d)| {
            DeleteMessageBatchRequestEntry::builder().id(i.to_string()).receipt_handle(&d.receipt).build().ok()
        })
        .collect();
    let result = client.delete_message_batch().queue_url(&url).set_entries(Some(entries)).send().await;
    match result {
        Ok(out) => {
            let failed: HashMap<String, String> = out
                .failed
                .into_iter()
                .map(|f| (f.id, format!("{}: {}", f.code, f.message.unwrap_or_default())))
                .collect();
            for (i, d) in chunk.into_iter().enumerate() {
                let outcome = match failed.get(&i.to_string()) {
                    Some(reason) => Err(PortError::unavailable(WHAT, reason.clone())),
                    None => Ok(()),
                };
                let _ = d.done.send(outcome);
            }
        }
        Err(e) => {
            let e = classify(WHAT, e);
            for d in chunk {
                let _ = d.done.send(Err(e.clone()));
            }
        }
    }
}

fn entry(id: usize, message: &StageMessage, delay: Duration) -> Result<SendMessageBatchRequestEntry, PortError> {
    SendMessageBatchRequestEntry::builder()
        .id(id.to_string())
        .message_body(message.to_json())
        .delay_seconds(seconds(delay, MAX_DELAY))
        .build()
        .map_err(|e| PortError::rejected(WHAT, e))
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send(&self, message: &StageMessage, delay: Duration) -> Result<(), PortError> {
        let url = self.url(message.stage(), false).await?;
        self.client
            .send_message()
            .queue_url(url)
            .message_body(message.to_json())
            .delay_seconds(seconds(delay, MAX_DELAY))
            .send()
            .await
            .map_err(|e| classify(WHAT, e))?;
        Ok(())
    }

    async fn send_many(&self, messages: &[StageMessage]) -> Result<(), PortError> {
        let mut by_stage: HashMap<Stage, Vec<&StageMessage>> = HashMap::new();
        for m in messages {
            by_stage.entry(m.stage()).or_default().push(m);
        }
        for (stage, messages) in by_stage {
            let url = self.url(stage, false).await?;
            for chunk in messages.chunks(BATCH) {
                let entries = chunk
                    .iter()
                    .enumerate()
                    .map(|(i, m)| entry(i, m, Duration::ZERO))
                    .collect::<Result<Vec<_>, _>>()?;
                let out = self
                    .client
                    .send_message_batch()
                    .queue_url(url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .map_err(|e| classify(WHAT, e))?;
                if let Some(f) = out.failed.first() {
                    let detail = format!(
                        "{} of {} messages: {}: {}",
                        out.failed.len(),
                        chunk.len(),
                        f.code,
                        f.message.as_deref().unwrap_or("")
                    );
                    return Err(if f.sender_fault {
                        PortError::rejected(WHAT, detail)
                    } else {
                        PortError::unavailable(WHAT, detail)
                    });
                }
            }
        }
        Ok(())
    }

    async fn receive(
        &self,
        stage: Stage,
        max: usize,
        wait: Duration,
        visibility: Duration,
    ) -> Result<Vec<Received>, PortError> {
        let url = self.url(stage, false).await?;
        let out = self
            .client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(max.clamp(1, BATCH) as i32)
            .wait_time_seconds(seconds(wait, MAX_WAIT))
            .visibility_timeout(seconds(visibility, MAX_VISIBILITY).max(1))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .send()
            .await
            .map_err(|e| classify(WHAT, e))?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| {
                let attribute = |name| m.attributes.as_ref().and_then(|a| a.get(&name)).map(String::as_str);
                let receive_count =
                    attribute(MessageSystemAttributeName::ApproximateReceiveCount).and_then(|c| c.parse().ok());
                let sent_ms = attribute(MessageSystemAttributeName::SentTimestamp).and_then(|t| t.parse().ok());
                let receive_count = receive_count.unwrap_or(1);
                Some(Received { stage, body: m.body?, receipt: m.receipt_handle?, receive_count, sent_ms })
            })
            .collect())
    }

    async fn ack(&self, received: &Received) -> Result<(), PortError> {
        let url = self.url(received.stage, false).await?.to_owned();
        let (done, result) = oneshot::channel();
        let delete = Delete { url, receipt: received.receipt.clone(), done };
        if self.deletes.send(delete).is_err() {
            return Err(PortError::unavailable(WHAT, "the acknowledgement task stopped"));
        }
        result.await.unwrap_or_else(|_| Err(PortError::unavailable(WHAT, "the acknowledgement task stopped")))
    }

    async fn set_visibility(&self, received: &Received, delay: Duration) -> Result<(), PortError> {
        let url = self.url(received.stage, false).await?;
        self.client
            .change_message_visibility()
            .queue_url(url)
            .receipt_handle(&received.receipt)
            .visibility_timeout(seconds(delay, MAX_VISIBILITY))
            .send()
            .await
            .map_err(|e| classify(WHAT, e))?;
        Ok(())
    }

    /// Copies the message into the dead-letter queue with the reason as a
    /// message attribute, then deletes the original. The redrive policy
    /// does the same without a reason for messages whose handler never
    /// settles them (a crash, a Lambda timeout).
    async fn dead_letter(&self, received: &Received, reason: &str) -> Result<(), PortError> {
        let dlq = self.url(received.stage, true).await?;
        let text = |v: String| MessageAttributeValue::builder().data_type("String").string_value(v).build();
        let reason: String = reason.chars().take(1000).collect();
        self.client
            .send_message()
            .queue_url(dlq)
            .message_body(&received.body)
            .message_attributes("reason", text(reason).map_err(|e| PortError::rejected(WHAT, e))?)
            .message_attributes(
                "receive_count",
                text(received.receive_count.to_string()).map_err(|e| PortError::rejected(WHAT, e))?,
            )
            .send()
            .await
            .map_err(|e| classify(WHAT, e))?;
        self.ack(received).await
    }

    async fn depth(&self, stage: Stage) -> Result<QueueDepth, PortError> {
        use QueueAttributeName::{
            ApproximateNumberOfMessages as Waiting, ApproximateNumberOfMessagesDelayed as Delayed,
            ApproximateNumberOfMessagesNotVisible as InFlight,
        };
        let main = self.count(self.url(stage, false).await?, &[Waiting, Delayed, InFlight]).await?;
        let dead = self.count(self.url(stage, true).await?, &[Waiting]).await?;
        // The age of the oldest message is a CloudWatch metric of SQS's own
        // (ApproximateAgeOfOldestMessage), not a queue attribute.
        Ok(QueueDepth {
            waiting: main[0] + main[1],
            in_flight: main[2],
            dead: dead[0],
            oldest_waiting: None,
            oldest_dead: None,
        })
    }
}

/// The ARN of the queue at `url` (named `name`).
pub(super) async fn queue_arn(client: &Client, url: &str, name: &str) -> Result<String, PortError> {
    client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| classify(WHAT, e))?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .ok_or_else(|| PortError::rejected(WHAT, format!("{name} has no ARN")))
}

#[async_trait]
impl Setup for SqsQueue {
    async fn ensure(&self) -> Result<Vec<Ensured>, PortError> {
        let (max_receives, visibility) = self.redrive;
        let created = self.ensure_queues(max_receives, visibility).await?;
        let mut done = Vec::new();
        for stage in Stage::ALL {
            for dead in [false, true] {
                let name = self.name(stage, dead);
                done.push(Ensured::new(created.contains(&name), "queue", name));
            }
        }
        Ok(done)
    }

    async fn check(&self) -> Vec<Finding> {
        let what = format!("queues {}<stage> and their -dlq", self.prefix);
        let result = match self.check().await.into_iter().next() {
            None => Ok(()),
            Some((_, e)) => Err(e),
        };
        vec![Finding::of("sqs", what, result, "sqs:GetQueueUrl on the queues")]
    }
}
