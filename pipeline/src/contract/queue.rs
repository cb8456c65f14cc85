//! The queue contract: SQS semantics on every backend.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::domain::{JobId, Stage, StageMessage};
use crate::ports::Queue;

const NOW: Duration = Duration::ZERO;
/// Long enough for a slow backend to answer, short enough for a test.
const WAIT: Duration = Duration::from_secs(1);
const HIDE: Duration = Duration::from_secs(30);

async fn counts(q: &dyn Queue, stage: Stage) -> (u64, u64, u64) {
    q.depth(stage).await.unwrap().counts()
}

/// Runs every queue check, each on a fresh queue from `make`.
pub async fn queue<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Queue>>,
{
    a_received_message_is_hidden_until_acknowledged_or_released(&*make().await).await;
    stages_have_separate_queues_and_delays_are_honoured(&*make().await).await;
    a_message_not_settled_in_time_is_received_again(&*make().await).await;
    many_messages_go_out_together_and_come_back_at_most_as_many_as_asked(&*make().await).await;
    dead_letters_leave_the_queue_and_are_counted(&*make().await).await;
    a_waiting_receiver_wakes_when_a_message_arrives(make().await).await;
}

async fn a_received_message_is_hidden_until_acknowledged_or_released(q: &dyn Queue) {
    let msg = StageMessage::narrate(JobId::new());
    q.send(&msg, NOW).await.unwrap();
    let got = q.receive(Stage::Narrate, 10, WAIT, HIDE).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].message().unwrap(), msg);
    assert_eq!((got[0].stage, got[0].receive_count), (Stage::Narrate, 1));
    assert!(q.receive(Stage::Narrate, 10, NOW, HIDE).await.unwrap().is_empty(), "a received message is hidden");
    assert_eq!(counts(q, Stage::Narrate).await, (0, 1, 0));

    q.set_visibility(&got[0], NOW).await.unwrap();
    let again = q.receive(Stage::Narrate, 10, WAIT, HIDE).await.unwrap();
    assert_eq!(again.len(), 1, "a released message comes back");
    assert_eq!(again[0].receive_count, 2);
    q.ack(&again[0]).await.unwrap();
    assert_eq!(counts(q, Stage::Narrate).await, (0, 0, 0));
}

async fn stages_have_separate_queues_and_delays_are_honoured(q: &dyn Queue) {
    q.send(&StageMessage::read(JobId::new(), 0), Duration::from_secs(600)).await.unwrap();
    q.send(&StageMessage::Deliver { job: JobId::new(), recipient: 0 }, NOW).await.unwrap();
    assert!(q.receive(Stage::Read, 10, NOW, HIDE).await.unwrap().is_empty(), "a delayed message waits");
    assert!(q.receive(Stage::Narrate, 10, NOW, HIDE).await.unwrap().is_empty(), "another stage's queue is empty");
    assert_eq!(q.receive(Stage::Deliver, 10, WAIT, HIDE).await.unwrap().len(), 1);
    assert_eq!(q.depth(Stage::Read).await.unwrap().waiting, 1, "a delayed message counts as waiting");
}

async fn a_message_not_settled_in_time_is_received_again(q: &dyn Queue) {
    let msg = StageMessage::read(JobId::new(), 2);
    q.send(&msg, NOW).await.unwrap();
    let first = q.receive(Stage::Read, 1, WAIT, Duration::from_secs(1)).await.unwrap();
    assert_eq!(first.len(), 1);
    // Its handler died: once the visibility timeout passes it is back.
    let again = q.receive(Stage::Read, 1, Duration::from_secs(5), HIDE).await.unwrap();
    assert_eq!(again.len(), 1, "the message came back after its visibility timeout");
    assert_eq!((again[0].message().unwrap(), again[0].receive_count), (msg, 2));
}

async fn many_messages_go_out_together_and_come_back_at_most_as_many_as_asked(q: &dyn Queue) {
    let job = JobId::new();
    let pages: Vec<StageMessage> = (0..12).map(|page| StageMessage::read(job.clone(), page)).collect();
    q.send_many(&pages).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < pages.len() {
        let batch = q.receive(Stage::Read, 5, WAIT, HIDE).await.unwrap();
        assert!(!batch.is_empty() && batch.len() <= 5, "{} messages for a receive of at most 5", batch.len());
        seen.extend(batch);
    }
    let mut got: Vec<StageMessage> = seen.iter().map(|r| r.message().unwrap()).collect();
    got.sort_by_key(|m| match m {
        StageMessage::Read { page, .. } => *page,
        _ => usize::MAX,
    });
    assert_eq!(got, pages);
    for r in &seen {
        q.ack(r).await.unwrap();
    }
    assert_eq!(counts(q, Stage::Read).await, (0, 0, 0));
}

async fn dead_letters_leave_the_queue_and_are_counted(q: &dyn Queue) {
    q.send(&StageMessage::narrate(JobId::new()), NOW).await.unwrap();
    let got = q.receive(Stage::Narrate, 1, WAIT, HIDE).await.unwrap();
    q.dead_letter(&got[0], "kept failing").await.unwrap();
    assert_eq!(counts(q, Stage::Narrate).await, (0, 0, 1));
    assert!(q.receive(Stage::Narrate, 1, NOW, HIDE).await.unwrap().is_empty());
}

async fn a_waiting_receiver_wakes_when_a_message_arrives(q: Arc<dyn Queue>) {
    let receiver = {
        let q = q.clone();
        tokio::spawn(async move { q.receive(Stage::Deliver, 1, Duration::from_secs(20), HIDE).await })
    };
    tokio::task::yield_now().await;
    q.send(&StageMessage::Deliver { job: JobId::new(), recipient: 0 }, NOW).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(15), receiver).await.expect("woken").unwrap().unwrap();
    assert_eq!(got.len(), 1);
}
