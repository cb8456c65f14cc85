//! `/slack/events`: the Events API. Answers Slack's URL check, and records
//! each photo event for the inbound stage before acknowledging it.

use std::borrow::Cow;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::json;
use serde_json::value::RawValue;

use super::SlackApp;
use super::app::Trigger;

pub async fn events(State(app): State<Arc<SlackApp>>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(envelope) = serde_json::from_slice::<Envelope>(&body) else {
        // Slack must not retry what will never parse.
        return (StatusCode::BAD_REQUEST, [("x-slack-no-retry", "1")], "not JSON").into_response();
    };
    if envelope.kind == "url_verification" {
        return Json(json!({ "challenge": envelope.challenge })).into_response();
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

/// What the acknowledgement needs from an Events API envelope, borrowed
/// from the request body; the event itself stays raw JSON, copied as it
/// came into the inbound request.
#[derive(Deserialize)]
pub(super) struct Envelope<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    team_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    enterprise_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    challenge: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    authorizations: Vec<Authorization<'a>>,
    #[serde(default, borrow)]
    event: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Authorization<'a> {
    #[serde(default, borrow)]
    user_id: Option<Cow<'a, str>>,
    #[serde(default)]
    is_bot: bool,
    #[serde(default)]
    is_enterprise_install: bool,
}

/// The fields of an event that decide what to do with it.
#[derive(Deserialize)]
struct Event<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    subtype: Option<Cow<'a, str>>,
    #[serde(default)]
    bot_id: Option<IgnoredAny>,
    #[serde(default, borrow)]
    team: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    user: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    channel: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    channel_type: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    ts: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    event_ts: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    tab: Option<Cow<'a, str>>,
    #[serde(default)]
    files: Option<Vec<IgnoredAny>>,
}

/// The part of `tokens_revoked` that says whether the bot token went.
#[derive(Deserialize)]
struct Revoked {
    #[serde(default)]
    tokens: RevokedTokens,
}

#[derive(Deserialize, Default)]
struct RevokedTokens {
    #[serde(default)]
    bot: Vec<IgnoredAny>,
}

impl SlackApp {
    /// Records an event the app must act on; others are acknowledged and
    /// dropped. Shared by HTTP and Socket Mode.
    pub(super) async fn accept_event(&self, envelope: &Envelope<'_>) -> Result<(), storytime_pipeline::PortError> {
        match triage(envelope, self.trigger) {
            Some((key, payload)) => self.record_raw(key, payload).await,
            None => self.forget_if_uninstalled(envelope).await,
        }
    }

    /// `app_uninstalled`, or `tokens_revoked` naming the bot: the
    /// workspace's installation is deleted before Slack gets its answer,
    /// so its token is never used again (pending results go by email).
    async fn forget_if_uninstalled(&self, envelope: &Envelope<'_>) -> Result<(), storytime_pipeline::PortError> {
        let Some(raw) = envelope.event.filter(|_| envelope.kind == "event_callback") else { return Ok(()) };
        let Ok(event) = serde_json::from_str::<Event>(raw.get()) else { return Ok(()) };
        let gone = match &*event.kind {
            "app_uninstalled" => true,
            "tokens_revoked" => serde_json::from_str::<Revoked>(raw.get()).is_ok_and(|r| !r.tokens.bot.is_empty()),
            _ => false,
        };
        let Some(team) = envelope.team_id.as_deref().or(event.team.as_deref()).filter(|_| gone) else {
            return Ok(());
        };
        self.workspaces.remove(team).await?;
        if envelope.authorizations.iter().any(|a| a.is_enterprise_install)
            && let Some(enterprise) = envelope.enterprise_id.as_deref()
        {
            self.workspaces.remove(enterprise).await?;
        }
        tracing::info!(team, event = %event.kind, "Storytime was removed from a workspace; its token is forgotten");
        Ok(())
    }
}

