//! Slack, round two, against the fake Slack: installs into any workspace
//! (OAuth), each workspace answered with its own token and forgotten when
//! it uninstalls; the Home tab; direct messages; the buttons on results and
//! the status line that shows progress.

use serde_json::{Value, json};
use storytime_bot::slack::manifest::METHODS;
use storytime_tests::fake_slack::{
    CLIENT_ID, CLIENT_SECRET, FakeSlack, SIGNING_SECRET, TEAM, first_block_id, photo_event,
};
use storytime_tests::{LIMIT, Page, Server, mp3_seconds, render_page};

fn book_page() -> Page {
    Page::new(&["The sleepy dragon counted sheep until the sun came up.", "Then he ate pancakes with his friends."])
}

/// A server for a distributed app: OAuth credentials, no bot token.
fn distributed(fake: &FakeSlack) -> Server {
    let env = [
        ("SLACK_API_URL", fake.api_url()),
        ("SLACK_SIGNING_SECRET", SIGNING_SECRET.to_owned()),
        ("SLACK_CLIENT_ID", CLIENT_ID.to_owned()),
        ("SLACK_CLIENT_SECRET", CLIENT_SECRET.to_owned()),
    ];
    Server::start_with(&env, &[])
}

/// A client that shows redirects instead of following them.
fn browser() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// What `/slack/install` gave the browser: the state and its cookie.
struct Started {
    state: String,
    cookie: String,
    location: reqwest::Url,
}

async fn start_install(server: &Server) -> Started {
    let r = browser().get(server.url("/slack/install")).send().await.unwrap();
    assert_eq!(r.status(), 302);
    let location = reqwest::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let state = location.query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
    Started { state, cookie, location }
}

