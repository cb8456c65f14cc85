//! `storytime lambda <function>`: one artifact for every Lambda function.
//!
//! Deployed as the `bootstrap` of a `provided.al2023` function, the binary
//! is started without arguments and takes the function from its handler
//! setting (`_HANDLER`): `api` serves the same router as `storytime serve`
//! (REST and Slack endpoints) behind API Gateway; a stage name (`inbound`,
//! `read`, `narrate`, `deliver`) handles that stage's SQS batches with the
//! same policy as the long-running workers, reporting partial batch
//! failures so only the messages worth retrying come back; `sweep`, run on
//! a schedule, re-queues stalled jobs as the workers' sweep does.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{LambdaEvent, service_fn};
use storytime_pipeline::ports::Received;
use storytime_pipeline::runtime::{self, Outcome};
use storytime_pipeline::settings::{Settings, WorkerSettings};
use storytime_pipeline::{Pipeline, Stage, wiring};
use tokio::task::JoinSet;

use crate::state::AppState;

pub async fn run(settings: Settings, function: &str) -> anyhow::Result<ExitCode> {
    let wired = wiring::build(&settings).await.context("cannot set up storage")?;
    let slack = super::slack_app(&settings, &wired.pipeline)?;
    if function == "api" {
        let state = AppState {
            pipeline: wired.pipeline.clone(),
            media: wired.media.clone(),
            api_keys: Arc::new(settings.api_keys.clone()),
            slack,
        };
        lambda_http::run(crate::router(state)).await.map_err(|e| anyhow!("{e}"))?;
        return Ok(ExitCode::SUCCESS);
    }
    if function == "sweep" {
        let pipeline = wired.pipeline;
        let handler = service_fn(move |_: LambdaEvent<serde_json::Value>| {
            let pipeline = pipeline.clone();
            async move {
                let requeued = pipeline.sweep_stalled().await.map_err(|e| anyhow!("{e}"))?;
                if requeued > 0 {
                    tracing::warn!(jobs = requeued, "re-queued stalled jobs");
                }
                Ok::<_, lambda_runtime::Error>(serde_json::json!({ "requeued": requeued }))
            }
        });
        lambda_runtime::run(handler).await.map_err(|e| anyhow!("{e}"))?;
        return Ok(ExitCode::SUCCESS);
    }
    let Some(stage) = Stage::parse(function) else {
        bail!("unknown function `{function}`: use api, inbound, read, narrate, deliver or sweep");
    };
    let pipeline = wired.pipeline;
    let workers = settings.workers.clone();
    let handler = service_fn(move |event: LambdaEvent<SqsEvent>| {
        let (pipeline, workers) = (pipeline.clone(), workers.clone());
        async move { Ok::<_, lambda_runtime::Error>(handle_batch(pipeline, workers, stage, event.payload).await) }
    });
    lambda_runtime::run(handler).await.map_err(|e| anyhow!("{e}"))?;
    Ok(ExitCode::SUCCESS)
}

/// Handles a batch concurrently. Messages handled (or failed for good, or
/// dead-lettered) count as successes, which Lambda deletes; a message worth
/// retrying is made visible again after its backoff and reported as a
/// batch item failure, so it alone comes back.
pub async fn handle_batch(
    pipeline: Arc<Pipeline>,
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
        let receive_count = record.attributes.get("ApproximateReceiveCount").and_then(|c| c.parse().ok()).unwrap_or(1);
        let received = Received { stage, body, receipt, receive_count };
        let (pipeline, workers) = (pipeline.clone(), workers.clone());
        tasks.spawn(async move {
            match runtime::handle(&pipeline, &workers, &received).await {
                Outcome::Retry(delay) => {
                    if let Err(e) = pipeline.queue.set_visibility(&received, delay).await {
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
