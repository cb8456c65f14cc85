use async_trait::async_trait;

use crate::domain::StageError;

/// Handles requests a front end recorded as `StageMessage::Inbound` (a
/// Slack event, a shortcut): fetching what they refer to and submitting
/// jobs. Implemented by the front end; runs in the inbound stage's workers
/// with the same retries and dead-lettering as every stage.
#[async_trait]
pub trait InboundHandler: Send + Sync {
    /// `source` names the front end (e.g. `slack`); `payload` is what it
    /// recorded. Must be idempotent: a request may be handled twice.
    async fn handle(&self, source: &str, payload: &str) -> Result<(), StageError>;
}