async fn come_back(server: &Server, query: &[(&str, &str)], cookie: Option<&str>) -> (u16, String) {
    let mut r = browser().get(server.url("/slack/oauth_redirect")).query(query);
    if let Some(cookie) = cookie {
        r = r.header("cookie", cookie);
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Installs the app into `team` as a browser would.
async fn install(server: &Server, fake: &FakeSlack, team: &str) {
    let started = start_install(server).await;
    let code = fake.authorize(team);
    let (status, page) = come_back(server, &[("code", &code), ("state", &started.state)], Some(&started.cookie)).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("installed in Team"), "{page}");
}

/// A photo shared in `team`.
fn photo_in(team: &str, event_id: &str, channel: &str, ts: &str, files: Vec<Value>) -> String {
    let mut envelope: Value = serde_json::from_str(&photo_event(event_id, channel, ts, files)).unwrap();
    envelope["team_id"] = json!(team);
    envelope["authorizations"][0]["team_id"] = json!(team);
    envelope["authorizations"][0]["user_id"] = json!(format!("U{team}BOT"));
    envelope.to_string()
}

fn envelope(team: &str, event: Value) -> String {
    json!({
        "token": "unused", "team_id": team, "api_app_id": "A0APP", "type": "event_callback",
        "event_id": format!("Ev{}", event["type"].as_str().unwrap()), "event_time": storytime_tests::slack_sign::now(),
        "authorizations": [{ "team_id": team, "user_id": "U0BOT", "is_bot": true }],
        "event": event
    })
    .to_string()
}

async fn event(server: &Server, body: &str) -> u16 {
    server.post_signed("/slack/events", body, "application/json", &[]).await.status().as_u16()
}

async fn interaction(server: &Server, payload: Value) -> u16 {
    let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
    server.post_signed("/slack/interactions", &body, "application/x-www-form-urlencoded", &[]).await.status().as_u16()
}

fn bearer_of(call: &storytime_tests::fake_slack::Call) -> String {
    call.authorization.clone().unwrap_or_default()
}

/// Every Web API method called is one the manifest's scopes were chosen for.
fn only_registered_methods(fake: &FakeSlack) {
    for call in fake.all_calls() {
        let known = METHODS.iter().any(|(m, _)| *m == call.method)
            || ["download", "upload", "response_url"].contains(&call.method.as_str());
        assert!(known, "{} is not in manifest::METHODS", call.method);
    }
}

#[tokio::test]
async fn installs_answer_each_workspace_with_its_own_token_and_forget_it_on_uninstall() {
    let fake = FakeSlack::start().await;
    let server = distributed(&fake);

    let started = start_install(&server).await;
    let base = reqwest::Url::parse(&fake.api_url()).unwrap();
    assert_eq!(started.location.host_str(), base.host_str(), "the authorize page is on SLACK_API_URL's host");
    assert_eq!(started.location.path(), "/oauth/v2/authorize");
    let q: std::collections::HashMap<_, _> = started.location.query_pairs().into_owned().collect();
    assert_eq!(q["client_id"], CLIENT_ID);
    assert!(q["scope"].split(',').any(|s| s == "files:read"), "{q:?}");
    assert!(q["redirect_uri"].ends_with("/slack/oauth_redirect"), "{q:?}");
    assert!(started.cookie.starts_with("storytime_slack_state="));

    // Refused, and nothing stored: a forged state, a state without its
    // browser's cookie, a denied install, a code Slack does not know.
    let code = fake.authorize("T0EVIL");
    let forged = format!("{}.{}.{}", "ab".repeat(16), 4_000_000_000u64, "00".repeat(32));
    let (status, _) = come_back(&server, &[("code", &code), ("state", &forged)], Some(&started.cookie)).await;
    assert_eq!(status, 400);
    let (status, page) = come_back(&server, &[("code", &code), ("state", &started.state)], None).await;
    assert_eq!(status, 400, "{page}");
    let (status, page) = come_back(&server, &[("error", "access_denied"), ("state", &started.state)], None).await;
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("cancelled"), "{page}");
    let fresh = start_install(&server).await;
    let (status, page) =
        come_back(&server, &[("code", "not-a-code"), ("state", &fresh.state)], Some(&fresh.cookie)).await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("invalid_code"), "{page}");
    assert!(fake.token_of("T0EVIL").is_none());

    // Two workspaces install; a used state cannot be used again.
    install(&server, &fake, TEAM).await;
    let second = start_install(&server).await;
    let code = fake.authorize("T0SECOND");
    let query = [("code", code.as_str()), ("state", second.state.as_str())];
    assert_eq!(come_back(&server, &query, Some(&second.cookie)).await.0, 200);
    let again = fake.authorize("T0SECOND");
    let (status, page) = come_back(&server, &[("code", &again), ("state", &second.state)], Some(&second.cookie)).await;
    assert_eq!(status, 400, "a reused state: {page}");
    assert!(page.contains("already used"), "{page}");
    let token = format!("Bearer {}", fake.token_of("T0SECOND").expect("an installation for the second workspace"));

    // The second workspace's photo is fetched and answered with its token.
    let file = fake.add_file("F0TWO", "dragon.png", "image/png", render_page(&book_page()));
    assert_eq!(event(&server, &photo_in("T0SECOND", "Ev2A", "C0TWO", "1700000300.000100", vec![file])).await, 200);
    let done = fake.wait_for("files.completeUploadExternal", 1, LIMIT).await;
    assert_eq!(done[0].params["channel_id"], "C0TWO");
    assert_eq!(bearer_of(&done[0]), token);
    let downloads = fake.calls("download");
    assert!(!downloads.is_empty() && downloads.iter().all(|c| bearer_of(c) == token));
    server.settled(LIMIT).await;

    // Uninstalled: the token is forgotten before Slack gets its answer.
    let uninstalled = envelope("T0SECOND", json!({ "type": "app_uninstalled", "event_ts": "1700000301.000100" }));
    assert_eq!(event(&server, &uninstalled).await, 200);
    fake.revoke("T0SECOND");
    let calls_before = fake.all_calls().len();
    let file = fake.add_file("F0TWO2", "dragon2.png", "image/png", render_page(&book_page()));
    assert_eq!(event(&server, &photo_in("T0SECOND", "Ev2B", "C0TWO", "1700000302.000100", vec![file])).await, 200);
    server.settled(LIMIT).await;
    let after: Vec<_> = fake.all_calls().into_iter().skip(calls_before).collect();
    assert!(after.iter().all(|c| bearer_of(c) != token), "nothing sent with the revoked token: {after:?}");
    assert!(after.iter().all(|c| c.method != "download"), "{after:?}");

    // The first workspace is still served.
    let file = fake.add_file("F0ONE", "dragon3.png", "image/png", render_page(&book_page()));
    assert_eq!(event(&server, &photo_in(TEAM, "Ev1A", "C0ONE", "1700000303.000100", vec![file])).await, 200);
    let done = fake.wait_for("files.completeUploadExternal", 2, LIMIT).await;
    assert_eq!(done[1].params["channel_id"], "C0ONE");
    assert_eq!(bearer_of(&done[1]), format!("Bearer {}", fake.token_of(TEAM).unwrap()));
    only_registered_methods(&fake);
}

