//! The SQS queue and the Lambda stage handler against moto: batches,
//! visibility, dead letters with their reason, and partial batch failures.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use bytes::Bytes;
use storytime_bot::app::{App, Role};
use storytime_bot::settings::Settings;
use storytime_pipeline::adapters::aws::{DynamoJobStore, S3BlobStore, SqsQueue};
use storytime_pipeline::contract;
use storytime_pipeline::ports::Queue;
use storytime_pipeline::runtime::lambda::handle_batch;
use storytime_pipeline::stages::{SubmitRequest, Upload};
use storytime_pipeline::{JobId, Reuse, Stage, StageMessage};
use storytime_tests::moto::Moto;
use storytime_tests::{Page, render_page};

const WAIT: Duration = Duration::from_secs(1);
const HIDE: Duration = Duration::from_secs(30);

fn read(page: usize) -> StageMessage {
    StageMessage::read(JobId::new(), page)
}

#[tokio::test]
async fn messages_go_in_batches_hide_while_worked_on_and_dead_letter_with_a_reason() {
    let moto = Moto::start();
    let queue = SqsQueue::new(&moto.sdk_config().await, "storytime-");
    let created = queue.ensure_queues(3, HIDE).await.unwrap();
    assert_eq!(created.len(), 8, "four queues and their dead-letter queues: {created:?}");
    assert!(queue.ensure_queues(3, HIDE).await.unwrap().is_empty(), "a second run changes nothing");

    // Twelve pages go out in two batch calls and come back ten at most.
    let pages: Vec<StageMessage> = (0..12).map(read).collect();
    queue.send_many(&pages).await.unwrap();
    let first = queue.receive(Stage::Read, 10, WAIT, HIDE).await.unwrap();
    assert_eq!(first.len(), 10);
    let rest = queue.receive(Stage::Read, 10, WAIT, HIDE).await.unwrap();
    assert_eq!(rest.len(), 2);
    assert!(queue.receive(Stage::Read, 10, WAIT, HIDE).await.unwrap().is_empty(), "received ones are hidden");
    let depth = queue.depth(Stage::Read).await.unwrap();
    assert_eq!((depth.waiting, depth.in_flight, depth.dead), (0, 12, 0));

    // Acknowledged together (batched), released, and dead-lettered.
    let acks = first.iter().map(|m| queue.ack(m));
    for result in futures::future::join_all(acks).await {
        result.unwrap();
    }
    queue.set_visibility(&rest[0], Duration::ZERO).await.unwrap();
    queue.dead_letter(&rest[1], "the reader kept failing").await.unwrap();
    let again = queue.receive(Stage::Read, 10, WAIT, HIDE).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].body, rest[0].body);
    assert_eq!(again[0].receive_count, 2);
    let depth = queue.depth(Stage::Read).await.unwrap();
    assert_eq!((depth.waiting, depth.in_flight, depth.dead), (0, 1, 1));
}

#[tokio::test]
async fn the_sqs_queue_keeps_the_contract() {
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    let n = std::sync::atomic::AtomicUsize::new(0);
    contract::queue(|| {
        let prefix = format!("contract{}-", n.fetch_add(1, std::sync::atomic::Ordering::SeqCst));
        let sdk = sdk.clone();
        async move {
            let queue = SqsQueue::new(&sdk, prefix);
            queue.ensure_queues(3, HIDE).await.unwrap();
            Arc::new(queue) as Arc<dyn Queue>
        }
    })
    .await;
}

#[tokio::test]
async fn a_missing_queue_says_to_run_init() {
    let moto = Moto::start();
    let queue = SqsQueue::new(&moto.sdk_config().await, "nowhere-");
    let e = queue.send(&read(0), Duration::ZERO).await.unwrap_err();
    assert!(e.to_string().contains("nowhere-read does not exist (run `storytime init`)"), "{e}");
}

#[tokio::test]
async fn a_lambda_batch_reports_only_the_messages_worth_retrying() {
    let moto = Moto::start();
    // A directory is not a program: reading fails with a retryable error.
    let not_a_program = tempfile::tempdir().unwrap();
    let tesseract = not_a_program.path().display().to_string();
    let settings = Settings::from_pairs(&[
        ("STORYTIME_BACKEND", "aws"),
        ("STORYTIME_READER", "tesseract"),
        ("STORYTIME_NARRATOR", "espeak"),
        ("STORYTIME_TESSERACT", &tesseract),
        ("STORYTIME_MAX_ATTEMPTS", "3"),
    ])
    .unwrap();
    let sdk = moto.sdk_config().await;
    let queue = SqsQueue::new(&sdk, "storytime-");
    queue.ensure_queues(4, HIDE).await.unwrap();
    S3BlobStore::new(&sdk, "storytime-media", None).ensure_bucket().await.unwrap();
    DynamoJobStore::new(&sdk, "storytime-jobs", Duration::from_secs(3600)).ensure_table().await.unwrap();
    let workers = settings.pipeline.workers.clone();
    let app = App::build_with_aws(settings, &Role::Function(Some(Stage::Read)), sdk).await.unwrap();
    let pipeline = app.pipeline.clone();

    let png = render_page(&Page::new(&["A hen laid an egg."]));
    let request = SubmitRequest {
        pages: vec![Upload { bytes: Bytes::from(png), name: Some("hen.png".into()) }],
        voice: None,
        speed: None,
        reuse: Reuse::SameJob,
        destinations: Vec::new(),
        request_key: None,
        owner: "tests".into(),
    };
    let job = pipeline.submit(request).await.unwrap().job.id;
    // A page of a job that does not exist: nothing to do, and done.
    queue.send(&read(0), Duration::ZERO).await.unwrap();
    let received = pipeline.queue.receive(Stage::Read, 10, WAIT, HIDE).await.unwrap();
    assert_eq!(received.len(), 2);

    // As Lambda delivers them, plus a record whose body is not a message.
    let record = |id: &str, body: &str, receipt: &str| {
        let mut m = SqsMessage::default();
        m.message_id = Some(id.into());
        m.body = Some(body.into());
        m.receipt_handle = Some(receipt.into());
        m.attributes.insert("ApproximateReceiveCount".into(), "1".into());
        m
    };
    let mut event = SqsEvent::default();
    for (i, m) in received.iter().enumerate() {
        event.records.push(record(&format!("m{i}"), &m.body, &m.receipt));
    }
    queue.send_many(&[read(7)]).await.unwrap();
    let garbage = pipeline.queue.receive(Stage::Read, 1, WAIT, HIDE).await.unwrap().remove(0);
    event.records.push(record("garbage", "not json", &garbage.receipt));

    let response = handle_batch(app.handlers.clone(), workers, Stage::Read, event).await;
    let failed: Vec<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    let real = received.iter().position(|m| m.body.contains(job.as_str())).expect("the job's page was received");
    assert_eq!(failed, [format!("m{real}")], "only the page worth retrying comes back");
    assert_eq!(pipeline.queue.depth(Stage::Read).await.unwrap().dead, 1, "the unreadable record was dead-lettered");
}
