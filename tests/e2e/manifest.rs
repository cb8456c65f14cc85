//! `manifest.yml` says exactly what the code registers and uses.

use std::collections::BTreeSet;

use serde_yaml::Value;
use storytime_bot::slack::Trigger;
use storytime_bot::slack::manifest::{
    BOT_EVENTS, COMMAND, COMMANDS_PATH, EVENTS_PATH, INSTALL_PATH, INTERACTIONS_PATH, MENTIONS_BOT_EVENTS, METHODS,
    REDIRECT_PATH, SHORTCUT_CALLBACK_ID, SHORTCUT_NAME, bot_scopes, scopes_for,
};
use storytime_tests::Server;
use storytime_tests::fake_slack::FakeSlack;

fn manifest_file(name: &str) -> Value {
    let path = format!("{}/../{name}", env!("CARGO_MANIFEST_DIR"));
    serde_yaml::from_str(&std::fs::read_to_string(path).expect(name)).expect("valid YAML")
}

fn manifest() -> Value {
    manifest_file("manifest.yml")
}

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_sequence().expect("a list").iter().map(|x| x.as_str().expect("a string").to_owned()).collect()
}

fn path_of(url: &Value) -> String {
    let url = url.as_str().expect("a URL");
    assert!(url.starts_with("https://storytime.example.com/"), "placeholder host: {url}");
    url.trim_start_matches("https://storytime.example.com").to_owned()
}

#[test]
fn the_manifest_matches_the_code() {
    let m = manifest();
    let commands = m["features"]["slash_commands"].as_sequence().unwrap();
    assert_eq!(commands.len(), 1);
    assert_eq!(commands[0]["command"].as_str(), Some(COMMAND));
    assert_eq!(path_of(&commands[0]["url"]), COMMANDS_PATH);

    let shortcuts = m["features"]["shortcuts"].as_sequence().unwrap();
    assert_eq!(shortcuts.len(), 1);
    assert_eq!(shortcuts[0]["callback_id"].as_str(), Some(SHORTCUT_CALLBACK_ID));
    assert_eq!(shortcuts[0]["name"].as_str(), Some(SHORTCUT_NAME));
    assert_eq!(shortcuts[0]["type"].as_str(), Some("message"));

    let settings = &m["settings"];
    assert_eq!(path_of(&settings["event_subscriptions"]["request_url"]), EVENTS_PATH);
    assert_eq!(path_of(&settings["interactivity"]["request_url"]), INTERACTIONS_PATH);
    assert_eq!(settings["interactivity"]["is_enabled"].as_bool(), Some(true));
    assert_eq!(settings["socket_mode_enabled"].as_bool(), Some(false));
    let events = strings(&settings["event_subscriptions"]["bot_events"]);
    assert_eq!(events, BOT_EVENTS.iter().map(|s| s.to_string()).collect());

    let scopes = strings(&m["oauth_config"]["scopes"]["bot"]);
    assert_eq!(scopes, bot_scopes().into_iter().map(String::from).collect(), "exactly the scopes the code needs");
    assert!(m["oauth_config"]["scopes"]["user"].is_null(), "no user scopes");
    assert!(m["features"]["bot_user"]["display_name"].is_string());
    let redirects: Vec<String> = strings(&m["oauth_config"]["redirect_urls"]).into_iter().collect();
    assert_eq!(redirects.iter().map(|u| path_of(&Value::from(u.as_str()))).collect::<Vec<_>>(), [REDIRECT_PATH]);
    let home = &m["features"]["app_home"];
    assert_eq!(home["home_tab_enabled"].as_bool(), Some(true));
    assert_eq!(home["messages_tab_enabled"].as_bool(), Some(true), "people can send the bot photos in a DM");
    assert_eq!(home["messages_tab_read_only_enabled"].as_bool(), Some(false));
}

#[test]
fn the_mentions_manifest_asks_for_less_and_says_the_same_otherwise() {
    let all = manifest();
    let m = manifest_file("manifest.mentions.yml");
    let events = strings(&m["settings"]["event_subscriptions"]["bot_events"]);
    assert_eq!(events, MENTIONS_BOT_EVENTS.iter().map(|s| s.to_string()).collect());
    let scopes = strings(&m["oauth_config"]["scopes"]["bot"]);
    assert_eq!(scopes, scopes_for(Trigger::Mentions).into_iter().map(String::from).collect());
    assert!(scopes.iter().all(|s| !s.ends_with("history") || s == "im:history"), "no channel history: {scopes:?}");
    for same in ["slash_commands", "shortcuts", "app_home", "bot_user"] {
        assert_eq!(m["features"][same], all["features"][same], "features.{same}");
    }
    assert_eq!(m["settings"]["interactivity"], all["settings"]["interactivity"]);
    assert_eq!(m["oauth_config"]["redirect_urls"], all["oauth_config"]["redirect_urls"]);
}

#[tokio::test]
async fn every_path_in_the_manifest_is_served_and_protected() {
    let fake = FakeSlack::start().await;
    let env = fake.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = Server::start(&env);
    for path in [EVENTS_PATH, COMMANDS_PATH, INTERACTIONS_PATH] {
        let r = server.http.post(server.url(path)).body("{}").send().await.unwrap();
        assert_eq!(r.status(), 401, "{path} exists and demands a signature");
    }
    let r = server.http.post(server.url("/slack/other")).body("{}").send().await.unwrap();
    assert_eq!(r.status(), 404);
    let r = server.http.get(server.url(INSTALL_PATH)).send().await.unwrap();
    assert_eq!(r.status(), 404, "installs into other workspaces need SLACK_CLIENT_ID");
    assert!(r.text().await.unwrap().contains("SLACK_CLIENT_ID"));
    // Only the listed methods are ever called (checked in the Slack tests).
    assert!(METHODS.iter().any(|(m, _)| *m == "files.completeUploadExternal"));
}
