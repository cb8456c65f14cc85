//! Settings from AWS Secrets Manager (`STORYTIME_SECRETS`) against moto:
//! the Slack signing secret and the API keys come from a secret, not from
//! the environment; `doctor` says where they came from; an unreadable
//! secret stops the process with a message naming what is missing; a
//! secret rotated while the process runs is taken up.

use storytime_tests::fake_slack::{BOT_TOKEN, FakeSlack, Plan, SIGNING_SECRET, TEAM, photo_event};
use storytime_tests::moto::Moto;
use storytime_tests::slack_sign::{now, slack_signature};
use storytime_tests::{LIMIT, Page, Server, render_page, run_storytime};

fn aws_env(moto: &Moto) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", moto.url.clone()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
    ]
}

/// `storytime doctor` with `env`, off the async threads.
async fn doctor(env: &[(&'static str, String)]) -> std::process::Output {
    let env = env.to_vec();
    tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        run_storytime(&["doctor"], &env)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_come_from_secrets_manager_not_the_environment() {
    let moto = Moto::start();
    let client = aws_sdk_secretsmanager::Client::new(&moto.sdk_config().await);
    let settings = serde_json::json!({
        "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_BOT_TOKEN": BOT_TOKEN, "STORYTIME_API_KEYS": "key-from-the-secret",
    });
    let created =
        client.create_secret().name("storytime/settings").secret_string(settings.to_string()).send().await.unwrap();
    let arn = created.arn().unwrap().to_owned();

    let mut env = aws_env(&moto);
    env.push(("STORYTIME_SECRETS", arn.clone()));
    env.push(("SLACK_API_URL", "http://127.0.0.1:9/api".into()));
    let server = Server::start_with(&env, &[]);
    let retrieve = |key: Option<&'static str>| {
        let mut r = server.http.get(server.url("/retrieve")).header("ETag", "0".repeat(32)).header("Timestamp", "1");
        if let Some(key) = key {
            r = r.header("Authorization", format!("Bearer {key}"));
        }
        r.send()
    };
    assert_eq!(retrieve(None).await.unwrap().status(), 401, "the API keys from the secret are required");
    assert_eq!(retrieve(Some("key-from-the-secret")).await.unwrap().status(), 404, "and accepted");
    // Slack's requests are checked with the signing secret from the secret.
    let body = r#"{"type":"url_verification","challenge":"from-slack"}"#;
    let signed = server.post_signed("/slack/events", body, "application/json", &[]).await;
    assert_eq!(signed.status(), 200);
    assert!(signed.text().await.unwrap().contains("from-slack"));

    let report = doctor(&env).await;
    let stdout = String::from_utf8_lossy(&report.stdout);
    assert!(stdout.contains("read from Secrets Manager") && stdout.contains("STORYTIME_API_KEYS"), "{stdout}");
    assert!(!stdout.contains("key-from-the-secret"), "values are never printed: {stdout}");

    let mut elsewhere = env.clone();
    elsewhere.retain(|(k, _)| *k != "STORYTIME_SECRETS");
    elsewhere.push(("STORYTIME_SECRETS", "storytime/nowhere".into()));
    let out = doctor(&elsewhere).await;
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("storytime/nowhere") && said.contains("secretsmanager:GetSecretValue"), "{said}");
}

/// A rotated API key or signing secret is taken up at the first request
/// that uses it: a request that fails to authenticate makes the process
/// read its secrets again (at most once per
/// `STORYTIME_SECRETS_REREAD_SECONDS`, 0 here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_secrets_are_read_again_when_a_request_fails_to_authenticate() {
    let moto = Moto::start();
    let client = aws_sdk_secretsmanager::Client::new(&moto.sdk_config().await);
    let settings = |key: &str, signing: &str| {
        serde_json::json!({ "SLACK_SIGNING_SECRET": signing, "SLACK_BOT_TOKEN": BOT_TOKEN, "STORYTIME_API_KEYS": key })
            .to_string()
    };
    let created = client
        .create_secret()
        .name("storytime/rotating")
        .secret_string(settings("key-before", "signing-before"))
        .send()
        .await
        .unwrap();
    let arn = created.arn().unwrap().to_owned();
    let mut env = aws_env(&moto);
    env.push(("STORYTIME_SECRETS", arn.clone()));
    env.push(("STORYTIME_SECRETS_REREAD_SECONDS", "0".into()));
    env.push(("SLACK_API_URL", "http://127.0.0.1:9/api".into()));
    let server = Server::start_with(&env, &[]);
    let retrieve = |key: &'static str| {
        server
            .http
            .get(server.url("/retrieve"))
            .header("ETag", "0".repeat(32))
            .header("Timestamp", "1")
            .header("Authorization", format!("Bearer {key}"))
            .send()
    };
    let body = r#"{"type":"url_verification","challenge":"rotated"}"#;
    let slack = |secret: &'static str| {
        let at = now();
        server
            .http
            .post(server.url("/slack/events"))
            .header("Content-Type", "application/json")
            .header("X-Slack-Request-Timestamp", at.to_string())
            .header("X-Slack-Signature", slack_signature(secret, at, body))
            .body(body)
            .send()
    };
    assert_eq!(retrieve("key-before").await.unwrap().status(), 404);
    assert_eq!(slack("signing-before").await.unwrap().status(), 200);

    client
        .put_secret_value()
        .secret_id(&arn)
        .secret_string(settings("key-after", "signing-after"))
        .send()
        .await
        .unwrap();
    assert_eq!(retrieve("key-after").await.unwrap().status(), 404, "the new key is taken up");
    assert_eq!(retrieve("key-before").await.unwrap().status(), 401, "the old key no longer passes");
    assert_eq!(slack("signing-after").await.unwrap().status(), 200, "the new signing secret is taken up");
    assert_eq!(slack("signing-before").await.unwrap().status(), 401);
    assert_eq!(retrieve("never-a-key").await.unwrap().status(), 401);
}

