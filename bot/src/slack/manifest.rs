//! What the app registers with Slack. `manifest.yml` must say exactly the
//! same; a test compares them.

pub const EVENTS_PATH: &str = "/slack/events";
pub const COMMANDS_PATH: &str = "/slack/commands";
pub const INTERACTIONS_PATH: &str = "/slack/interactions";
/// Where an install starts, and where Slack sends the browser back.
pub const INSTALL_PATH: &str = "/slack/install";
pub const REDIRECT_PATH: &str = "/slack/oauth_redirect";

/// The slash command.
pub const COMMAND: &str = "/storytime";

/// The message shortcut.
pub const SHORTCUT_NAME: &str = "Read aloud";
pub const SHORTCUT_CALLBACK_ID: &str = "read_aloud";

/// The bot events the app subscribes to: photos in public and private
/// channels, DMs and group DMs the bot is in, and @mentions; the Home tab;
/// and being removed from a workspace.
pub const BOT_EVENTS: &[&str] = &[
    "app_home_opened",
    "app_mention",
    "app_uninstalled",
    "message.channels",
    "message.groups",
    "message.im",
    "message.mpim",
    "tokens_revoked",
];

/// The events of `manifest.mentions.yml` (`STORYTIME_SLACK_TRIGGER=mentions`):
/// no channel messages, only @mentions and direct messages.
pub const MENTIONS_BOT_EVENTS: &[&str] =
    &["app_home_opened", "app_mention", "app_uninstalled", "message.im", "tokens_revoked"];

/// The Web API methods the code calls, with the bot scopes each needs
/// (any one of them, for methods that depend on the kind of channel).
pub const METHODS: &[(&str, &[&str])] = &[
    ("auth.test", &[]),
    ("chat.postMessage", &["chat:write"]),
    ("chat.update", &["chat:write"]),
    ("conversations.history", &["channels:history", "groups:history", "im:history", "mpim:history"]),
    ("conversations.replies", &["channels:history", "groups:history", "im:history", "mpim:history"]),
    ("files.completeUploadExternal", &["files:write"]),
    ("files.getUploadURLExternal", &["files:write"]),
    ("files.info", &["files:read"]),
    ("reactions.add", &["reactions:write"]),
    ("reactions.remove", &["reactions:write"]),
    ("views.publish", &[]),
    // Installs into other workspaces: the app's credentials, no token.
    ("oauth.v2.access", &[]),
];

/// The scopes the events and the rest of the app need.
pub const EVENT_SCOPES: &[(&str, &str)] = &[
    ("app_mention", "app_mentions:read"),
    ("message.channels", "channels:history"),
    ("message.groups", "groups:history"),
    ("message.im", "im:history"),
    ("message.mpim", "mpim:history"),
    // The slash command and the shortcut.
    ("commands", "commands"),
    // Downloading url_private files.
    ("file download", "files:read"),
];

/// Every bot scope the app asks for: exactly those the code above needs.
pub fn bot_scopes() -> Vec<&'static str> {
    let mut scopes: Vec<&str> =
        METHODS.iter().flat_map(|(_, s)| s.iter().copied()).chain(EVENT_SCOPES.iter().map(|(_, s)| *s)).collect();
    scopes.sort_unstable();
    scopes.dedup();
    scopes
}

/// The narrower scopes of `manifest.mentions.yml`: no channel history, so
/// the app sees only messages that mention it and its direct messages
/// (`/storytime last` then cannot look through a channel).
pub const MENTIONS_SCOPES: &[&str] =
    &["app_mentions:read", "chat:write", "commands", "files:read", "files:write", "im:history", "reactions:write"];

/// The scopes the app asks for with `trigger`.
pub fn scopes_for(trigger: super::Trigger) -> Vec<&'static str> {
    match trigger {
        super::Trigger::All => bot_scopes(),
        super::Trigger::Mentions => MENTIONS_SCOPES.to_vec(),
    }
}
