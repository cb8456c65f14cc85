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

use anyhow::{anyhow, bail};
use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{LambdaEvent, service_fn};
use storytime_pipeline::Stage;
use storytime_pipeline::runtime::lambda::handle_batch;

use crate::app::{App, Role};
use crate::settings::Settings;
use crate::telemetry;

pub async fn run(settings: Settings, function: &str) -> anyhow::Result<ExitCode> {
    telemetry::lambda_metrics(&settings.telemetry, function);
    let stage = match function {
        "api" => {
            let app = App::build(settings, &Role::Api).await?;
            // Each answer's metrics go out with the invocation that made it.
            let router = app.router().layer(axum::middleware::from_fn(|request, next: axum::middleware::Next| async {
                let response = next.run(request).await;
                telemetry::flush_lambda_metrics();
                response
            }));
            lambda_http::run(router).await.map_err(|e| anyhow!("{e}"))?;
            return Ok(ExitCode::SUCCESS);
        }
        "sweep" => None,
        name => match Stage::parse(name) {
            Some(stage) => Some(stage),
            None => bail!("unknown function `{name}`: use api, inbound, read, narrate, deliver or sweep"),
        },
    };
    let app = App::build(settings, &Role::Function(stage)).await?;
    match stage {
        None => {
            let pipeline = app.pipeline.clone();
            let handler = service_fn(move |_: LambdaEvent<serde_json::Value>| {
                let pipeline = pipeline.clone();
                async move {
                    let requeued = pipeline.sweep_stalled().await.map_err(|e| anyhow!("{e}"));
                    telemetry::flush_lambda_metrics();
                    let requeued = requeued?;
                    if requeued > 0 {
                        tracing::warn!(jobs = requeued, "re-queued stalled jobs");
                    }
                    Ok::<_, lambda_runtime::Error>(serde_json::json!({ "requeued": requeued }))
                }
            });
            lambda_runtime::run(handler).await.map_err(|e| anyhow!("{e}"))?;
        }
        Some(stage) => {
            let (handlers, workers) = (app.handlers.clone(), app.settings.pipeline.workers.clone());
            let handler = service_fn(move |event: LambdaEvent<SqsEvent>| {
                let (handlers, workers) = (handlers.clone(), workers.clone());
                async move {
                    let response = handle_batch(handlers, workers, stage, event.payload).await;
                    telemetry::flush_lambda_metrics();
                    Ok::<_, lambda_runtime::Error>(response)
                }
            });
            lambda_runtime::run(handler).await.map_err(|e| anyhow!("{e}"))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
