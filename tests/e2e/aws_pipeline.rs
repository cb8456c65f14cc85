//! The whole pipeline with `STORYTIME_BACKEND=aws` against moto on
//! loopback: S3, SQS, DynamoDB and SNS for real (as moto emulates them),
//! with the local reader and narrator mixed in (moto's Rekognition and Polly
//! answer canned results; their adapters have their own tests).

use aws_sdk_dynamodb::types::AttributeValue;
use storytime_tests::fake_slack::{FakeSlack, Plan, photo_event};
use storytime_tests::moto::Moto;
use storytime_tests::{LIMIT, Page, Server, mp3_seconds, render_page, run_storytime};

/// The variables that put every port but the engines on moto.
fn aws_env(moto: &Moto) -> Vec<(&'static str, String)> {
    vec![
        ("STORYTIME_BACKEND", "aws".into()),
        ("STORYTIME_READER", "tesseract".into()),
        ("STORYTIME_NARRATOR", "espeak".into()),
        ("AWS_ENDPOINT_URL", moto.url.clone()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
    ]
}

/// Runs `storytime init` and returns what it printed.
fn init(env: &[(&str, String)]) -> String {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = run_storytime(&["init"], &env);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "init failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

#[tokio::test]
async fn a_page_goes_through_s3_sqs_dynamodb_and_sns() {
    let moto = Moto::start();
    let env = aws_env(&moto);
    let first = init(&env);
    assert!(first.contains("created bucket  storytime-media"), "{first}");
    assert!(first.contains("created queue   storytime-read-dlq"), "{first}");
    assert!(first.contains("created table   storytime-jobs"), "{first}");
    let again = init(&env);
    assert!(!again.contains("created"), "a second init changes nothing: {again}");

    let server = Server::start_with(&env, &[]);
    let page = Page::new(&["The little fox found a red kite in the tall grass."]);
    let png = render_page(&page);

    // Five concurrent uploads of the same page: one job, made once.
    let answers = futures::future::join_all((0..5).map(|_| server.upload_ok(png.clone(), "fox.png", &[]))).await;
    let id = answers[0]["ID"].as_str().unwrap().to_owned();
    assert!(answers.iter().all(|a| a["ID"] == id.as_str()), "{answers:?}");
    assert_eq!(answers.iter().filter(|a| a["Duplicate"] == false).count(), 1, "{answers:?}");

    let (status, done) = server.wait_for(&id, answers[0]["Timestamp"].as_str().unwrap(), LIMIT).await;
    assert_eq!(status, 200, "{done}");
    assert!(done["Text"].as_str().unwrap().contains("red kite"), "{done}");

    // The MP3 is an S3 object, reached through a presigned link.
    let link = done["DownURL"].as_str().unwrap();
    assert!(link.starts_with(&moto.url) && link.contains("X-Amz-Signature="), "{link}");
    let audio = reqwest::get(link).await.unwrap();
    assert_eq!(audio.headers()["content-type"], "audio/mpeg");
    assert!(mp3_seconds(&audio.bytes().await.unwrap()) > 2.0);
    let sdk = moto.sdk_config().await;
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).build());
    let objects = s3.list_objects_v2().bucket("storytime-media").send().await.unwrap();
    let keys: Vec<&str> = objects.contents().iter().filter_map(|o| o.key()).collect();
    assert!(keys.iter().any(|k| k.ends_with(".mp3")), "{keys:?}");

    // Nothing is left in any queue, dead-letter queues included.
    let health = server.settled(LIMIT).await;
    for stage in ["inbound", "read", "narrate", "deliver"] {
        assert_eq!(health["queues"][stage]["dead"], 0, "{health}");
    }

    // X-Notification-Required defaults to true: each upload asked for the
    // result by email, which went to SNS for the default recipients.
    let mails = moto.wait_for_published(answers.len()).await;
    assert_eq!(mails.len(), answers.len(), "{mails:?}");
    for (subject, message, to) in &mails {
        assert_eq!(subject, "Your story is ready: fox.png");
        assert!(message.contains("red kite") && message.contains("/storytime-media/audio/"), "{message}");
        assert_eq!(to, "default");
    }

    // The job is a DynamoDB item, finished, delivered, and out of the
    // attention index the stall sweep reads (the delivery is recorded just
    // after the mail is published).
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let start = std::time::Instant::now();
    let item = loop {
        let item = dynamo
            .get_item()
            .table_name("storytime-jobs")
            .key("pk", AttributeValue::S(format!("job#{id}")))
            .send()
            .await
            .unwrap()
            .item
            .expect("the job is stored");
        if !item.contains_key("attention") || start.elapsed() > LIMIT {
            break item;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(item["job_status"].as_s().unwrap(), "done");
    assert!(!item.contains_key("attention"), "every delivery recorded: {item:?}");
    assert!(item["expires_at"].as_n().is_ok(), "records carry the TTL attribute");
}

#[tokio::test]
async fn work_that_keeps_failing_lands_in_its_dead_letter_queue_and_the_job_says_why() {
    let moto = Moto::start();
    let env = aws_env(&moto);
    init(&env);
    // A directory is not a program: each attempt fails with a retryable error.
    let not_a_program = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        &env,
        &[
            ("STORYTIME_TESSERACT", not_a_program.path().to_str().unwrap()),
            ("STORYTIME_MAX_ATTEMPTS", "2"),
            ("STORYTIME_RETRY_BASE_MS", "50"),
        ],
    );
    let up = server.upload_ok(render_page(&Page::new(&["A hen laid an egg."])), "fox.png", &[]).await;
    let (status, body) = server.wait_for_job(&up).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["Reason"], "kept_failing");

    let sdk = moto.sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let dlq = sqs.get_queue_url().queue_name("storytime-read-dlq").send().await.unwrap().queue_url.unwrap();
    let dead = sqs
        .receive_message()
        .queue_url(dlq)
        .message_attribute_names("All")
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert_eq!(dead.len(), 1);
    assert!(dead[0].body().unwrap().contains(up["ID"].as_str().unwrap()));
    let reason = dead[0].message_attributes().and_then(|a| a.get("reason")).and_then(|r| r.string_value());
    assert!(reason.is_some_and(|r| !r.is_empty()), "the dead letter says why: {reason:?}");
}

