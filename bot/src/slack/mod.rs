//! The Slack app: photos shared in channels, DMs or with an @mention are
//! read aloud and answered in their thread; `/storytime` and the "Read
//! aloud" message shortcut; over HTTP (signed requests) or Socket Mode.
//!
//! Every Slack request is verified, recorded durably as an inbound message
//! of the pipeline and acknowledged at once; the work (downloading the
//! photos, submitting the job) happens behind it in the inbound stage, and
//! the result comes back through [`messenger::SlackMessenger`], the
//! pipeline's chat port.

mod api;
mod commands;
mod events;
mod files;
mod inbound;
mod interactions;
mod messenger;
mod mrkdwn;
pub mod registration;
mod socket;
pub mod verify;

use std::sync::Arc;

use axum::Router;
use axum::routing::post;
use storytime_pipeline::settings::SlackSettings;
use storytime_pipeline::stages::FrontEnd;
use storytime_pipeline::{Pipeline, StageMessage};

pub use api::SlackApi;
pub use verify::{Verifier, sign};

use files::FileFetcher;
pub use files::SlackHosts;

/// The source name of Slack's inbound messages.
pub const SOURCE: &str = "slack";

pub struct SlackApp {
    pipeline: Arc<Pipeline>,
    api: SlackApi,
    verifier: Verifier,
    files: FileFetcher,
}

impl SlackApp {
    pub fn new(settings: &SlackSettings, pipeline: Arc<Pipeline>) -> std::io::Result<Arc<Self>> {
        let hosts = SlackHosts::new(&settings.api_url);
        let api = SlackApi::new(&settings.api_url, &settings.bot_token, hosts.clone())?;
        let files = FileFetcher::new(settings.bot_token.clone(), hosts, pipeline.config.limits.max_bytes);
        Ok(Arc::new(Self { verifier: Verifier::new(settings.signing_secrets.clone()), pipeline, api, files }))
    }

    /// Plugs the app into the pipeline: chat delivery and inbound requests.
    pub fn attach(self: &Arc<Self>) {
        self.pipeline.attach(FrontEnd {
            messenger: Some(Arc::new(messenger::SlackMessenger::new(self.api.clone()))),
            inbound: Some(self.clone()),
        });
    }

    /// `/slack/events`, `/slack/commands` and `/slack/interactions`, each
    /// behind signature verification.
    pub fn routes(self: &Arc<Self>) -> Router {
        let verify = axum::middleware::from_fn_with_state(self.verifier.clone(), verify::require_signature);
        Router::new()
            .route(registration::EVENTS_PATH, post(events::events))
            .route(registration::COMMANDS_PATH, post(commands::commands))
            .route(registration::INTERACTIONS_PATH, post(interactions::interactions))
            .layer(verify)
            .with_state(self.clone())
    }

    /// Connects over Socket Mode with the app-level token and serves the
    /// same handlers there, until the process stops.
    pub async fn run_socket_mode(
        self: Arc<Self>,
        app_token: &storytime_pipeline::settings::Secret,
    ) -> anyhow::Result<()> {
        socket::run(self, app_token).await
    }

    /// Records an inbound request durably (the acknowledgement waits for it).
    async fn record(&self, key: String, payload: serde_json::Value) -> Result<(), storytime_pipeline::PortError> {
        self.record_raw(key, payload.to_string()).await
    }

    /// Records an inbound request already in its JSON form.
    async fn record_raw(&self, key: String, payload: String) -> Result<(), storytime_pipeline::PortError> {
        let message = StageMessage::Inbound { source: SOURCE.into(), key, payload };
        self.pipeline.queue.send(&message, Default::default()).await
    }
}