/// Decides at once what an event asks for. Photo messages and mentions
/// become inbound requests keyed by workspace, channel and message, so the
/// same message arriving twice (a retry, or as both `message` and
/// `app_mention`) is one request. Bots' messages, the app's own uploads,
/// edits and deletions are ignored. The request is the inbound stage's
/// JSON (`kind`, `key`, `team`, `event`), with the event as Slack sent it.
pub(super) fn triage(envelope: &Envelope, trigger: Trigger) -> Option<(String, String)> {
    if envelope.kind != "event_callback" {
        return None;
    }
    let raw = envelope.event?;
    let event: Event = serde_json::from_str(raw.get()).ok()?;
    let team = envelope.team_id.as_deref().or(event.team.as_deref()).unwrap_or("T");
    if event.bot_id.is_some() || event.subtype.as_deref() == Some("bot_message") {
        return None;
    }
    let bot_user = envelope.authorizations.iter().find(|a| a.is_bot).and_then(|a| a.user_id.as_deref());
    let user = event.user.as_deref()?;
    if Some(user) == bot_user {
        return None;
    }
    let quoted = |s: &str| serde_json::to_string(s).expect("a string serialises");
    if event.kind == "app_home_opened" {
        // The Home tab is drawn fresh each time it is opened.
        if event.tab.as_deref() != Some("home") {
            return None;
        }
        let at = event.event_ts.as_deref().unwrap_or_default();
        let key = format!("slack:{team}:home:{user}:{at}");
        let payload =
            format!(r#"{{"kind":"home","key":{},"team":{},"user":{}}}"#, quoted(&key), quoted(team), quoted(user));
        return Some((key, payload));
    }
    let channel = event.channel.as_deref()?;
    let ts = event.ts.as_deref()?;
    let has_files = event.files.is_some_and(|f| !f.is_empty());
    let kind = match &*event.kind {
        "message" => {
            let plain = matches!(event.subtype.as_deref(), None | Some("file_share") | Some("thread_broadcast"));
            let direct = event.channel_type.as_deref() == Some("im");
            match (plain, has_files, event.channel_type.as_deref()) {
                // With `mentions`, a photo in a channel is read only when
                // the app is mentioned (the app_mention event).
                (true, true, _) if direct || trigger == Trigger::All => "message",
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
    // An organisation-wide install: its token speaks for this workspace.
    let organisation = envelope
        .enterprise_id
        .as_deref()
        .filter(|_| envelope.authorizations.iter().any(|a| a.is_enterprise_install))
        .map(|e| format!(r#","enterprise":{}"#, quoted(e)))
        .unwrap_or_default();
    let payload = format!(
        r#"{{"kind":"{kind}","key":{},"team":{}{organisation},"event":{}}}"#,
        quoted(&key),
        quoted(team),
        raw.get()
    );
    Some((key, payload))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    /// Triage of an envelope as sent: the key, and the request parsed back.
    fn triage(envelope: &Value) -> Option<(String, Value)> {
        let body = envelope.to_string();
        let envelope = serde_json::from_str(&body).unwrap();
        let (key, payload) = super::triage(&envelope, super::Trigger::All)?;
        Some((key, serde_json::from_str(&payload).expect("the request is JSON")))
    }

    fn envelope(event: Value) -> Value {
        json!({
            "type": "event_callback", "team_id": "T1", "event_id": "Ev1",
            "authorizations": [{ "team_id": "T1", "user_id": "UBOT", "is_bot": true }],
            "event": event
        })
    }

    fn photo() -> Value {
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
    fn the_request_carries_the_event_as_sent() {
        let event = json!({ "type": "message", "subtype": "file_share", "user": "U1", "channel": "C\"1", "ts": "4.1",
                            "text": "a \"quoted\" word", "files": [photo()] });
        let (key, request) = triage(&envelope(event.clone())).unwrap();
        assert_eq!(key, "slack:T1:C\"1:4.1");
        assert_eq!(request, json!({ "kind": "message", "key": key, "team": "T1", "event": event }));
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

    #[test]
    fn with_mentions_only_a_channel_photo_needs_an_at_mention() {
        let mentions = |envelope: &Value| {
            let body = envelope.to_string();
            let envelope = serde_json::from_str(&body).unwrap();
            super::triage(&envelope, super::Trigger::Mentions).map(|(k, _)| k)
        };
        let shared = envelope(
            json!({ "type": "message", "subtype": "file_share", "user": "U1", "channel": "C1", "ts": "5.1", "files": [photo()] }),
        );
        let mention =
            envelope(json!({ "type": "app_mention", "user": "U1", "channel": "C1", "ts": "5.1", "files": [photo()] }));
        let dm = envelope(json!({ "type": "message", "subtype": "file_share", "channel_type": "im", "user": "U1",
                                  "channel": "D1", "ts": "5.2", "files": [photo()] }));
        assert_eq!(mentions(&shared), None);
        assert_eq!(mentions(&mention).as_deref(), Some("slack:T1:C1:5.1"));
        assert_eq!(mentions(&dm).as_deref(), Some("slack:T1:D1:5.2"));
    }

    #[test]
    fn an_organisation_wide_install_names_its_organisation() {
        let mut org = envelope(
            json!({ "type": "message", "subtype": "file_share", "user": "U1", "channel": "C1", "ts": "7.1", "files": [photo()] }),
        );
        org["enterprise_id"] = json!("E1");
        org["authorizations"][0]["is_enterprise_install"] = json!(true);
        assert_eq!(triage(&org).unwrap().1["enterprise"], "E1");
        org["authorizations"][0]["is_enterprise_install"] = json!(false);
        assert!(triage(&org).unwrap().1.get("enterprise").is_none(), "a workspace install of a grid workspace");
    }

    #[test]
    fn opening_the_home_tab_asks_for_it_to_be_drawn() {
        let home = envelope(
            json!({ "type": "app_home_opened", "user": "U1", "channel": "D1", "tab": "home", "event_ts": "6.1" }),
        );
        let (key, request) = triage(&home).unwrap();
        assert_eq!(key, "slack:T1:home:U1:6.1");
        assert_eq!(request, json!({ "kind": "home", "key": key, "team": "T1", "user": "U1" }));
        let messages = envelope(
            json!({ "type": "app_home_opened", "user": "U1", "channel": "D1", "tab": "messages", "event_ts": "6.2" }),
        );
        assert!(triage(&messages).is_none());
    }

    proptest::proptest! {
        /// Envelopes of any shape: triaged or ignored, never a panic.
        #[test]
        fn any_envelope_is_triaged_or_ignored(raw in "\\PC{0,300}", event in "\\PC{0,200}", kind in "event_callback|url_verification|\\PC{0,20}") {
            for text in [raw.clone(), format!(r#"{{"type":"{kind}","team_id":"T1","event":{event}}}"#),
                format!(r#"{{"type":"event_callback","event":{{"type":"message","subtype":"file_share","files":[{event}]}}}}"#)] {
                if let Ok(envelope) = serde_json::from_str::<super::Envelope>(&text) {
                    let _ = super::triage(&envelope, super::Trigger::All);
                    let _ = super::triage(&envelope, super::Trigger::Mentions);
                }
            }
        }
    }
}
