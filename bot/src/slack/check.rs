//! The Slack app's part in `storytime doctor`: are the tokens well formed,
//! and does Slack accept the bot token?

use std::time::Duration;

use async_trait::async_trait;
use storytime_pipeline::setup::{Finding, Setup};

use super::api::SlackApi;
use crate::settings::SlackSettings;

pub struct SlackCheck {
    settings: SlackSettings,
    api: SlackApi,
    /// How Slack reaches this app, for the report.
    mode: String,
}

impl SlackCheck {
    pub fn new(settings: &SlackSettings, api: SlackApi, public_url: &str) -> Self {
        let mode = match &settings.app_token {
            Some(_) => "Socket Mode".to_owned(),
            None => format!("HTTP at {public_url}/slack/events"),
        };
        Self { settings: settings.clone(), api, mode }
    }
}

#[async_trait]
impl Setup for SlackCheck {
    async fn check(&self) -> Vec<Finding> {
        let api_url = &self.settings.api_url;
        if !self.settings.bot_token.expose().starts_with("xoxb-") {
            return vec![Finding::missing(
                "slack",
                "SLACK_BOT_TOKEN is not a bot token (xoxb-…)",
                "copy the Bot User OAuth Token from OAuth & Permissions",
            )];
        }
        let network = "check the network, or SLACK_API_URL";
        vec![match tokio::time::timeout(Duration::from_secs(10), self.api.whoami()).await {
            Ok(Ok((team, user))) => Finding::ok("slack", format!("bot {user} in workspace {team}; {}", self.mode)),
            Ok(Err(e)) => {
                let fix = match e.code() {
                    Some(_) => "reinstall the app and copy its current Bot User OAuth Token",
                    None => network,
                };
                Finding::missing("slack", format!("{e} (at {api_url})"), fix)
            }
            Err(_) => Finding::missing("slack", format!("{api_url} did not answer within 10 s"), network),
        }]
    }
}