#[tokio::test]
async fn without_init_the_service_says_what_is_missing() {
    let moto = Moto::start();
    let env = aws_env(&moto);
    let data = tempfile::tempdir().unwrap();
    let mut vars: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    vars.push(("STORYTIME_DATA_DIR", data.path().to_str().unwrap()));
    let doctor = || run_storytime(&["doctor"], &vars);
    let out = doctor();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(text.contains("bucket storytime-media") && text.contains("run `storytime init`"), "{text}");
    init(&env);
    let out = doctor();
    let text = String::from_utf8_lossy(&out.stdout);
    for resource in ["s3", "sqs", "dynamodb", "sns"] {
        assert!(text.lines().any(|l| l.starts_with("ok") && l.contains(resource)), "{resource}: {text}");
    }
}

#[tokio::test]
async fn when_slack_delivery_fails_on_aws_the_result_is_published_to_sns() {
    let moto = Moto::start();
    let env = aws_env(&moto);
    init(&env);
    let fake = FakeSlack::start().await;
    let mut all: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    all.extend(fake.env());
    let server = Server::start_with(&all, &[]);
    fake.plan("files.getUploadURLExternal", Plan::Error("not_in_channel"));
    let page = Page::new(&["The sleepy dragon counted sheep until the sun came up."]);
    let file = fake.add_file("F0PAGE", "dragon.png", "image/png", render_page(&page));
    let body = photo_event("EvAws1", "C0GONE", "1700000100.000100", vec![file]);
    let answer = server.post_signed("/slack/events", &body, "application/json", &[]).await;
    assert_eq!(answer.status(), 200);
    let mails = moto.wait_for_published(1).await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0].0, "Your story is ready: dragon.png");
    assert!(mails[0].1.contains("sleepy dragon"), "{}", mails[0].1);
    server.settled(LIMIT).await;
    assert!(fake.calls("files.completeUploadExternal").is_empty());
}

/// A photo sent to the presigned link `POST /uploads` answers goes to S3
/// itself; the bucket's notification on the inbound queue (set up by
/// `storytime init`) starts the job.
#[tokio::test]
async fn a_photo_sent_to_a_presigned_link_is_taken_in_when_s3_announces_it() {
    let moto = Moto::start();
    let env = aws_env(&moto);
    let first = init(&env);
    assert!(first.contains("created upload notifications storytime-media incoming/* to storytime-inbound"), "{first}");
    assert!(!init(&env).contains("created"), "a second init changes nothing");
    let server = Server::start_with(&env, &[]);

    let r = server
        .http
        .post(server.url("/uploads"))
        .header("Content-Disposition", "attachment; filename=\"kite.png\"")
        .header("X-Notification-Required", "false")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let upload: serde_json::Value = r.json().await.unwrap();
    let url = upload["UploadURL"].as_str().unwrap();
    assert!(url.starts_with(&moto.url) && url.contains("X-Amz-Signature="), "a presigned S3 link: {url}");
    let (id, ts) = (upload["ID"].as_str().unwrap(), upload["Timestamp"].as_str().unwrap());
    assert_eq!(server.retrieve(id, ts).await.status(), 503);

    let page = Page::new(&["The wind took the red kite over the hill."]);
    let put = server.http.put(url).body(render_page(&page)).send().await.unwrap();
    assert!(put.status().is_success(), "S3 took the photo: {}", put.status());
    let (status, done) = server.wait_for(id, ts, LIMIT).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["Name"], "kite.png");
    assert!(done["Text"].as_str().unwrap().contains("red kite"), "{done}");

    // The photo left the incoming area once taken in.
    let s3 = aws_sdk_s3::Client::new(&moto.sdk_config().await);
    let left = s3.list_objects_v2().bucket("storytime-media").prefix("incoming/").send().await.unwrap();
    assert_eq!(left.key_count(), Some(0), "{left:?}");
}
