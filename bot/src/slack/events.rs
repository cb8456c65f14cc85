//! `/slack/events`: the Events API. Answers Slack's URL check, and records
//! each photo event for the inbound stage before acknowledging it.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};

use super::SlackApp;

pub async fn events(State(app): State<Arc<SlackApp>>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(envelope) = serde_json::from_slice::<Value>(&body) else {
        // Slack must not retry what will never parse.
        return (StatusCode::BAD_REQUEST, [("x-slack-no-retry", "1")], "not JSON").into_response();
    };
    if envelope["type"] == "url_verification" {
        return Json(json!({ "challenge": envelope["challenge"] })).into_response();
    }
    if let Some(retry) = headers.get("x-slack-retry-num").and_then(|v| v.to_str().ok()) {
        tracing::info!(retry, reason = ?headers.get("x-slack-retry-reason"), "Slack is retrying an event");
    }
    match app.accept_event(&envelope).await {
        Ok(()) => StatusCode::OK.into_response(),
        // Not recorded: let Slack retry it.
        Err(e) => {
            tracing::error!(error = %e, "could not record a Slack event");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

impl SlackApp {
    /// Records an event the app must act on; others are acknowledged and
    /// dropped. Shared by HTTP and Socket Mode.
    pub(super) async fn accept_event(&self, envelope: &Value) -> Result<(), storytime_pipeline::PortError> {
        match triage(envelope) {
            Some((key, payload)) => self.record(key, payload).await,
            None => Ok(()),
        }
    }
}

/// Decides at once what an event asks for. Photo messages and mentions
/// become inbound requests keyed by workspace, channel and message, so the
/// same message arriving twice (a retry, or as both `message` and
/// `app_mention`) is one request. Bots' messages, the app's own uploads,
/// edits and deletions are ignored.
pub(super) fn triage(envelope: &Value) -> Option<(String, Value)> {
    if envelope["type"] != "event_callback" {
        return None;
    }
    let event = &envelope["event"];
    let team = envelope["team_id"].as_str().or_else(|| event["team"].as_str()).unwrap_or("T");
    if !event["bot_id"].is_null() || event["subtype"] == "bot_message" {
        return None;
    }
    let bot_user = envelope["authorizations"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["is_bot"] == true))
        .and_then(|a| a["user_id"].as_str());
    let user = event["user"].as_str()?;
    if Some(user) == bot_user {
        return None;
    }
    let channel = event["channel"].as_str()?;
    let ts = event["ts"].as_str()?;
    let has_files = event["files"].as_array().is_some_and(|f| !f.is_empty());
    let kind = match event["type"].as_str()? {
        "message" => {
            let plain = matches!(event["subtype"].as_str(), None | Some("file_share") | Some("thread_broadcast"));
            match (plain, has_files, event["channel_type"].as_str()) {
                (true, true, _) => "message",
                // Someone wrote to the bot without a photo: say how it works.
                (true, false, Some("im")) => "help",
                _ => return None,
            }
        }
        "app_mention" if has_files => "message",
        "app_mention" => "help",
        _ => return None,
    };
    let key = format!("slack:{team}:{channel}:{ts}");
    Some((key.clone(), serde_json::json!({ "kind": kind, "key": key, "team": team, "event": event })))
}

#[cfg(test)]
mod tests {
    use super::triage;
    use serde_json::json;

    fn envelope(event: serde_json::Value) -> serde_json::Value {
        json!({
            "type": "event_callback", "team_id": "T1", "event_id": "Ev1",
            "authorizations": [{ "team_id": "T1", "user_id": "UBOT", "is_bot": true }],
            "event": event
        })
    }

    fn photo() -> serde_json::Value {
        json!({ "id": "F1", "mimetype": "image/jpeg", "url_private_download": "https://files.slack.com/F1" })
    }

    #[test]
    fn photo_messages_and_mentions_of_one_message_share_a_key() {
        let msg = envelope(
            json!({ "type": "message", "subtype": "file_share", "user": "U1", "channel": "C1", "ts": "1.1", "files": [photo()] }),
        );
        let mention =
            envelope(json!({ "type": "app_mention", "user": "U1", "channel": "C1", "ts": "1.1", "files": [photo()] }));
        let (k1, p1) = triage(&msg).unwrap();
        let (k2, _) = triage(&mention).unwrap();
        assert_eq!(k1, "slack:T1:C1:1.1");
        assert_eq!(k1, k2);
        assert_eq!(p1["kind"], "message");
    }

    #[test]
    fn bots_the_app_itself_and_chatter_are_ignored() {
        let own = envelope(
            json!({ "type": "message", "subtype": "file_share", "user": "UBOT", "channel": "C1", "ts": "2.1", "files": [photo()] }),
        );
        let bot = envelope(
            json!({ "type": "message", "bot_id": "B9", "user": "U9", "channel": "C1", "ts": "2.2", "files": [photo()] }),
        );
        let chatter = envelope(json!({ "type": "message", "user": "U1", "channel": "C1", "ts": "2.3", "text": "hi" }));
        let edit = envelope(
            json!({ "type": "message", "subtype": "message_changed", "channel": "C1", "ts": "2.4", "user": "U1", "files": [photo()] }),
        );
        assert!(triage(&own).is_none());
        assert!(triage(&bot).is_none());
        assert!(triage(&chatter).is_none());
        assert!(triage(&edit).is_none());
    }

    #[test]
    fn a_mention_or_a_dm_without_a_photo_gets_help() {
        let mention =
            envelope(json!({ "type": "app_mention", "user": "U1", "channel": "C1", "ts": "3.1", "text": "<@UBOT>" }));
        let dm = envelope(
            json!({ "type": "message", "channel_type": "im", "user": "U1", "channel": "D1", "ts": "3.2", "text": "hello" }),
        );
        assert_eq!(triage(&mention).unwrap().1["kind"], "help");
        assert_eq!(triage(&dm).unwrap().1["kind"], "help");
    }
}
