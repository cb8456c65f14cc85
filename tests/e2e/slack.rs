//! The Slack app against a fake Slack on loopback: photos in, narration
//! back in the thread; signatures; retries; commands; the shortcut; rate
//! limits; email fallback; Socket Mode.

use serde_json::{Value, json};
use storytime_bot::slack::manifest::METHODS;
use storytime_tests::fake_slack::{
    BOT_TOKEN, BOT_USER, FakeSlack, Plan, SIGNING_SECRET, TEAM, first_block_id, photo_event, shown_text,
};
use storytime_tests::slack_sign::{now, slack_signature};
use storytime_tests::{LIMIT, Page, Server, cer, mp3_seconds, render_page};

fn page() -> Page {
    Page::new(&["The sleepy dragon counted sheep until the sun came up.", "Then he ate pancakes with his friends."])
}

fn start(fake: &FakeSlack, extra: &[(&str, &str)]) -> Server {
    Server::start_with(&fake.env(), extra)
}

async fn event(server: &Server, body: &str) -> reqwest::Response {
    server.post_signed("/slack/events", body, "application/json", &[]).await
}

fn form(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap()
}

async fn command(server: &Server, fake: &FakeSlack, text: &str) -> Value {
    command_from(server, fake, TEAM, text).await
}

async fn command_from(server: &Server, fake: &FakeSlack, team: &str, text: &str) -> Value {
    let response_url = fake.response_url("cmd");
    let body = form(&[
        ("token", "unused"),
        ("team_id", team),
        ("channel_id", "C0KIDS"),
        ("user_id", "U0PARENT"),
        ("command", "/storytime"),
        ("text", text),
        ("response_url", &response_url),
        ("trigger_id", &format!("trig-{text}")),
    ]);
    let r = server.post_signed("/slack/commands", &body, "application/x-www-form-urlencoded", &[]).await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// Waits until every queue of the pipeline is empty (nothing waiting,
/// nothing in flight).
async fn settled(server: &Server) {
    server.settled(LIMIT).await;
}

#[tokio::test]
async fn a_shared_photo_is_read_aloud_into_its_thread() {
    let fake = FakeSlack::start().await;
    let server = start(&fake, &[]);
    let file = fake.add_file("F0PAGE", "dragon.png", "image/png", render_page(&page()));

    let r = event(&server, &photo_event("Ev1", "C0KIDS", "1700000001.000100", vec![file])).await;
    assert_eq!(r.status(), 200);

    let done = fake.wait_for("files.completeUploadExternal", 1, LIMIT).await;
    let p = &done[0].params;
    assert_eq!(p["channel_id"], "C0KIDS");
    assert_eq!(p["thread_ts"], "1700000001.000100");
    let comment = &shown_text(p);
    assert!(first_block_id(p).is_some_and(|k| k.starts_with("storytime-")), "{p}");
    let quoted: Vec<&str> = comment.lines().filter_map(|l| l.strip_prefix("> ")).collect();
    assert!(cer(&quoted.join(" "), &page().text()) < 0.05, "{comment}");
    assert!(comment.contains("<http://") && comment.contains("|Download the MP3>"), "{comment}");

    // The MP3 went to the upload URL Slack handed out, and plays.
    let upload = fake.wait_for("files.getUploadURLExternal", 1, LIMIT).await;
    assert!(upload[0].params["filename"].as_str().unwrap().ends_with(".mp3"));
    let file_id = p["files"][0]["id"].as_str().unwrap();
    let seconds = mp3_seconds(&fake.uploaded(file_id).expect("uploaded bytes"));
    assert!((3.0..15.0).contains(&seconds), "{seconds}");

    // Reactions: picked up, then done; the photo was fetched with the token.
    let reactions: Vec<String> = fake
        .wait_for("reactions.add", 2, LIMIT)
        .await
        .iter()
        .map(|c| c.params["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(reactions, ["eyes", "white_check_mark"]);
    assert!(fake.calls("reactions.add").iter().all(|c| c.params["timestamp"] == "1700000001.000100"));
    let downloads = fake.calls("download");
    assert_eq!(downloads[0].authorization.as_deref(), Some(format!("Bearer {BOT_TOKEN}").as_str()));

    // Every Web API method called is one the manifest's scopes cover.
    for call in fake.all_calls() {
        let known =
            METHODS.iter().any(|(m, _)| *m == call.method) || ["download", "upload"].contains(&call.method.as_str());
        assert!(known, "{} is not in registration::METHODS", call.method);
    }
}

#[tokio::test]
async fn forged_stale_and_unsigned_requests_are_refused_and_do_nothing() {
    let fake = FakeSlack::start().await;
    let server = start(&fake, &[]);
    let file = fake.add_file("F0PAGE", "dragon.png", "image/png", render_page(&page()));
    let body = photo_event("Ev2", "C0KIDS", "1700000002.000100", vec![file]);
    let ts = now();
    let signed = slack_signature(SIGNING_SECRET, ts, &body);
    let cases: Vec<(&str, Vec<(&str, String)>)> = vec![
        (
            "forged",
            vec![
                ("X-Slack-Request-Timestamp", ts.to_string()),
                ("X-Slack-Signature", slack_signature("wrong", ts, &body)),
            ],
        ),
        ("tampered", vec![("X-Slack-Request-Timestamp", (ts + 1).to_string()), ("X-Slack-Signature", signed.clone())]),
        (
            "stale",
            vec![
                ("X-Slack-Request-Timestamp", (ts - 400).to_string()),
                ("X-Slack-Signature", slack_signature(SIGNING_SECRET, ts - 400, &body)),
            ],
        ),
        (
            "future",
            vec![
                ("X-Slack-Request-Timestamp", (ts + 400).to_string()),
                ("X-Slack-Signature", slack_signature(SIGNING_SECRET, ts + 400, &body)),
            ],
        ),
        ("unsigned", vec![]),
    ];
    for path in ["/slack/events", "/slack/commands", "/slack/interactions"] {
        for (name, headers) in &cases {
            let mut req = server.http.post(server.url(path)).body(body.clone());
            for (k, v) in headers {
                req = req.header(*k, v.as_str());
            }
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 401, "{name} request to {path}");
        }
    }
    // Nothing was recorded, and Slack was never called.
    let h = server.health().await;
    assert_eq!(h["queues"]["inbound"]["waiting"], 0, "{h}");
    assert_eq!(h["jobs"], json!({}));
    assert!(fake.all_calls().is_empty(), "{:?}", fake.all_calls());
}

#[tokio::test]
async fn a_retried_or_repeated_event_makes_one_job_and_one_upload() {
    let fake = FakeSlack::start().await;
    let server = start(&fake, &[]);
    let file = fake.add_file("F0PAGE", "dragon.png", "image/png", render_page(&page()));
    let body = photo_event("Ev3", "C0KIDS", "1700000003.000100", vec![file.clone()]);
    assert_eq!(event(&server, &body).await.status(), 200);
    let retry = server
        .post_signed(
            "/slack/events",
            &body,
            "application/json",
            &[("X-Slack-Retry-Num", "1"), ("X-Slack-Retry-Reason", "http_timeout")],
        )
        .await;
    assert_eq!(retry.status(), 200);
    // The same post as an @mention: another event id, the same message.
    let mut mention: Value = serde_json::from_str(&body).unwrap();
    mention["event_id"] = json!("Ev3b");
    mention["event"]["type"] = json!("app_mention");
    assert_eq!(event(&server, &mention.to_string()).await.status(), 200);

    fake.wait_for("files.completeUploadExternal", 1, LIMIT).await;
    settled(&server).await;
    assert_eq!(fake.calls("files.completeUploadExternal").len(), 1);
    assert_eq!(server.health().await["jobs"]["done"], 1);
}

#[tokio::test]
async fn the_bots_own_messages_and_other_bots_are_ignored() {
    let fake = FakeSlack::start().await;
    let server = start(&fake, &[]);
    let file = fake.add_file("F0MP3", "dragon.mp3", "audio/mpeg", vec![1, 2, 3]);
    let mut own: Value =
        serde_json::from_str(&photo_event("Ev4", "C0KIDS", "1700000004.000100", vec![file.clone()])).unwrap();
    own["event"]["user"] = json!(BOT_USER);
    let mut other_bot = own.clone();
    other_bot["event"]["user"] = json!("U0OTHER");
    other_bot["event"]["bot_id"] = json!("B0OTHER");
    for e in [own, other_bot] {
        assert_eq!(event(&server, &e.to_string()).await.status(), 200);
    }
    assert_eq!(server.health().await["queues"]["inbound"]["waiting"], 0);
    assert!(fake.all_calls().is_empty());
}

#[tokio::test]
async fn slacks_url_check_is_answered() {
    let fake = FakeSlack::start().await;
    let server = start(&fake, &[]);
    let body = json!({ "token": "x", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "type": "url_verification" }).to_string();
    let r = event(&server, &body).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["challenge"], "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P");
}

#[tokio::test]
async fn rate_limits_are_waited_out_not_dropped() {
    let fake = FakeSlack::start().await;
    let server = start(&fake, &[]);
    fake.plan("files.completeUploadExternal", Plan::RateLimit(1));
    fake.plan("reactions.add", Plan::RateLimit(1));
    let file = fake.add_file("F0PAGE", "dragon.png", "image/png", render_page(&page()));
    assert_eq!(event(&server, &photo_event("Ev5", "C0KIDS", "1700000005.000100", vec![file])).await.status(), 200);
    let calls = fake.wait_for("files.completeUploadExternal", 2, LIMIT).await;
    assert_eq!(calls[0].params, calls[1].params, "the same upload, completed after the wait");
    settled(&server).await;
    assert!(server.outbox().is_empty(), "no fallback email for a rate limit");
}

#[tokio::test]
async fn a_delivery_whose_answer_was_lost_is_found_in_the_thread_not_posted_twice() {
    let fake = FakeSlack::start().await;
    let server = start(&fake, &[]);
    // Slack shares the file but the answer never arrives: Storytime cannot
    // tell, retries, and must find its message in the thread.
    fake.plan("files.completeUploadExternal", Plan::AnswerLost);
    let file = fake.add_file("F0PAGE", "dragon.png", "image/png", render_page(&page()));
    assert_eq!(event(&server, &photo_event("Ev7", "C0KIDS", "1700000007.000100", vec![file])).await.status(), 200);
    let looked = fake.wait_for("conversations.replies", 1, LIMIT).await;
    assert_eq!(looked[0].params["ts"], "1700000007.000100");
    settled(&server).await;
    assert_eq!(fake.deliveries("C0KIDS", "1700000007.000100").len(), 1, "one narration in the thread");
    assert_eq!(fake.calls("files.completeUploadExternal").len(), 1);
    assert!(server.outbox().is_empty(), "delivered, so no fallback email");
    let done: Vec<Value> = fake.calls("reactions.add").into_iter().map(|c| c.params["name"].clone()).collect();
    assert!(done.contains(&json!("white_check_mark")), "{done:?}");
    let metrics = server.metrics().await;
    assert!(metrics.contains("storytime_slack_repeats_avoided_total 1"), "{metrics}");
}

#[tokio::test]
async fn when_the_bot_was_removed_from_the_channel_the_result_is_emailed() {
    let fake = FakeSlack::start().await;
    let server = start(&fake, &[]);
    fake.plan("files.getUploadURLExternal", Plan::Error("not_in_channel"));
    let file = fake.add_file("F0PAGE", "dragon.png", "image/png", render_page(&page()));
    assert_eq!(event(&server, &photo_event("Ev6", "C0GONE", "1700000006.000100", vec![file])).await.status(), 200);
    settled(&server).await;
    let emails = server.outbox();
    assert_eq!(emails.len(), 1, "{emails:?}");
    assert!(emails[0].contains("Subject: Your story is ready: dragon.png"));
    assert!(emails[0].contains("pancakes"));
    assert!(fake.calls("files.completeUploadExternal").is_empty());
}

#[tokio::test]
async fn a_file_that_is_not_a_photo_gets_a_polite_reply() {
    let fake = FakeSlack::start().await;
    let server = start(&fake, &[]);
    let file = fake.add_file("F0PDF", "homework.pdf", "application/pdf", b"%PDF-1.7".to_vec());
    assert_eq!(event(&server, &photo_event("Ev7", "C0KIDS", "1700000007.000100", vec![file])).await.status(), 200);
    let posts = fake.wait_for("chat.postMessage", 1, LIMIT).await;
    assert_eq!(posts[0].params["thread_ts"], "1700000007.000100");
    assert!(posts[0].params["text"].as_str().unwrap().contains("`homework.pdf` is not a photo"));
    settled(&server).await;
    assert!(fake.calls("download").is_empty());
    assert_eq!(server.health().await["jobs"], json!({}));
}

#[tokio::test]
async fn a_sign_in_page_instead_of_the_photo_is_explained() {
    let fake = FakeSlack::start().await;
    let server = start(&fake, &[]);
    let file = fake.add_file("F0PAGE", "dragon.png", "image/png", render_page(&page()));
    fake.deny_download("F0PAGE");
    assert_eq!(event(&server, &photo_event("Ev8", "C0KIDS", "1700000008.000100", vec![file])).await.status(), 200);
    let posts = fake.wait_for("chat.postMessage", 1, LIMIT).await;
    let text = posts[0].params["text"].as_str().unwrap();
    assert!(text.contains("files:read"), "{text}");
    settled(&server).await;
    assert_eq!(server.health().await["jobs"], json!({}), "nothing was fed to the reader");
}

#[tokio::test]
async fn the_token_is_never_sent_to_a_host_named_in_a_payload() {
    let fake = FakeSlack::start().await;
    let elsewhere = FakeSlack::start().await;
    let server = start(&fake, &[]);
    // A file whose URL points at another host than Slack's.
    let file = elsewhere.add_file("F0EVIL", "page.png", "image/png", render_page(&page()));
    assert_eq!(event(&server, &photo_event("Ev9", "C0KIDS", "1700000009.000100", vec![file])).await.status(), 200);
    let posts = fake.wait_for("chat.postMessage", 1, LIMIT).await;
    assert!(posts[0].params["text"].as_str().unwrap().contains("not Slack"));
    assert!(elsewhere.all_calls().is_empty(), "the other host was never contacted");
}

#[tokio::test]
async fn slash_commands_answer_at_once_and_remember_choices() {
    let fake = FakeSlack::start().await;
    let mut server = start(&fake, &[]);

    let help = command(&server, &fake, "").await;
    assert_eq!(help["response_type"], "ephemeral");
    assert!(help["text"].as_str().unwrap().contains("/storytime last"));
    assert!(command(&server, &fake, "dance").await["text"].as_str().unwrap().contains("/storytime voice"));

    let voices = command(&server, &fake, "voice").await;
    assert!(voices["text"].as_str().unwrap().contains("`en-gb`"));
    assert!(command(&server, &fake, "voice klingon").await["text"].as_str().unwrap().contains("don't have a voice"));
    assert!(command(&server, &fake, "voice en-gb").await["text"].as_str().unwrap().contains("`en-gb`"));
    // An address is used only once the code mailed to it comes back.
    let asked = command(&server, &fake, "email <mailto:mum@example.com|mum@example.com>").await;
    assert!(asked["text"].as_str().unwrap().contains("emailed a code to mum@example.com"), "{asked}");
    let mails = server.outbox();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(mails[0].contains("To: mum@example.com"));
    let code: String = mails[0].split("email confirm ").nth(1).unwrap().chars().take(6).collect();
    assert!(code.chars().all(|c| c.is_ascii_digit()), "{code}");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let answer = command(&server, &fake, &format!("email confirm {wrong}")).await;
    assert!(answer["text"].as_str().unwrap().contains("not the code"), "{answer}");
    let answer = command(&server, &fake, &format!("email confirm {code}")).await;
    assert!(answer["text"].as_str().unwrap().contains("Confirmed"), "{answer}");
    assert!(
        command(&server, &fake, "email not-an-address").await["text"]
            .as_str()
            .unwrap()
            .contains("/storytime email you@example.com")
    );

    // Choices survive a restart, and shape the next reading.
    server.restart(&[]);
    assert!(command(&server, &fake, "voice").await["text"].as_str().unwrap().contains("Your voice is `en-gb`"));
    let file = fake.add_file("F0PAGE", "dragon.png", "image/png", render_page(&page()));
    assert_eq!(event(&server, &photo_event("Ev10", "C0KIDS", "1700000010.000100", vec![file])).await.status(), 200);
    fake.wait_for("files.completeUploadExternal", 1, LIMIT).await;
    settled(&server).await;
    let emails: Vec<String> =
        server.outbox().into_iter().filter(|m| m.contains("Subject: Your story is ready")).collect();
    assert_eq!(emails.len(), 1, "the subscribed address got the story too");
    assert!(emails[0].contains("To: mum@example.com"));

    let status = command(&server, &fake, "status 1b4e28ba-2fa1-11d2-883f-0016d3cca427").await;
    assert!(status["text"].as_str().unwrap().contains("don't know"));
    assert!(command(&server, &fake, "email off").await["text"].as_str().unwrap().contains("off"));
}

#[tokio::test]
async fn confirmation_codes_cannot_be_used_to_flood_an_address() {
    let fake = FakeSlack::start().await;
    let server = start(&fake, &[("STORYTIME_MAIL_PER_HOUR", "3")]);
    let mut refused = 0;
    for n in 0..8 {
        let answer = command(&server, &fake, "email victim@example.com").await;
        let text = answer["text"].as_str().unwrap();
        if text.contains("try again in") {
            refused += 1;
        } else {
            assert!(text.contains("emailed a code"), "{n}: {text}");
        }
    }
    assert_eq!(refused, 5);
    assert_eq!(server.outbox().len(), 3, "at most the hourly limit of mails went out");
    // Commands themselves are limited per user too (20 a minute by default).
    let mut limited = false;
    for _ in 0..25 {
        limited |= command(&server, &fake, "voice").await["text"].as_str().unwrap().contains("a lot of commands");
    }
    assert!(limited);
}

#[tokio::test]
async fn storytime_last_reads_the_latest_photo_in_the_channel() {
    let fake = FakeSlack::start().await;
    let server = start(&fake, &[]);
    let file = fake.add_file("F0PAGE", "dragon.png", "image/png", render_page(&page()));
    fake.set_history(vec![
        json!({ "type": "message", "user": "U0PARENT", "text": "so cute", "ts": "1700000012.000300" }),
        json!({ "type": "message", "subtype": "file_share", "user": "U0PARENT", "text": "", "ts": "1700000011.000200", "files": [file] }),
    ]);
    let answer = command(&server, &fake, "last").await;
    assert!(answer["text"].as_str().unwrap().contains("Looking for the latest photo"));
    let done = fake.wait_for("files.completeUploadExternal", 1, LIMIT).await;
    assert_eq!(done[0].params["thread_ts"], "1700000011.000200");

    // A channel without photos gets told so, privately.
    fake.set_history(vec![json!({ "type": "message", "user": "U0PARENT", "text": "hi", "ts": "1.1" })]);
    let mut r = command(&server, &fake, "last").await;
    r = r["text"].clone();
    assert!(r.as_str().unwrap().contains("Looking"));
    let told = fake.wait_for("response_url", 1, LIMIT).await;
    assert!(told[0].params["text"].as_str().unwrap().contains("no photo"));
}

#[tokio::test]
async fn the_read_aloud_shortcut_narrates_into_the_messages_thread() {
    let fake = FakeSlack::start().await;
    let server = start(&fake, &[]);
    let file = fake.add_file("F0PAGE", "dragon.png", "image/png", render_page(&page()));
    let payload = json!({
        "type": "message_action", "callback_id": "read_aloud", "trigger_id": "13345224609.738474920.8088930838d88f008e0",
        "team": { "id": TEAM, "domain": "test" }, "user": { "id": "U0PARENT", "name": "parent" },
        "channel": { "id": "C0KIDS", "name": "kids" }, "response_url": fake.response_url("shortcut"),
        "message_ts": "1700000013.000100", "action_ts": "1700000099.000001",
        "message": { "type": "message", "user": "U0PARENT", "ts": "1700000013.000100", "thread_ts": "1700000000.000001", "text": "", "files": [file] }
    });
    let body = form(&[("payload", &payload.to_string())]);
    let r = server.post_signed("/slack/interactions", &body, "application/x-www-form-urlencoded", &[]).await;
    assert_eq!(r.status(), 200);
    let done = fake.wait_for("files.completeUploadExternal", 1, LIMIT).await;
    assert_eq!(done[0].params["thread_ts"], "1700000000.000001", "into the thread the message is in");
}

#[tokio::test]
async fn socket_mode_runs_the_same_handlers() {
    let fake = FakeSlack::start().await;
    let server = start(&fake, &[("SLACK_APP_TOKEN", "xapp-1-test")]);
    let file = fake.add_file("F0PAGE", "dragon.png", "image/png", render_page(&page()));
    let event: Value = serde_json::from_str(&photo_event("Ev14", "C0KIDS", "1700000014.000100", vec![file])).unwrap();
    let envelope = json!({ "envelope_id": "env-1", "type": "events_api", "accepts_response_payload": false, "retry_attempt": 0, "retry_reason": "", "payload": event });
    fake.socket_send(envelope, LIMIT).await;
    let done = fake.wait_for("files.completeUploadExternal", 1, LIMIT).await;
    assert_eq!(done[0].params["thread_ts"], "1700000014.000100");

    let slash = json!({
        "envelope_id": "env-2", "type": "slash_commands", "accepts_response_payload": true,
        "payload": { "team_id": TEAM, "channel_id": "C0KIDS", "user_id": "U0PARENT", "command": "/storytime", "text": "help",
                     "response_url": fake.response_url("sock"), "trigger_id": "t-1" }
    });
    let ack = fake.socket_send(slash, LIMIT).await;
    assert!(ack["payload"]["text"].as_str().unwrap_or_default().contains("/storytime last"), "{ack}");
    drop(server);
}

#[tokio::test]
async fn socket_mode_keeps_trying_when_slack_refuses_at_start_and_health_says_so() {
    let fake = FakeSlack::start().await;
    fake.plan("apps.connections.open", Plan::Error("internal_error"));
    let server = start(&fake, &[("SLACK_APP_TOKEN", "xapp-1-test")]);
    let first = server.health().await;
    assert_eq!((first["status"].as_str(), first["parts"]["slack"].as_str()), (Some("unavailable"), Some("connecting")));
    let health = server.wait_until(LIMIT, |h| h["parts"]["slack"] == "connected").await;
    assert_eq!(health["status"], "ok", "{health}");
    assert!(fake.calls("apps.connections.open").len() >= 2, "a refusal, then a connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_checks_the_bot_token_with_slack() {
    let fake = FakeSlack::start().await;
    let data = tempfile::tempdir().unwrap();
    let doctor = |fake_env: Vec<(String, String)>| {
        let data = data.path().to_owned();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(storytime_tests::storytime_bin())
                .arg("doctor")
                .env("STORYTIME_DATA_DIR", data)
                .env("RUST_LOG", "warn")
                .envs(fake_env)
                .output()
                .expect("run storytime doctor")
        })
    };

    let good = doctor(fake.env()).await.unwrap();
    let report = String::from_utf8_lossy(&good.stdout);
    assert!(report.contains(&format!("bot {BOT_USER} in workspace Test")), "{report}");
    assert_eq!(fake.calls("auth.test").len(), 1);

    fake.plan("auth.test", Plan::Error("invalid_auth"));
    let revoked = doctor(fake.env()).await.unwrap();
    let report = String::from_utf8_lossy(&revoked.stdout);
    assert_eq!(revoked.status.code(), Some(1), "{report}");
    assert!(report.contains("invalid_auth") && report.contains("Bot User OAuth Token"), "{report}");

    // A token installed before the app asked for a scope it now needs.
    let all = storytime_bot::slack::manifest::bot_scopes();
    fake.grant_scopes(&all.iter().copied().filter(|s| *s != "files:read").collect::<Vec<_>>());
    let narrow = doctor(fake.env()).await.unwrap();
    let report = String::from_utf8_lossy(&narrow.stdout);
    assert_eq!(narrow.status.code(), Some(1), "{report}");
    assert!(report.contains("lacks the scopes files:read") && report.contains("reinstall"), "{report}");
}

