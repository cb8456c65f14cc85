//! The Slack app: its routes, its inbound handler and what they share.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use axum::Router;
use axum::routing::{get, post};
use storytime_pipeline::{Pipeline, PortError, StageMessage};

use super::api::SlackApi;
use super::files::{FileFetcher, SlackHosts};
use super::installs::Workspaces;
use super::verify::{self, Verifier};
use super::{commands, events, interactions, manifest, oauth, socket};
use crate::settings::SlackSettings;

/// The source name of Slack's inbound messages.
pub const SOURCE: &str = "slack";

/// `STORYTIME_SLACK_TRIGGER`: which shared photos are read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Trigger {
    /// Every photo shared where the app is.
    #[default]
    All,
    /// Photos shared with an @mention, in a direct message, or through the
    /// shortcut or `/storytime last`.
    Mentions,
}

pub struct SlackApp {
    pub(super) pipeline: Arc<Pipeline>,
    /// Each workspace's bot token.
    pub(super) workspaces: Arc<Workspaces>,
    /// Which photos are read.
    pub(super) trigger: Trigger,
    verifier: Verifier,
    pub(super) files: FileFetcher,
    /// The Socket Mode connection: not used, connecting, or connected.
    pub(super) socket: AtomicU8,
}

pub(super) const SOCKET_OFF: u8 = 0;
pub(super) const SOCKET_CONNECTING: u8 = 1;
pub(super) const SOCKET_CONNECTED: u8 = 2;

impl SlackApp {
    /// The app speaking through `workspaces` (which the pipeline's
    /// messenger also uses), submitting jobs to `pipeline`.
    pub fn new(
        settings: &SlackSettings,
        credentials: Arc<crate::secrets::Credentials>,
        workspaces: Arc<Workspaces>,
        pipeline: Arc<Pipeline>,
    ) -> Arc<Self> {
        let hosts = SlackHosts::new(&settings.api_url);
        let files = FileFetcher::new(hosts, pipeline.config.limits.image.max_bytes);
        let socket = AtomicU8::new(if settings.app_token.is_some() { SOCKET_CONNECTING } else { SOCKET_OFF });
        Arc::new(Self {
            verifier: Verifier::new(credentials),
            pipeline,
            workspaces,
            trigger: settings.trigger,
            files,
            socket,
        })
    }

    /// The client for `team`'s workspace.
    pub(super) async fn api(&self, team: &str) -> Result<SlackApi, super::api::SlackError> {
        self.workspaces.api(team).await
    }

    /// The Socket Mode connection's state, when Socket Mode is used.
    pub fn socket_mode_status(&self) -> Option<&'static str> {
        match self.socket.load(Ordering::SeqCst) {
            SOCKET_CONNECTING => Some("connecting"),
            SOCKET_CONNECTED => Some("connected"),
            _ => None,
        }
    }

    /// `/slack/events`, `/slack/commands` and `/slack/interactions`, each
    /// behind signature verification, and the install pages (OAuth).
    pub fn routes(self: &Arc<Self>) -> Router {
        let verify = axum::middleware::from_fn_with_state(self.verifier.clone(), verify::require_signature);
        let signed = Router::new()
            .route(manifest::EVENTS_PATH, post(events::events))
            .route(manifest::COMMANDS_PATH, post(commands::commands))
            .route(manifest::INTERACTIONS_PATH, post(interactions::interactions))
            .layer(verify);
        let install = Router::new()
            .route(manifest::INSTALL_PATH, get(oauth::install))
            .route(manifest::REDIRECT_PATH, get(oauth::redirect));
        signed.merge(install).with_state(self.clone())
    }

    /// Connects over Socket Mode with the app-level token, retrying with
    /// backoff until Slack answers, and serves the same handlers there
    /// until the process stops (the client reconnects a dropped socket).
    pub async fn run_socket_mode(
        self: Arc<Self>,
        app_token: &storytime_pipeline::settings::Secret,
    ) -> anyhow::Result<()> {
        socket::run(self, app_token).await
    }

    /// Records an inbound request durably (the acknowledgement waits for it).
    pub(super) async fn record(&self, key: String, payload: serde_json::Value) -> Result<(), PortError> {
        self.record_raw(key, payload.to_string()).await
    }

    /// Records an inbound request already in its JSON form.
    pub(super) async fn record_raw(&self, key: String, payload: String) -> Result<(), PortError> {
        let message = StageMessage::Inbound { source: SOURCE.into(), key, payload };
        self.pipeline.queue.send(&message, Default::default()).await
    }
}
