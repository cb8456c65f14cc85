//! What the app registers with Slack. `manifest.yml` must say exactly the
//! same; a test compares them.

pub const EVENTS_PATH: &str = "/slack/events";
pub const COMMANDS_PATH: &str = "/slack/commands";
pub const INTERACTIONS_PATH: &str = "/slack/interactions";

/// The slash command.
pub const COMMAND: &str = "/storytime";

/// The message shortcut.
pub const SHORTCUT_NAME: &str = "Read aloud";
pub const SHORTCUT_CALLBACK_ID: &str = "read_aloud";

/// The bot events the app subscribes to: photos in public and private
/// channels, DMs and group DMs the bot is in, and @mentions.
pub const BOT_EVENTS: &[&str] = &["app_mention", "message.channels", "message.groups", "message.im", "message.mpim"];

/// The Web API methods the code calls, with the bot scopes each needs
/// (any one of them, for methods that depend on the kind of channel).
pub const METHODS: &[(&str, &[&str])] = &[
    ("auth.test", &[]),
    ("chat.postMessage", &["chat:write"]),
    ("conversations.history", &["channels:history", "groups:history", "im:history", "mpim:history"]),
    ("conversations.replies", &["channels:history", "groups:history", "im:history", "mpim:history"]),
    ("files.completeUploadExternal", &["files:write"]),
    ("files.getUploadURLExternal", &["files:write"]),
    ("files.info", &["files:read"]),
    ("reactions.add", &["reactions:write"]),
    ("reactions.remove", &["reactions:write"]),
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
