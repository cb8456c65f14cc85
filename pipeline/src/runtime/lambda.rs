//! A stage as a Lambda function: an SQS batch is handled concurrently with
//! the same policy as the long-running workers. Messages handled (or failed
//! for good, or dead-lettered) count as successes, which Lambda deletes; a
//! message worth retrying is made visible again after its backoff and
//! reported as a batch item failure, so it alone comes back.

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use tokio::task::JoinSet;

use super::handlers::Handlers;
use super::policy::{Outcome, handle};
use crate::domain::Stage;
use crate::ports::Received;
use crate::settings::WorkerSettings;

pub async fn handle_batch(
    handlers: Arc<Handlers>,
    workers: WorkerSettings,
    stage: Stage,
    event: SqsEvent,
) -> SqsBatchResponse {
    let mut tasks = JoinSet::new();
    let mut response = SqsBatchResponse::default();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let (Some(body), Some(receipt)) = (record.body, record.receipt_handle) else {
            tracing::error!(message = id, "an SQS record without body or receipt handle");
            continue;
        };
        let attribute = |name: &str| record.attributes.get(name).map(String::as_str);
        let receive_count = attribute("ApproximateReceiveCount").and_then(|c| c.parse().ok()).unwrap_or(1);
        let sent_ms = attribute("SentTimestamp").and_then(|t| t.parse().ok());
        let received = Received { stage, body, receipt, receive_count, sent_ms };
        let (handlers, workers) = (handlers.clone(), workers.clone());
        tasks.spawn(async move {
            match handle(&handlers, &workers, &received).await {
                Outcome::Retry(delay) => {
                    if let Err(e) = handlers.pipeline.queue.set_visibility(&received, delay).await {
                        tracing::warn!(error = %e, "could not delay the retry; it comes back after the visibility timeout");
                    }
                    Some(id)
                }
                Outcome::Done | Outcome::Settled => None,
            }
        });
    }
    while let Some(result) = tasks.join_next().await {
        match result {
            Ok(Some(id)) => response.add_failure(id),
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "a message handler stopped"),
        }
    }
    response
}
