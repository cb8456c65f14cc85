//! Each Lambda function's handler, run as Lambda runs it (`storytime
//! lambda <function>` under a stand-in for the Lambda Runtime API) against
//! moto, signing with its own access key through a recording proxy; every
//! AWS call it makes is then checked against the actions its role allows
//! in `deploy/template.yaml`, as SAM expands it. A call the role does not
//! allow fails the test, naming the function and the action; an action a
//! role allows but that was never called is printed (least privilege).

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use storytime_tests::aws_proxy::RecordingProxy;
use storytime_tests::fake_slack::{FakeSlack, SIGNING_SECRET, photo_event};
use storytime_tests::lambda_runtime::{FunctionProcess, LambdaRuntime};
use storytime_tests::moto::Moto;
use storytime_tests::slack_sign::{now, slack_signature};
use storytime_tests::{Page, render_page, run_storytime, storytime_bin};

const API_KEY: &str = "roles-test-key";
const LIMIT: Duration = Duration::from_secs(120);

fn aws_env(proxy: &str, key: &str, slack: &[(String, String)]) -> Vec<(String, String)> {
    [
        ("STORYTIME_BACKEND", "aws"),
        ("STORYTIME_READER", "tesseract"),
        ("STORYTIME_NARRATOR", "espeak"),
        ("STORYTIME_API_KEYS", API_KEY),
        // As the template sets them: the topic by its ARN (a name would be
        // looked up with sns:ListTopics, which no role needs).
        ("STORYTIME_SNS_TOPIC", "arn:aws:sns:us-east-1:123456789012:storytime-results"),
        ("AWS_ENDPOINT_URL", proxy),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", key),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .chain(slack.iter().cloned())
    .collect()
}

/// `storytime lambda <function>`, signing as `<function>`.
struct Function {
    runtime: LambdaRuntime,
    _process: FunctionProcess,
    _data: tempfile::TempDir,
}

impl Function {
    async fn start(name: &str, proxy: &str, slack: &[(String, String)]) -> Self {
        Self::start_with(name, proxy, slack, &[]).await
    }

    async fn start_with(name: &str, proxy: &str, slack: &[(String, String)], extra: &[(&str, &str)]) -> Self {
        let runtime = LambdaRuntime::start().await;
        let data = tempfile::tempdir().unwrap();
        let mut command = Command::new(storytime_bin());
        command
            .args(["lambda", name])
            .envs(aws_env(proxy, name, slack))
            .env("AWS_LAMBDA_FUNCTION_NAME", format!("storytime-{name}"))
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("STORYTIME_DATA_DIR", data.path())
            .env("RUST_LOG", std::env::var("TEST_LOG").unwrap_or_else(|_| "warn".into()))
            .env_remove("AWS_PROFILE")
            .envs(extra.iter().copied())
            .stdout(Stdio::null());
        let process = runtime.spawn(command);
        Self { runtime, _process: process, _data: data }
    }

    async fn invoke(&self, event: Value) -> Value {
        self.runtime.invoke(event, LIMIT).await
    }
}

/// An API Gateway HTTP API (payload 2.0) request.
fn http_event(method: &str, path: &str, headers: Value, body: Option<&[u8]>) -> Value {
    json!({
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012", "apiId": "api", "domainName": "api.example.com", "domainPrefix": "api",
            "http": { "method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "test" },
            "requestId": "r", "routeKey": "$default", "stage": "$default",
            "time": "06/Dec/2026:03:00:00 +0000", "timeEpoch": 1_796_000_000_000u64
        },
        "body": body.map(|b| STANDARD.encode(b)), "isBase64Encoded": body.is_some()
    })
}

/// The messages waiting in `queue`, as the SQS event Lambda would hand over
/// (received from moto directly, so the test's own calls are not counted).
async fn sqs_event(sqs: &aws_sdk_sqs::Client, queue: &str) -> Value {
    let url = sqs.get_queue_url().queue_name(queue).send().await.unwrap().queue_url.unwrap();
    let mut records = Vec::new();
    for _ in 0..20 {
        let got = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap();
        for m in got.messages() {
            let attributes: BTreeMap<String, String> = m
                .attributes()
                .map(|a| a.iter().map(|(k, v)| (k.as_str().to_owned(), v.clone())).collect())
                .unwrap_or_default();
            records.push(json!({
                "messageId": m.message_id(), "receiptHandle": m.receipt_handle(), "body": m.body(),
                "attributes": attributes, "messageAttributes": {}, "md5OfBody": m.md5_of_body(),
                "eventSource": "aws:sqs", "eventSourceARN": format!("arn:aws:sqs:us-east-1:123456789012:{queue}"),
                "awsRegion": "us-east-1"
            }));
        }
        if !records.is_empty() {
            break;
        }
    }
    assert!(!records.is_empty(), "nothing arrived in {queue}");
    json!({ "Records": records })
}

/// What each function's role allows, from the template as SAM expands it.
fn allowed() -> BTreeMap<String, BTreeSet<String>> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let python = format!("{root}/.venv-deploy/bin/python");
    assert!(
        std::path::Path::new(&python).exists(),
        "{python} is missing: run scripts/test, which installs the template checker"
    );
    let out = Command::new(python)
        .arg("role_actions.py")
        .arg("template.yaml")
        .current_dir(format!("{root}/deploy"))
        .output()
        .expect("run role_actions.py");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_function_calls_only_what_its_role_allows() {
    let moto = Moto::start();
    let proxy = RecordingProxy::start(&moto.url).await;
    let fake = FakeSlack::start().await;
    let slack = fake.env();
    let env = aws_env(&proxy.url, "init", &slack);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let init = run_storytime(&["init"], &env);
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let sqs = aws_sdk_sqs::Client::new(&moto.sdk_config().await);

    // A page through every function, each started as Lambda starts it.
    let api = Function::start("api", &proxy.url, &slack).await;
    let page = render_page(&Page::new(&["The little owl read a book under the moon."]));
    let headers = json!({
        "content-type": "image/png", "authorization": format!("Bearer {API_KEY}"),
        "x-notification-required": "true", "x-file-name": "owl.png", "host": "api.example.com"
    });
    let answer = api.invoke(http_event("POST", "/upload", headers, Some(&page))).await;
    assert_eq!(answer["statusCode"], 200, "{answer}");
    let body: Value = serde_json::from_str(answer["body"].as_str().unwrap_or("{}")).unwrap_or_default();
    let (id, ts) = (body["ID"].as_str().unwrap().to_owned(), body["Timestamp"].as_str().unwrap().to_owned());
    // And a photo shared in Slack, signed as Slack signs it.
    let file = fake.add_file("F0ROLES", "owl.png", "image/png", page.clone());
    let event = photo_event("EvRoles", "C0ROLES", "1700000900.000100", vec![file]);
    let at = now();
    let headers = json!({
        "content-type": "application/json", "host": "api.example.com",
        "x-slack-request-timestamp": at.to_string(), "x-slack-signature": slack_signature(SIGNING_SECRET, at, &event)
    });
    let answer = api.invoke(http_event("POST", "/slack/events", headers, Some(event.as_bytes()))).await;
    assert_eq!(answer["statusCode"], 200, "{answer}");
    // And a large photo: a presigned link from the api function, the photo
    // sent to S3 with it, S3's notification handled by the inbound function.
    let headers = json!({ "authorization": format!("Bearer {API_KEY}"), "host": "api.example.com" });
    let answer = api.invoke(http_event("POST", "/uploads", headers, None)).await;
    assert_eq!(answer["statusCode"], 201, "{answer}");
    let upload: Value = serde_json::from_str(answer["body"].as_str().unwrap_or("{}")).unwrap_or_default();
    let link = upload["UploadURL"].as_str().expect("an upload link");
    let other = render_page(&Page::new(&["The big bear slept all winter long."]));
    let put = reqwest::Client::new().put(link).body(other).send().await.unwrap();
    assert!(put.status().is_success(), "{}", put.status());
    for (function, queue) in [
        ("inbound", "storytime-inbound"),
        ("read", "storytime-read"),
        ("narrate", "storytime-narrate"),
        ("deliver", "storytime-deliver"),
    ] {
        let f = Function::start(function, &proxy.url, &slack).await;
        let answer = f.invoke(sqs_event(&sqs, queue).await).await;
        assert_eq!(answer["batchItemFailures"], json!([]), "{function}: {answer}");
    }
    let headers =
        json!({ "authorization": format!("Bearer {API_KEY}"), "etag": id, "timestamp": ts, "host": "api.example.com" });
    let answer = api.invoke(http_event("GET", "/retrieve", headers, None)).await;
    assert_eq!(answer["statusCode"], 200, "{answer}");
    let sweep = Function::start("sweep", &proxy.url, &slack).await;
    let answer = sweep.invoke(json!({ "source": "aws.events", "detail-type": "Scheduled Event" })).await;
    assert!(answer["requeued"].is_number(), "{answer}");

    // Every call against its role.
    let allowed = allowed();
    let mut called: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in proxy.take().into_iter().filter(|r| r.key != "init") {
        called.entry(r.key).or_default().extend(r.actions);
    }
    let mut refused = Vec::new();
    for (function, actions) in &called {
        let role = allowed.get(function).unwrap_or_else(|| panic!("no function {function} in the template"));
        for action in actions {
            if !role.contains(action) {
                refused.push(format!("{function}: {action} is not allowed by its role"));
            }
        }
        let unused: Vec<&String> = role.iter().filter(|a| !actions.contains(*a) && !a.starts_with("logs:")).collect();
        if !unused.is_empty() {
            println!("{function}: allowed but not called in this run: {unused:?}");
        }
    }
    assert!(refused.is_empty(), "{}\ncalled: {called:?}", refused.join("\n"));
    for function in ["api", "inbound", "read", "narrate", "deliver", "sweep"] {
        assert!(called.contains_key(function), "{function} made no AWS call: {called:?}");
    }
}

/// The messages waiting in `queue`, `n` of them, as one SQS event.
async fn sqs_batch(sqs: &aws_sdk_sqs::Client, queue: &str, n: usize) -> Value {
    let mut event = sqs_event(sqs, queue).await;
    let records = |e: &Value| e["Records"].as_array().map_or(0, Vec::len);
    while records(&event) < n {
        let more = sqs_event(sqs, queue).await;
        event["Records"].as_array_mut().unwrap().extend(more["Records"].as_array().unwrap().iter().cloned());
    }
    event
}

/// Under the Lambda runtime, each stage's batch holding messages worth
/// retrying (a service the stage needs is down) and one that is not (its
/// job does not exist, or the request means nothing) answers a partial
/// batch response naming the first only, so Lambda deletes the rest and
/// SQS hands those back. With the service back, the same messages go
/// through and on to the next stage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_stage_reports_only_the_messages_worth_retrying() {
    use storytime_pipeline::{JobId, StageMessage};
    let moto = Moto::start();
    let env = aws_env(&moto.url, "init", &[]);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let init = run_storytime(&["init"], &env);
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let sqs = aws_sdk_sqs::Client::new(&moto.sdk_config().await);
    // The inbound function serves the Slack app as well.
    let fake = FakeSlack::start().await;
    let slack = fake.env();

    // Two books, each to be emailed: one sent to /upload, one through an
    // upload link (S3 announces it on the inbound queue).
    let api = Function::start("api", &moto.url, &[]).await;
    let headers = |more: Value| {
        let mut h = json!({
            "authorization": format!("Bearer {API_KEY}"), "x-notification-required": "true", "host": "api.example.com"
        });
        h.as_object_mut().unwrap().extend(more.as_object().unwrap().clone());
        h
    };
    let page = render_page(&Page::new(&["The cat sat on a warm mat."]));
    let answer =
        api.invoke(http_event("POST", "/upload", headers(json!({ "content-type": "image/png" })), Some(&page))).await;
    assert_eq!(answer["statusCode"], 200, "{answer}");
    let answer = api.invoke(http_event("POST", "/uploads", headers(json!({})), None)).await;
    assert_eq!(answer["statusCode"], 201, "{answer}");
    let upload: Value = serde_json::from_str(answer["body"].as_str().unwrap_or("{}")).unwrap_or_default();
    let other = render_page(&Page::new(&["The dog slept by the fire."]));
    let put = reqwest::Client::new().put(upload["UploadURL"].as_str().unwrap()).body(other).send().await.unwrap();
    assert!(put.status().is_success(), "{}", put.status());

    let down = "http://127.0.0.1:9";
    // A directory is not a program: reading fails, retryably.
    let broken = tempfile::tempdir().unwrap();
    let tesseract = broken.path().display().to_string();
    let nothing = JobId::new();
    // Each stage's function, the service it is run without, a message not
    // worth retrying, and how many are (the inbound queue also holds S3's
    // test event, sent when the bucket was set to announce uploads).
    let stages = [
        (
            "inbound",
            ("AWS_ENDPOINT_URL_DYNAMODB", down),
            StageMessage::Inbound {
                source: "slack".into(),
                key: "stray".into(),
                payload: "{\"kind\":\"nothing\"}".into(),
            },
            1,
        ),
        ("read", ("STORYTIME_TESSERACT", tesseract.as_str()), StageMessage::read(nothing.clone(), 0), 2),
        ("narrate", ("AWS_ENDPOINT_URL_S3", down), StageMessage::narrate(nothing.clone()), 2),
        ("deliver", ("AWS_ENDPOINT_URL_SNS", down), StageMessage::Deliver { job: nothing.clone(), recipient: 0 }, 2),
    ];
    for (function, service_down, stray, waiting) in stages {
        let queue = format!("storytime-{function}");
        let url = sqs.get_queue_url().queue_name(&queue).send().await.unwrap().queue_url.unwrap();
        let stray = stray.to_json();
        sqs.send_message().queue_url(&url).message_body(&stray).send().await.unwrap();
        let noise = |r: &Value| {
            let body = r["body"].as_str().unwrap_or_default();
            body == stray || body.contains("s3:TestEvent")
        };
        let event = sqs_batch(&sqs, &queue, waiting + if function == "inbound" { 2 } else { 1 }).await;
        let worth: Vec<Value> = event["Records"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| !noise(r))
            .map(|r| json!({ "itemIdentifier": r["messageId"] }))
            .collect();
        assert_eq!(worth.len(), waiting, "{function}: {event}");

        let failing = Function::start_with(function, &moto.url, &slack, &[service_down]).await;
        let answer = failing.invoke(event.clone()).await;
        let mut failed = answer["batchItemFailures"].as_array().cloned().unwrap_or_default();
        failed.sort_by_key(|f| f["itemIdentifier"].to_string());
        let mut expected = worth.clone();
        expected.sort_by_key(|f| f["itemIdentifier"].to_string());
        assert_eq!(failed, expected, "{function} with {} down: {answer}", service_down.0);

        let mut again = event.clone();
        again["Records"].as_array_mut().unwrap().retain(|r| !noise(r));
        let working = Function::start(function, &moto.url, &slack).await;
        let answer = working.invoke(again).await;
        assert_eq!(answer["batchItemFailures"], json!([]), "{function}, its service back: {answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_api_behind_api_gateway_answers_on_its_own_host_name() {
    // OpenApi=true: no keys, and no STORYTIME_PUBLIC_URL (the template
    // cannot give the functions their own API's address).
    let moto = Moto::start();
    let env = aws_env(&moto.url, "init", &[]);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let init = run_storytime(&["init"], &env);
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let api = Function::start_with("api", &moto.url, &[], &[("STORYTIME_API_KEYS", "")]).await;
    let page = render_page(&Page::new(&["The fox ran over the hill."]));
    let host = "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com";
    let upload = |headers: Value| http_event("POST", "/upload", headers, Some(&page));

    let headers = json!({ "content-type": "image/png", "x-notification-required": "false", "host": host });
    let answer = api.invoke(upload(headers)).await;
    assert_eq!(answer["statusCode"], 200, "{answer}");
    // The web page served there posts from the same origin.
    let headers = json!({
        "content-type": "image/png", "x-notification-required": "false", "host": host,
        "origin": format!("https://{host}"), "sec-fetch-site": "same-origin"
    });
    assert_eq!(api.invoke(upload(headers)).await["statusCode"], 200);
    // Another site's page still may not post to it.
    let headers = json!({
        "content-type": "image/png", "x-notification-required": "false", "host": host,
        "origin": "https://attacker.example", "sec-fetch-site": "cross-site"
    });
    let answer = api.invoke(upload(headers)).await;
    assert_eq!(answer["statusCode"], 403, "{answer}");
    assert!(answer["body"].as_str().unwrap().contains("cross_site"), "{answer}");
    // The web page keeps a book's photos within API Gateway's limit.
    let answer = api.invoke(http_event("GET", "/", json!({ "host": host }), None)).await;
    assert_eq!(answer["statusCode"], 200, "{answer}");
    let page = answer["body"].as_str().unwrap();
    assert!(page.contains(r#"data-book-bytes="4194304""#), "{page}");
}
