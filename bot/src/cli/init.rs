//! `storytime init`: create what the configured backends need. Running it
//! again changes nothing.

use std::process::ExitCode;

use anyhow::Context;
use storytime_pipeline::adapters::aws::{S3BlobStore, SnsNotifier, SqsQueue};
use storytime_pipeline::settings::{BlobsBackend, JobsBackend, NotifierBackend, QueueBackend, Settings};
use storytime_pipeline::wiring;

pub async fn run(settings: Settings) -> anyhow::Result<ExitCode> {
    let backends = settings.backends;
    let sdk = if backends.uses_aws() { Some(wiring::aws_config().await) } else { None };
    wiring::build_with(&settings, sdk.clone()).await.context("cannot set up storage")?;
    if backends.uses_data_dir() {
        println!("Local storage is ready in {}", settings.data_dir.display());
        if backends.jobs == JobsBackend::Sqlite || backends.queue == QueueBackend::Sqlite {
            println!("  database   {}", settings.database_path().display());
        }
        if backends.blobs == BlobsBackend::Fs {
            println!("  blobs      {}", settings.data_dir.join("blobs").display());
        }
        if backends.notifier == NotifierBackend::Outbox {
            println!("  outbox     {}", settings.data_dir.join("outbox").display());
        }
    }
    let Some(sdk) = sdk else {
        return Ok(ExitCode::SUCCESS);
    };
    let region = sdk.region().map(|r| r.to_string()).unwrap_or_else(|| "(no region set)".into());
    println!("AWS resources in {region}:");
    let said = |created: bool| if created { "created" } else { "exists " };
    let aws = &settings.aws;
    if backends.blobs == BlobsBackend::S3 {
        let created = S3BlobStore::new(&sdk, &aws.bucket, None).ensure_bucket().await.context("S3 bucket")?;
        println!("  {} bucket  {}", said(created), aws.bucket);
    }
    if backends.queue == QueueBackend::Sqs {
        let queues = SqsQueue::new(&sdk, &aws.queue_prefix);
        // One receive more than the workers' attempts: a message whose
        // handler never settles it still reaches the dead-letter queue, and
        // one that fails normally is dead-lettered by the worker with its reason.
        let created = queues
            .ensure_queues(settings.workers.max_attempts + 1, settings.workers.visibility)
            .await
            .context("SQS queues")?;
        for stage in storytime_pipeline::Stage::ALL {
            for dead in [false, true] {
                let name = queues.name(stage, dead);
                println!("  {} queue   {name}", said(created.contains(&name)));
            }
        }
    }
    if backends.jobs == JobsBackend::DynamoDb {
        let created = wiring::dynamo(&sdk, &settings).ensure_table().await.context("DynamoDB table")?;
        println!("  {} table   {} (TTL on expires_at)", said(created), aws.table);
    }
    if backends.notifier == NotifierBackend::Sns {
        let subscribe = aws.subscribe.clone();
        let arn = SnsNotifier::new(&sdk, &aws.topic).ensure_topic(subscribe.as_deref()).await.context("SNS topic")?;
        println!("  ready   topic   {arn}");
        if let Some(address) = subscribe {
            println!("          {address} subscribed; it must confirm from the email AWS sends");
        }
    }
    Ok(ExitCode::SUCCESS)
}
