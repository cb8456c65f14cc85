//! What a worker runs: the pipeline's stages, and the inbound handler of
//! the front end that recorded inbound requests (the Slack app).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::domain::{Stage, StageError, StageMessage};
use crate::ports::InboundHandler;
use crate::stages::{Pipeline, UPLOAD_SOURCE};

pub struct Handlers {
    pub pipeline: Arc<Pipeline>,
    /// Handles `StageMessage::Inbound`; `None` in a process without a
    /// chat front end.
    pub inbound: Option<Arc<dyn InboundHandler>>,
    /// Which stages' workers are running, for health checks.
    pub liveness: Liveness,
}

impl Handlers {
    pub fn new(pipeline: Arc<Pipeline>, inbound: Option<Arc<dyn InboundHandler>>) -> Self {
        Self { pipeline, inbound, liveness: Liveness::default() }
    }
}

/// Which stages have a worker poller running in this process. A poller
/// that stops (or panics) is no longer counted.
#[derive(Default)]
pub struct Liveness {
    running: [AtomicUsize; 4],
}

impl Liveness {
    /// Counts a poller of `stage` as running until the guard is dropped.
    pub fn running(&self, stage: Stage) -> impl Drop + '_ {
        let counter = &self.running[index(stage)];
        counter.fetch_add(1, Ordering::SeqCst);
        Running(counter)
    }

    /// Whether a poller of `stage` runs.
    pub fn is_running(&self, stage: Stage) -> bool {
        self.running[index(stage)].load(Ordering::SeqCst) > 0
    }
}

struct Running<'a>(&'a AtomicUsize);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn index(stage: Stage) -> usize {
    Stage::ALL.iter().position(|s| *s == stage).expect("every stage is in ALL")
}

impl Handlers {
    /// Runs the stage a message belongs to.
    pub async fn handle(&self, message: &StageMessage) -> Result<(), StageError> {
        match (message, &self.inbound) {
            (StageMessage::Inbound { source, payload, .. }, _) if source == UPLOAD_SOURCE => {
                if payload.is_empty() {
                    tracing::info!("storage says its notifications reach this queue");
                    return Ok(());
                }
                self.pipeline.take_upload_message(payload).await
            }
            (StageMessage::Inbound { source, payload, .. }, Some(handler)) => handler.handle(source, payload).await,
            (StageMessage::Inbound { source, .. }, None) => Err(StageError::retry(
                format!("{source} requests"),
                format!("no handler in this process; run the inbound stage where {source} is configured"),
            )),
            (message, _) => self.pipeline.handle(message).await,
        }
    }
}
