//! The commands of the `storytime` binary.

pub mod doctor;
pub mod init;
pub mod lambda;
pub mod narrate;
pub mod serve;
pub mod worker;

use std::sync::Arc;

use storytime_pipeline::Pipeline;
use storytime_pipeline::settings::Settings;

use crate::slack::SlackApp;

/// The Slack app, when configured, plugged into the pipeline.
pub(crate) fn slack_app(settings: &Settings, pipeline: &Arc<Pipeline>) -> anyhow::Result<Option<Arc<SlackApp>>> {
    let Some(slack) = &settings.slack else {
        return Ok(None);
    };
    let app = SlackApp::new(slack, pipeline.clone())?;
    app.attach();
    let mode = if slack.app_token.is_some() { "Socket Mode" } else { "HTTP (/slack/events)" };
    tracing::info!(api = %slack.api_url, mode, "Slack app enabled");
    Ok(Some(app))
}
