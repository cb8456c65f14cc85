//! What every request handler can reach.

use std::sync::Arc;

use storytime_pipeline::Pipeline;
use storytime_pipeline::adapters::local::FsBlobStore;
use storytime_pipeline::settings::Secret;

use crate::slack::SlackApp;

#[derive(Clone)]
pub struct AppState {
    pub pipeline: Arc<Pipeline>,
    /// The local blob store, when links point at `/media/...` here.
    pub media: Option<Arc<FsBlobStore>>,
    /// Bearer tokens the REST API accepts; empty means open.
    pub api_keys: Arc<Vec<Secret>>,
    /// The Slack app, when configured.
    pub slack: Option<Arc<SlackApp>>,
}
