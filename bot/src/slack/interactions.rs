//! `/slack/interactions`: the "Read aloud" message shortcut.

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
    /// Records a "Read aloud" shortcut; other interactions are acknowledged.
    pub(super) async fn accept_interaction(&self, payload: &Value) -> Result<(), storytime_pipeline::PortError> {
        if payload["type"] != "message_action" || payload["callback_id"] != SHORTCUT_CALLBACK_ID {
            return Ok(());
        }
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
}