/// The Slack app's settings in a secret with `token` as its bot token, and
/// the environment of a server reading them from there (and read again at
/// every refusal, `STORYTIME_SECRETS_REREAD_SECONDS=0`).
async fn slack_from_a_secret(
    moto: &Moto,
    fake: &FakeSlack,
    token: &str,
) -> (aws_sdk_secretsmanager::Client, String, Vec<(String, String)>) {
    let client = aws_sdk_secretsmanager::Client::new(&moto.sdk_config().await);
    let created =
        client.create_secret().name("storytime/slack").secret_string(slack_settings(token)).send().await.unwrap();
    let arn = created.arn().unwrap().to_owned();
    let mut env: Vec<(String, String)> = aws_env(moto).into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    env.extend(fake.env().into_iter().filter(|(k, _)| k == "SLACK_API_URL"));
    env.push(("STORYTIME_SECRETS".into(), arn.clone()));
    env.push(("STORYTIME_SECRETS_REREAD_SECONDS".into(), "0".into()));
    (client, arn, env)
}

fn slack_settings(token: &str) -> String {
    serde_json::json!({ "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_BOT_TOKEN": token }).to_string()
}

/// Shares a photo of a page in the fake Slack's channel.
async fn share_a_photo(server: &Server, fake: &FakeSlack, ts: &str) {
    let page = Page::new(&["The owl kept the lantern lit all night."]);
    let file = fake.add_file(&format!("F{ts}"), "owl.png", "image/png", render_page(&page));
    let body = photo_event(&format!("Ev{ts}"), "C0KIDS", ts, vec![file]);
    assert_eq!(server.post_signed("/slack/events", &body, "application/json", &[]).await.status(), 200);
}

/// A bot token replaced in Secrets Manager (the app was reinstalled, which
/// revoked the old token) is taken up when Slack first refuses the old one:
/// the photo shared next is read and its narration posted with the new
/// token, instead of the work being given up on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_token_replaced_in_secrets_manager_is_taken_up_when_slack_refuses_the_old_one() {
    const REVOKED: &str = "xoxb-revoked-by-the-reinstall";
    let moto = Moto::start();
    let fake = FakeSlack::start().await;
    let (client, arn, env) = slack_from_a_secret(&moto, &fake, REVOKED).await;
    let server = Server::start_with(&env, &[]);

    client.put_secret_value().secret_id(&arn).secret_string(slack_settings(BOT_TOKEN)).send().await.unwrap();
    share_a_photo(&server, &fake, "1700000009.000100").await;

    let posted = fake.wait_for("files.completeUploadExternal", 1, LIMIT).await;
    assert_eq!(posted[0].params["thread_ts"], "1700000009.000100");
    assert_eq!(posted[0].authorization.as_deref(), Some(format!("Bearer {BOT_TOKEN}").as_str()));
    let refused =
        fake.all_calls().iter().filter(|c| c.authorization.as_deref() == Some(&format!("Bearer {REVOKED}"))).count();
    assert!(refused > 0, "the old token was tried first, and refused");
}

/// The same when the token is replaced while a page is being read: the
/// delivery Slack refuses is tried again with the new token, and the
/// narration lands in the thread rather than going by email.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_refused_for_a_replaced_bot_token_is_made_with_the_new_one() {
    let moto = Moto::start();
    let fake = FakeSlack::start().await;
    let (client, arn, env) = slack_from_a_secret(&moto, &fake, BOT_TOKEN).await;
    let server = Server::start_with(&env, &[]);
    // Reinstalled: a new token in the secret, which the process has not
    // read yet; Slack refuses the old one from the delivery on.
    let reissued = fake.issue_token(TEAM);
    client.put_secret_value().secret_id(&arn).secret_string(slack_settings(&reissued)).send().await.unwrap();
    fake.plan("files.getUploadURLExternal", Plan::Error("token_revoked"));
    share_a_photo(&server, &fake, "1700000010.000100").await;

    let posted = fake.wait_for("files.completeUploadExternal", 1, LIMIT).await;
    assert_eq!(posted[0].params["thread_ts"], "1700000010.000100");
    assert_eq!(posted[0].authorization.as_deref(), Some(format!("Bearer {reissued}").as_str()));
    let uploads = fake.calls("files.getUploadURLExternal");
    assert_eq!(uploads.len(), 2, "refused once, then made with the new token");
    assert_eq!(uploads[0].authorization.as_deref(), Some(format!("Bearer {BOT_TOKEN}").as_str()));
    assert!(server.outbox().is_empty(), "nothing went by email: {:?}", server.outbox());
}
