//! What every request handler can reach.

use std::sync::Arc;

use storytime_pipeline::Pipeline;
use storytime_pipeline::adapters::local::FsBlobStore;

#[derive(Clone)]
pub struct AppState {
    pub pipeline: Arc<Pipeline>,
    /// The local blob store, when links point at `/media/...` here.
    pub media: Option<Arc<FsBlobStore>>,
    /// Bearer tokens the REST API accepts; empty means open.
    pub api_keys: Arc<Vec<String>>,
}