#[tokio::test]
async fn acknowledged_events_survive_a_kill_right_after_the_answers() {
    let fake = FakeSlack::start().await;
    let file = fake.add_file("FKILL", "page.png", "image/png", render_page(&page()));
    // Nothing consumes the events: they stay queued for the inbound stage.
    let mut server = start(&fake, &[("STORYTIME_INBOUND_WORKERS", "0")]);
    const EVENTS: usize = 300;
    let sends = (0..EVENTS).map(|i| {
        let body =
            photo_event(&format!("EvK{i}"), &format!("CK{}", i % 7), &format!("1700000100.{i:06}"), vec![file.clone()]);
        let server = &server;
        async move { event(server, &body).await.status() }
    });
    let statuses = futures::future::join_all(sends).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    // SIGKILL at once: some events may not have reached the database yet,
    // only the queue journal.
    server.kill();
    server.restart(&[("STORYTIME_INBOUND_WORKERS", "0")]);
    let health = server.health().await;
    assert_eq!(health["queues"]["inbound"]["waiting"], EVENTS, "{health}");
    assert!(fake.calls("chat.postMessage").is_empty());
}

#[tokio::test]
async fn status_shows_a_job_only_to_the_workspace_it_came_from() {
    let fake = FakeSlack::start().await;
    let server = start(&fake, &[("STORYTIME_LOG_FORMAT", "json"), ("RUST_LOG", "info")]);
    let file = fake.add_file("F0PAGE", "dragon.png", "image/png", render_page(&page()));
    assert_eq!(event(&server, &photo_event("Ev20", "C0KIDS", "1700000020.000100", vec![file])).await.status(), 200);
    fake.wait_for("files.completeUploadExternal", 1, LIMIT).await;
    // The job's id, as the operator's log names it.
    let job = server
        .log_lines()
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find_map(|l| l["span"]["job"].as_str().map(str::to_owned))
        .expect("a log line names the job");
    let ours = command(&server, &fake, &format!("status {job}")).await;
    assert!(ours["text"].as_str().unwrap().contains("is done"), "{ours}");
    let theirs = command_from(&server, &fake, "T0OTHER", &format!("status {job}")).await;
    assert!(theirs["text"].as_str().unwrap().contains("don't know"), "{theirs}");

    // A job sent through the REST API is no workspace's.
    let up = server.upload_ok(render_page(&page()), "fox.png", &[("X-Duplication-Check-Required", "false")]).await;
    let rest = command(&server, &fake, &format!("status {}", up["ID"].as_str().unwrap())).await;
    assert!(rest["text"].as_str().unwrap().contains("don't know"), "{rest}");
}
