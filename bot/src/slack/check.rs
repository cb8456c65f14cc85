//! The Slack app's part in `storytime doctor`: is the bot token well
//! formed, does Slack accept it (`auth.test`), and does it carry every
//! scope the code needs (the `x-oauth-scopes` answer header)?

use std::time::Duration;

use async_trait::async_trait;
use storytime_pipeline::setup::{Finding, Setup};

use super::api::SlackApi;
use super::manifest::scopes_for;
use crate::settings::SlackSettings;

pub struct SlackCheck {
    settings: SlackSettings,
    /// The client with `SLACK_BOT_TOKEN`, when set.
    api: Option<SlackApi>,
    /// How Slack reaches this app, for the report.
    mode: String,
}

impl SlackCheck {
    pub fn new(settings: &SlackSettings, api: Option<SlackApi>, public_url: &str) -> Self {
        let mut mode = match &settings.app_token {
            Some(_) => "Socket Mode".to_owned(),
            None => format!("HTTP at {public_url}/slack/events"),
        };
        if settings.oauth.is_some() {
            mode.push_str(&format!("; installs into any workspace at {public_url}/slack/install"));
        }
        Self { settings: settings.clone(), api, mode }
    }
}

/// The scopes the code needs (`needed`) that `granted` lacks.
fn missing_scopes(needed: Vec<&'static str>, granted: &[String]) -> Vec<&'static str> {
    needed.into_iter().filter(|s| !granted.iter().any(|g| g == s)).collect()
}

#[async_trait]
impl Setup for SlackCheck {
    async fn check(&self) -> Vec<Finding> {
        let api_url = &self.settings.api_url;
        let (Some(token), Some(api)) = (&self.settings.bot_token, &self.api) else {
            // A distributed app has no token of its own: each workspace
            // brings one when it installs the app.
            return vec![Finding::ok("slack", format!("no SLACK_BOT_TOKEN; {}", self.mode))];
        };
        if !token.expose().starts_with("xoxb-") && !token.expose().starts_with("xoxe.xoxb-") {
            return vec![Finding::missing(
                "slack",
                "SLACK_BOT_TOKEN is not a bot token (xoxb-…)",
                "copy the Bot User OAuth Token from OAuth & Permissions",
            )];
        }
        let network = "check the network, or SLACK_API_URL";
        vec![match tokio::time::timeout(Duration::from_secs(10), api.whoami()).await {
            Ok(Ok(me)) => {
                let who = format!("bot {} in workspace {}; {}", me.user, me.team, self.mode);
                match me.scopes.as_deref().map(|granted| missing_scopes(scopes_for(self.settings.trigger), granted)) {
                    Some(missing) if !missing.is_empty() => Finding::missing(
                        "slack",
                        format!("{who}; the token lacks the scopes {}", missing.join(", ")),
                        "add them under OAuth & Permissions → Bot Token Scopes (or re-create the app from \
                         manifest.yml), reinstall the app to the workspace and copy the new Bot User OAuth Token",
                    ),
                    Some(_) => Finding::ok("slack", format!("{who}; every scope the app needs is granted")),
                    None => Finding::ok("slack", format!("{who}; Slack did not list the granted scopes")),
                }
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slack::manifest::bot_scopes;

    #[test]
    fn missing_scopes_are_named() {
        let all: Vec<String> = bot_scopes().into_iter().map(String::from).collect();
        assert!(missing_scopes(bot_scopes(), &all).is_empty());
        let without: Vec<String> = all.iter().filter(|s| *s != "files:read").cloned().collect();
        assert_eq!(missing_scopes(bot_scopes(), &without), ["files:read"]);
    }
}
