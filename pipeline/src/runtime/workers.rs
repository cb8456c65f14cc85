//! The long-running workers: one poller per stage receives as many
//! messages as it has idle workers and handles each in its own task; the
//! stall sweep re-queues jobs whose messages were lost.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::handlers::Handlers;
use super::policy::{Outcome, backoff, handle, settle};
use crate::domain::Stage;
use crate::ports::Received;
use crate::settings::WorkerSettings;

/// How long one receive call waits for a message (SQS's maximum long poll).
const LONG_POLL: Duration = Duration::from_secs(20);

/// Most messages one receive call asks for (SQS's limit).
const RECEIVE_BATCH: usize = 10;

/// How long handlers in progress may take to finish after a stop signal;
/// what is still running then is handed back to the queue.
pub const DRAIN: Duration = Duration::from_secs(20);

/// Runs the given stages' workers, plus the stall sweep, until `shutdown`
/// turns true; then lets handlers in progress finish for up to [`DRAIN`],
/// and hands back to the queue (visible again at once, for another worker
/// or the next start) the messages whose handlers have not.
pub async fn run(handlers: Arc<Handlers>, stages: &[Stage], settings: WorkerSettings, shutdown: watch::Receiver<bool>) {
    let mut tasks = JoinSet::new();
    for &stage in stages {
        let n = match stage {
            Stage::Inbound => settings.inbound,
            Stage::Read => settings.read,
            Stage::Narrate => settings.narrate,
            Stage::Deliver => settings.deliver,
        };
        // Zero is allowed: the stage then runs in another process.
        if n > 0 {
            let poller = Poller { handlers: handlers.clone(), stage, workers: n, settings: settings.clone() };
            tasks.spawn(poller.run(shutdown.clone()));
        }
    }
    tasks.spawn(sweep(handlers, settings.stall_after, shutdown));
    while tasks.join_next().await.is_some() {}
}

/// Re-queues stalled jobs every half stall period.
async fn sweep(handlers: Arc<Handlers>, stall_after: Duration, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval((stall_after / 2).max(Duration::from_secs(1)));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        match handlers.pipeline.sweep_stalled().await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(jobs = n, "re-queued stalled jobs"),
            Err(e) => tracing::warn!(error = %e, "stall sweep failed"),
        }
    }
}

/// One stage's consumer: receives as many messages as it has idle workers
/// (up to ten per call, long-polling) and handles each in its own task.
/// While every worker is busy it does not poll at all.
struct Poller {
    handlers: Arc<Handlers>,
    stage: Stage,
    workers: usize,
    settings: WorkerSettings,
}

impl Poller {
    async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let _alive = self.handlers.liveness.running(self.stage);
        let idle = Arc::new(Semaphore::new(self.workers));
        let in_flight: InFlight = Arc::default();
        let mut running = JoinSet::new();
        let mut failures = 0u32;
        loop {
            while running.try_join_next().is_some() {}
            if *shutdown.borrow() {
                break;
            }
            let first = tokio::select! {
                p = idle.clone().acquire_owned() => p.expect("the semaphore is never closed"),
                _ = shutdown.changed() => break,
            };
            let mut permits = vec![first];
            while permits.len() < RECEIVE_BATCH {
                match idle.clone().try_acquire_owned() {
                    Ok(p) => permits.push(p),
                    Err(_) => break,
                }
            }
            let queue = &self.handlers.pipeline.queue;
            let received = tokio::select! {
                r = queue.receive(self.stage, permits.len(), LONG_POLL, self.settings.visibility) => r,
                _ = shutdown.changed() => break,
            };
            match received {
                Ok(batch) => {
                    failures = 0;
                    for (message, permit) in batch.into_iter().zip(permits) {
                        let (handlers, settings, in_flight) =
                            (self.handlers.clone(), self.settings.clone(), in_flight.clone());
                        in_flight.lock().expect("in-flight lock").insert(message.receipt.clone(), message.clone());
                        running.spawn(async move {
                            let receipt = message.receipt.clone();
                            process(&handlers, &settings, message).await;
                            in_flight.lock().expect("in-flight lock").remove(&receipt);
                            drop(permit);
                        });
                    }
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(stage = %self.stage, error = %e, "receiving from the queue failed");
                    tokio::time::sleep(backoff(Duration::from_millis(500), failures)).await;
                }
            }
        }
        if tokio::time::timeout(DRAIN, async { while running.join_next().await.is_some() {} }).await.is_err() {
            running.abort_all();
            let left: Vec<Received> = in_flight.lock().expect("in-flight lock").drain().map(|(_, r)| r).collect();
            tracing::warn!(stage = %self.stage, messages = left.len(), "work still running after {DRAIN:?}: handing it back");
            for received in &left {
                settle(self.handlers.pipeline.queue.set_visibility(received, Duration::ZERO).await);
            }
        }
    }
}

/// Messages being handled, by receipt, to hand back if the process stops.
type InFlight = Arc<std::sync::Mutex<std::collections::HashMap<String, Received>>>;

/// Handles a message and settles it with the queue.
async fn process(handlers: &Handlers, settings: &WorkerSettings, received: Received) {
    let queue = &handlers.pipeline.queue;
    match handle(handlers, settings, &received).await {
        Outcome::Done => settle(queue.ack(&received).await),
        Outcome::Retry(delay) => settle(queue.set_visibility(&received, delay).await),
        Outcome::Settled => {}
    }
}
