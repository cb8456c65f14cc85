//! What a worker runs: the pipeline's stages, and the inbound handler of
//! the front end that recorded inbound requests (the Slack app).

use std::sync::Arc;

use crate::domain::{StageError, StageMessage};
use crate::ports::InboundHandler;
use crate::stages::Pipeline;

pub struct Handlers {
    pub pipeline: Arc<Pipeline>,
    /// Handles `StageMessage::Inbound`; `None` in a process without a
    /// chat front end.
    pub inbound: Option<Arc<dyn InboundHandler>>,
}

impl Handlers {
    /// Runs the stage a message belongs to.
    pub async fn handle(&self, message: &StageMessage) -> Result<(), StageError> {
        match (message, &self.inbound) {
            (StageMessage::Inbound { source, payload, .. }, Some(handler)) => handler.handle(source, payload).await,
            (StageMessage::Inbound { source, .. }, None) => Err(StageError::retry(
                format!("{source} requests"),
                format!("no handler in this process; run the inbound stage where {source} is configured"),
            )),
            (message, _) => self.pipeline.handle(message).await,
        }
    }
}
