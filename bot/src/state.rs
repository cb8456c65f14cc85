//! What every request handler can reach. Ports only: the HTTP front end
//! never knows which adapter is behind them.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use storytime_pipeline::Pipeline;
use storytime_pipeline::links::MediaLinks;
use storytime_pipeline::ports::BlobStore;
use storytime_pipeline::settings::Secret;

use crate::health::{EngineHealth, StorageReadings, WorkerHealth};
use crate::slack::SlackApp;

#[derive(Clone)]
pub struct AppState {
    pub pipeline: Arc<Pipeline>,
    /// Where `/media/...` streams blobs from.
    pub blobs: Arc<dyn BlobStore>,
    /// Checks the links `/media/...` answers; `None` when links point at a
    /// cloud store instead of this process.
    pub media_links: Option<Arc<MediaLinks>>,
    /// The host name of `STORYTIME_PUBLIC_URL`: with the API open, the
    /// only name (besides IP addresses and `localhost`) it answers to.
    /// `None` behind API Gateway, which routes only its own names here.
    pub public_host: Option<Arc<str>>,
    /// The largest request body that reaches this process, when something
    /// in front of it sets one (API Gateway); the web page keeps a book's
    /// photos under it.
    pub request_limit: Option<usize>,
    /// The bearer tokens the REST API accepts (none, and no JWT issuer,
    /// means open) and the Slack signing secrets, read again when rotated.
    pub credentials: Arc<crate::secrets::Credentials>,
    /// Checks bearer JWTs, when an issuer is configured.
    pub jwt: Option<Arc<crate::jwt::JwtVerifier>>,
    /// The Slack app, when configured.
    pub slack: Option<Arc<SlackApp>>,
    /// The metrics `/metrics` serves, when this process records them.
    pub metrics: Option<PrometheusHandle>,
    /// A bearer token `/metrics` requires (`STORYTIME_METRICS_TOKEN`).
    pub metrics_token: Option<Arc<Secret>>,
    /// The engines `/healthz` checks.
    pub engines: Option<Arc<EngineHealth>>,
    /// The workers `/healthz` expects to run in this process.
    pub workers: Option<Arc<WorkerHealth>>,
    /// The queue depths and job counts `/healthz` and `/metrics` show.
    pub storage: Arc<StorageReadings>,
}
