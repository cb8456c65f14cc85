//! Socket Mode: with an app-level token the app connects out to Slack over
//! a WebSocket, so it needs no public URL (a laptop will do). The same
//! handlers as over HTTP run here; Slack's envelope is acknowledged when a
//! handler returns, that is after the request is recorded.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use slack_morphism::prelude::*;
use storytime_pipeline::settings::Secret;

use super::SlackApp;
use super::app::SOCKET_CONNECTED;
use super::commands::Command;

type Error = Box<dyn std::error::Error + Send + Sync>;

async fn app_of(state: &SlackClientEventsUserState) -> Result<Arc<SlackApp>, Error> {
    state.read().await.get_user_state::<Arc<SlackApp>>().cloned().ok_or_else(|| "the Slack app is not set up".into())
}

async fn on_push(
    event: SlackPushEventCallback,
    _client: Arc<SlackHyperClient>,
    state: SlackClientEventsUserState,
) -> UserCallbackResult<()> {
    let app = app_of(&state).await?;
    let mut envelope = serde_json::to_value(&event)?;
    envelope["type"] = "event_callback".into();
    let body = envelope.to_string();
    app.accept_event(&serde_json::from_str(&body)?).await.map_err(|e| Box::new(e) as Error)
}

async fn on_command(
    event: SlackCommandEvent,
    _client: Arc<SlackHyperClient>,
    state: SlackClientEventsUserState,
) -> UserCallbackResult<SlackCommandEventResponse> {
    let app = app_of(&state).await?;
    let command = Command {
        team_id: event.team_id.0,
        channel_id: event.channel_id.0,
        user_id: event.user_id.0,
        text: event.text.unwrap_or_default(),
        response_url: event.response_url.0.to_string(),
        trigger_id: event.trigger_id.0,
    };
    let text = app.command(command).await;
    Ok(SlackCommandEventResponse::new(SlackMessageContent::new().with_text(text)))
}

async fn on_interaction(
    event: SlackInteractionEvent,
    _client: Arc<SlackHyperClient>,
    state: SlackClientEventsUserState,
) -> UserCallbackResult<()> {
    let app = app_of(&state).await?;
    let payload = serde_json::to_value(&event)?;
    app.accept_interaction(&payload).await.map_err(|e| Box::new(e) as Error)
}

/// The longest wait between two attempts to register the connection.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Seconds between attempts to (re)open a socket Slack refused or dropped.
const RECONNECT_SECONDS: u64 = 5;

/// Slack greets every new socket: from then on the app is connected.
/// (Generic over the greeting, whose type slack-morphism does not export.)
async fn on_hello<Hello: Send>(_: Hello, _: Arc<SlackHyperClient>, state: SlackClientEventsUserState) {
    if let Ok(app) = app_of(&state).await {
        tracing::info!("connected to Slack over Socket Mode");
        app.socket.store(SOCKET_CONNECTED, Ordering::SeqCst);
    }
}

/// Registers the app-level token (retrying with exponential backoff) and
/// serves until the process stops. The client opens the sockets, and opens
/// them again every few seconds while Slack refuses or drops them; the app
/// counts as connected once Slack has said hello.
pub async fn run(app: Arc<SlackApp>, app_token: &Secret) -> anyhow::Result<()> {
    let environment = Arc::new(
        SlackClientEventsListenerEnvironment::new(app.workspaces.bare().client()).with_user_state(app.clone()),
    );
    let callbacks = SlackSocketModeListenerCallbacks::new()
        .with_hello_events(on_hello)
        .with_push_events(on_push)
        .with_command_events(on_command)
        .with_interaction_events(on_interaction);
    let config = SlackClientSocketModeConfig {
        reconnect_timeout_in_seconds: RECONNECT_SECONDS,
        ..SlackClientSocketModeConfig::new()
    };
    let listener = SlackClientSocketModeListener::new(&config, environment, callbacks);
    let token = SlackApiToken::new(SlackApiTokenValue(app_token.expose().to_owned()));
    let mut wait = Duration::from_secs(1);
    while let Err(e) = listener.listen_for(&token).await {
        tracing::warn!(error = %e, retry_in = ?wait, "could not connect to Slack over Socket Mode; retrying");
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(MAX_BACKOFF);
    }
    listener.start().await;
    std::future::pending::<()>().await;
    Ok(())
}
