//! `/slack/interactions`: the "Read aloud" message shortcut, the buttons on
//! results and the Home tab's settings.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use super::SlackApp;
use super::manifest::SHORTCUT_CALLBACK_ID;

#[derive(Deserialize)]
struct Form {
    payload: String,
}

pub async fn interactions(State(app): State<Arc<SlackApp>>, body: Bytes) -> Response {
    let Some(payload) =
        serde_urlencoded::from_bytes::<Form>(&body).ok().and_then(|f| serde_json::from_str::<Value>(&f.payload).ok())
    else {
        return (StatusCode::BAD_REQUEST, "not an interaction payload").into_response();
    };
    match app.accept_interaction(&payload).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => {
            tracing::error!(error = %e, "could not record a Slack shortcut");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

impl SlackApp {
    /// Records a "Read aloud" shortcut or a click on a result's buttons,
    /// and saves a change made on the Home tab; other interactions are
    /// acknowledged.
    pub(super) async fn accept_interaction(&self, payload: &Value) -> Result<(), storytime_pipeline::PortError> {
        match payload["type"].as_str() {
            Some("message_action") if payload["callback_id"] == SHORTCUT_CALLBACK_ID => {
                self.accept_shortcut(payload).await
            }
            Some("block_actions") => self.accept_block_action(payload).await,
            _ => Ok(()),
        }
    }

    async fn accept_shortcut(&self, payload: &Value) -> Result<(), storytime_pipeline::PortError> {
        let team = payload["team"]["id"].as_str().unwrap_or("T");
        let channel = payload["channel"]["id"].as_str().unwrap_or_default();
        let ts = payload["message"]["ts"].as_str().or_else(|| payload["message_ts"].as_str()).unwrap_or_default();
        let trigger = payload["trigger_id"].as_str().or_else(|| payload["action_ts"].as_str()).unwrap_or_default();
        let key = format!("slack:{team}:{channel}:{ts}:shortcut:{trigger}");
        let request = json!({
            "kind": "shortcut", "key": key, "team": team, "channel": channel,
            "user": payload["user"]["id"], "message": payload["message"], "response_url": payload["response_url"],
        });
        self.record(key, request).await
    }

    /// A button or menu: on the Home tab, the setting is saved at once and
    /// the tab redrawn behind the answer; on a result, the new narration
    /// or email is recorded for the inbound stage.
    async fn accept_block_action(&self, payload: &Value) -> Result<(), storytime_pipeline::PortError> {
        let team = payload["team"]["id"].as_str().or_else(|| payload["user"]["team_id"].as_str()).unwrap_or("T");
        let Some(user) = payload["user"]["id"].as_str() else { return Ok(()) };
        let Some(action) = payload["actions"].as_array().and_then(|a| a.first()) else { return Ok(()) };
        let action_id = action["action_id"].as_str().unwrap_or_default();
        let at = action["action_ts"].as_str().or_else(|| payload["trigger_id"].as_str()).unwrap_or_default();
        let sender = super::commands::user_key(team, user);
        if payload["view"]["type"] == "home" {
            let note = match self.pipeline.rates.commands.check(&sender) {
                Ok(()) => self.home_action(team, user, action).await?,
                Err(wait) => {
                    format!("That's a lot of changes in a minute; try again in {} seconds.", wait.as_secs().max(1))
                }
            };
            let key = format!("slack:{team}:home:{user}:{at}");
            return self
                .record(key.clone(), json!({ "kind": "home", "key": key, "team": team, "user": user, "note": note }))
                .await;
        }
        if !RESULT_ACTIONS.contains(&action_id) {
            return Ok(());
        }
        let channel = payload["container"]["channel_id"].as_str().or_else(|| payload["channel"]["id"].as_str());
        let message = &payload["message"];
        let thread = message["thread_ts"].as_str().or_else(|| message["ts"].as_str());
        let (Some(channel), Some(thread)) = (channel, thread) else { return Ok(()) };
        let job = action["value"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| action["block_id"].as_str().and_then(|b| b.strip_prefix(CONTROLS_BLOCK)).map(str::to_owned));
        let key = format!("slack:{team}:{channel}:{thread}:action:{action_id}:{at}");
        let request = json!({
            "kind": "action", "key": key, "team": team, "channel": channel, "thread": thread, "user": user,
            "action": action_id, "job": job, "voice": action["selected_option"]["value"],
            "response_url": payload["response_url"],
        });
        self.record(key, request).await
    }
}

/// The buttons on a result.
pub const SLOWER: &str = "storytime_slower";
pub const VOICE: &str = "storytime_voice";
pub const EMAIL: &str = "storytime_email";
const RESULT_ACTIONS: &[&str] = &[SLOWER, VOICE, EMAIL];
/// The controls' block is named for its job: `storytime_controls:<job>`.
pub const CONTROLS_BLOCK: &str = "storytime_controls:";