#[tokio::test]
async fn a_rotating_token_is_refreshed_before_it_expires() {
    let fake = FakeSlack::start().await;
    // Tokens good for a minute: inside the refresh margin from the start.
    fake.rotate_tokens(60);
    let server = distributed(&fake);
    install(&server, &fake, TEAM).await;
    let first = fake.token_of(TEAM).unwrap();
    let file = fake.add_file("F0ROT", "dragon.png", "image/png", render_page(&book_page()));
    assert_eq!(event(&server, &photo_in(TEAM, "EvR1", "C0ROT", "1700000700.000100", vec![file])).await, 200);
    let done = fake.wait_for("files.completeUploadExternal", 1, LIMIT).await;
    assert!(fake.calls("oauth.v2.access").iter().any(|c| c.params["grant_type"] == "refresh_token"));
    let used = bearer_of(&done[0]);
    assert!(used.starts_with("Bearer xoxe.xoxb-"), "answered with a refreshed token: {used}");
    assert_ne!(used, format!("Bearer {first}"));
}

#[tokio::test]
async fn the_home_tab_shows_recent_books_and_saves_settings_as_they_change() {
    let fake = FakeSlack::start().await;
    let server = Server::start_with(&fake.env(), &[]);
    let file = fake.add_file("F0PAGE", "dragon.png", "image/png", render_page(&book_page()));
    assert_eq!(event(&server, &photo_event("EvH1", "C0KIDS", "1700000400.000100", vec![file])).await, 200);
    fake.wait_for("files.completeUploadExternal", 1, LIMIT).await;
    server.settled(LIMIT).await;

    let opened = envelope(
        TEAM,
        json!({ "type": "app_home_opened", "user": "U0PARENT", "channel": "D0HOME", "tab": "home", "event_ts": "1700000401.000100" }),
    );
    assert_eq!(event(&server, &opened).await, 200);
    fake.wait_for("views.publish", 1, LIMIT).await;
    let home = fake.home_of("U0PARENT").expect("a Home tab for the user");
    assert_eq!(home["type"], "home");
    let shown = home.to_string();
    assert!(shown.contains("dragon.png") && shown.contains("listen"), "{shown}");
    for control in ["storytime_home_voice", "storytime_home_speed", "storytime_home_email"] {
        assert!(shown.contains(control), "{control} on the Home tab");
    }

    // Picking a speed saves it at once and redraws the tab.
    let picked = json!({
        "type": "block_actions", "user": { "id": "U0PARENT", "team_id": TEAM }, "team": { "id": TEAM },
        "view": { "type": "home", "id": "V1" }, "trigger_id": "trig-home",
        "actions": [{ "action_id": "storytime_home_speed", "block_id": "storytime_home_speed", "action_ts": "1700000402.1",
                      "type": "static_select", "selected_option": { "value": "0.7" } }]
    });
    assert_eq!(interaction(&server, picked).await, 200);
    fake.wait_for("views.publish", 2, LIMIT).await;
    let home = fake.home_of("U0PARENT").unwrap().to_string();
    assert!(home.contains("speed 0.7"), "{home}");
    let speed_select = &fake.home_of("U0PARENT").unwrap()["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["block_id"] == "storytime_home_speed")
        .unwrap()["accessory"]["initial_option"]["value"]
        .clone();
    assert_eq!(speed_select, "0.7");
}

#[tokio::test]
async fn a_photo_sent_in_a_direct_message_is_answered_there() {
    let fake = FakeSlack::start().await;
    let server = Server::start_with(&fake.env(), &[]);
    let file = fake.add_file("F0DM", "dragon.png", "image/png", render_page(&book_page()));
    let mut dm: Value =
        serde_json::from_str(&photo_event("EvD1", "D0DIRECT", "1700000500.000100", vec![file])).unwrap();
    dm["event"]["channel_type"] = json!("im");
    assert_eq!(event(&server, &dm.to_string()).await, 200);
    let done = fake.wait_for("files.completeUploadExternal", 1, LIMIT).await;
    assert_eq!(done[0].params["channel_id"], "D0DIRECT");
    assert_eq!(done[0].params["thread_ts"], "1700000500.000100");
}

#[tokio::test]
async fn slower_reads_the_page_again_into_the_thread_without_downloading_it() {
    let fake = FakeSlack::start().await;
    let server = Server::start_with(&fake.env(), &[]);
    let (channel, thread) = ("C0KIDS", "1700000600.000100");
    let file = fake.add_file("F0PAGE", "dragon.png", "image/png", render_page(&book_page()));
    assert_eq!(event(&server, &photo_event("EvS1", channel, thread, vec![file])).await, 200);
    let first = fake.wait_for("files.completeUploadExternal", 1, LIMIT).await;
    server.settled(LIMIT).await;

    // The status line showed progress, then became the result's controls:
    // the job's ID and the three buttons.
    let updates: Vec<String> =
        fake.calls("chat.update").iter().map(|c| c.params["text"].as_str().unwrap_or_default().to_owned()).collect();
    assert!(updates.iter().any(|t| t.starts_with("Reading")), "{updates:?}");
    assert!(updates.iter().any(|t| t.starts_with("Narrating")), "{updates:?}");
    let status = fake
        .thread(channel, thread)
        .into_iter()
        .find(|m| m["blocks"].to_string().contains("storytime_slower"))
        .expect("a message with the result's buttons");
    let shown = status.to_string();
    for action in ["storytime_slower", "storytime_voice", "storytime_email"] {
        assert!(shown.contains(action), "{action}: {shown}");
    }
    let controls = status["blocks"].as_array().unwrap().iter().find(|b| b["type"] == "actions").unwrap().clone();
    let job = controls["block_id"].as_str().unwrap().trim_start_matches("storytime_controls:").to_owned();
    assert!(status["text"].as_str().unwrap().contains(&job), "the job ID is shown");
    assert!(first_block_id(&first[0].params).is_some());

    let click = json!({
        "type": "block_actions", "user": { "id": "U0PARENT" }, "team": { "id": TEAM },
        "container": { "type": "message", "channel_id": channel, "message_ts": status["ts"] },
        "channel": { "id": channel }, "message": { "ts": status["ts"], "thread_ts": thread },
        "response_url": fake.response_url("slower"), "trigger_id": "trig-slower",
        "actions": [{ "action_id": "storytime_slower", "block_id": controls["block_id"], "value": job,
                      "type": "button", "action_ts": "1700000601.000200" }]
    });
    assert_eq!(interaction(&server, click.clone()).await, 200);
    // Slack retries an interaction it did not see answered: still one reading.
    assert_eq!(interaction(&server, click).await, 200);
    let done = fake.wait_for("files.completeUploadExternal", 2, LIMIT).await;
    server.settled(LIMIT).await;
    assert_eq!(fake.calls("files.completeUploadExternal").len(), 2);
    assert_eq!(done[1].params["thread_ts"], thread, "in the same thread");
    assert_eq!(fake.calls("download").len(), 1, "the photo was not downloaded again");
    let audio = |call: &storytime_tests::fake_slack::Call| {
        let id = call.params["files"].to_string();
        let id = id.split("F0UP").nth(1).unwrap().chars().take_while(char::is_ascii_digit).collect::<String>();
        mp3_seconds(&fake.uploaded(&format!("F0UP{id}")).unwrap())
    };
    let (normal, slower) = (audio(&done[0]), audio(&done[1]));
    assert!(slower > normal * 1.15, "slower narration is longer: {normal:.2} s then {slower:.2} s");
    only_registered_methods(&fake);
}
