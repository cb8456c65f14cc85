//! The runtime's policy on the in-memory adapters: retries with backoff,
//! dead letters, permanent failures, stalled jobs and inbound requests.
//! Time is paused, so backoffs and visibility timeouts pass at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use super::{Handlers, Outcome, handle};
use crate::domain::{ErrorKind, JobStatus, Reuse, Stage, StageError, StageMessage};
use crate::ports::{InboundHandler, Queue, Received};
use crate::stages::{SubmitRequest, Upload};
use crate::testing::{Options, TestPipeline};

fn with(settings: &[(&'static str, &str)]) -> TestPipeline {
    let settings = settings.iter().map(|(k, v)| (*k, v.to_string())).collect();
    TestPipeline::with(Options { settings, ..Options::default() })
}

async fn submit(t: &TestPipeline, text: &str) -> crate::domain::JobId {
    let page = Upload { bytes: t.reader.page(text), name: Some("bear.png".into()) };
    let request = SubmitRequest {
        pages: vec![page],
        voice: None,
        speed: None,
        reuse: Reuse::SameJob,
        destinations: vec![],
        request_key: None,
        owner: "tests".into(),
    };
    t.pipeline.submit(request).await.unwrap().job.id
}

#[tokio::test(start_paused = true)]
async fn a_passing_failure_is_retried_with_backoff_and_the_job_says_why_meanwhile() {
    let t = with(&[("STORYTIME_MAX_ATTEMPTS", "5")]);
    t.reader.fail(ErrorKind::Unavailable, 2);
    let job = submit(&t, "The bear slept all winter.").await;

    // The first attempt fails: the message comes back after the backoff,
    // and the job tells a poller why it is taking long.
    let received = t.queue.receive(Stage::Read, 1, Duration::ZERO, t.workers.visibility).await.unwrap().remove(0);
    let outcome = handle(&t.handlers, &t.workers, &received).await;
    assert!(matches!(outcome, Outcome::Retry(d) if d >= t.workers.retry_base), "{outcome:?}");
    let waiting = t.pipeline.jobs.get(&job).await.unwrap().unwrap();
    // In words for the user: the detail (which can name programs, paths or
    // cloud resources) stays in the log.
    assert_eq!(waiting.last_error.as_deref(), Some("a service it relies on failed or did not answer in time"));
    t.queue.set_visibility(&received, Duration::from_secs(2)).await.unwrap();

    t.drive_until_idle().await;
    let done = t.pipeline.jobs.get(&job).await.unwrap().unwrap();
    assert_eq!(done.status, JobStatus::Done);
    assert_eq!(t.reader.reads(), 3, "two failures, then the reading");
    assert_eq!(t.pipeline.queue.depth(Stage::Read).await.unwrap().dead, 0);
}

#[tokio::test(start_paused = true)]
async fn work_that_keeps_failing_is_dead_lettered_and_the_job_says_why() {
    let t = with(&[("STORYTIME_MAX_ATTEMPTS", "3"), ("STORYTIME_RETRY_BASE_MS", "50")]);
    t.reader.fail(ErrorKind::Unavailable, 100);
    let job = submit(&t, "The moon smiled.").await;
    t.drive_until_idle().await;

    let failed = t.pipeline.jobs.get(&job).await.unwrap().unwrap();
    assert_eq!(failed.status, JobStatus::Failed);
    let failure = failed.failure.unwrap();
    assert_eq!(failure.code, "kept_failing");
    assert!(failure.message.contains("tried 3 times"), "{}", failure.message);
    assert!(!failure.message.contains("asked for"), "the detail is for the operator: {}", failure.message);
    let dead = t.queue.dead_letters(Stage::Read);
    assert_eq!(dead.len(), 1);
    assert!(dead[0].1.contains("a failure the test asked for"), "{}", dead[0].1);
}

#[tokio::test(start_paused = true)]
async fn a_permanent_failure_ends_the_job_at_once_without_a_dead_letter() {
    let t = TestPipeline::new();
    t.narrator.fail(ErrorKind::Invalid, 1);
    let job = submit(&t, "Too long for the voice.").await;
    t.drive_until_idle().await;
    let failed = t.pipeline.jobs.get(&job).await.unwrap().unwrap();
    assert_eq!(failed.status, JobStatus::Failed);
    let failure = failed.failure.unwrap();
    assert_eq!(failure.code, "internal");
    assert!(!failure.message.contains("asked for"), "the detail is for the operator: {}", failure.message);
    assert_eq!(t.narrator.calls(), 1, "not retried");
    assert!(t.queue.dead_letters(Stage::Narrate).is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_message_that_does_not_parse_is_dead_lettered() {
    let t = TestPipeline::new();
    let received =
        Received { stage: Stage::Read, body: "not json".into(), receipt: "r".into(), receive_count: 1, sent_ms: None };
    // Put something real in the queue to dead-letter through its receipt.
    t.send(&StageMessage::read(crate::domain::JobId::new(), 0)).await;
    let real = t.queue.receive(Stage::Read, 1, Duration::ZERO, t.workers.visibility).await.unwrap().remove(0);
    let garbage = Received { receipt: real.receipt, ..received };
    assert_eq!(handle(&t.handlers, &t.workers, &garbage).await, Outcome::Settled);
    let dead = t.queue.dead_letters(Stage::Read);
    assert_eq!(dead.len(), 1);
    assert!(dead[0].1.contains("unreadable stage message"), "{}", dead[0].1);
}

#[tokio::test(start_paused = true)]
async fn a_message_received_too_often_without_being_settled_is_given_up() {
    let t = with(&[("STORYTIME_MAX_ATTEMPTS", "2")]);
    let job = submit(&t, "A crashing page.").await;
    // Its handler "crashed" twice: the visibility timeout ran out each time.
    for _ in 0..2 {
        t.queue.receive(Stage::Read, 1, Duration::ZERO, Duration::from_secs(2)).await.unwrap();
        tokio::time::advance(Duration::from_secs(3)).await;
    }
    t.drive_until_idle().await;
    let failed = t.pipeline.jobs.get(&job).await.unwrap().unwrap();
    assert_eq!(failed.status, JobStatus::Failed);
    assert!(t.queue.dead_letters(Stage::Read)[0].1.contains("interrupted 2 times"));
}

#[tokio::test(start_paused = true)]
async fn a_job_whose_message_was_lost_is_requeued_by_the_stall_sweep() {
    let t = with(&[("STORYTIME_STALL_AFTER", "30")]);
    let job = submit(&t, "Lost and found.").await;
    // The page's message is lost.
    let lost = t.queue.receive(Stage::Read, 1, Duration::ZERO, t.workers.visibility).await.unwrap();
    t.queue.ack(&lost[0]).await.unwrap();
    t.drive_until_idle().await;
    assert_eq!(t.pipeline.jobs.get(&job).await.unwrap().unwrap().status, JobStatus::Queued);

    // A minute passes with no progress (jobs keep wall-clock times).
    let mut stalled = t.pipeline.jobs.get(&job).await.unwrap().unwrap();
    stalled.updated_ms -= 60_000;
    t.pipeline.jobs.save(&stalled).await.unwrap();
    assert_eq!(t.pipeline.sweep_stalled().await.unwrap(), 1);
    t.drive_until_idle().await;
    assert_eq!(t.pipeline.jobs.get(&job).await.unwrap().unwrap().status, JobStatus::Done);
}

/// Counts the inbound requests it handles.
#[derive(Default)]
struct Inbound(AtomicUsize);

#[async_trait]
impl InboundHandler for Inbound {
    async fn handle(&self, source: &str, payload: &str) -> Result<(), StageError> {
        assert_eq!((source, payload), ("chat", "{}"));
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn inbound_requests_go_to_the_front_end_that_recorded_them() {
    let inbound = Arc::new(Inbound::default());
    let t = TestPipeline::with(Options { inbound: Some(inbound.clone()), ..Options::default() });
    let message = StageMessage::Inbound { source: "chat".into(), key: "k1".into(), payload: "{}".into() };
    t.send(&message).await;
    t.drive_until_idle().await;
    assert_eq!(inbound.0.load(Ordering::SeqCst), 1);

    // A process without the front end puts them back for one that has it.
    let without = TestPipeline::new();
    without.send(&message).await;
    let received = without.queue.receive(Stage::Inbound, 1, Duration::ZERO, without.workers.visibility).await;
    let outcome = handle(&without.handlers, &without.workers, &received.unwrap()[0]).await;
    assert!(matches!(outcome, Outcome::Retry(_)), "{outcome:?}");
}

#[tokio::test(start_paused = true)]
async fn the_handlers_run_a_pipeline_message_through_its_stage() {
    let t = TestPipeline::new();
    let handlers = Handlers::new(t.pipeline.clone(), None);
    let missing = StageMessage::narrate(crate::domain::JobId::new());
    assert!(handlers.handle(&missing).await.is_ok(), "a message for a job that is gone is done");
}
