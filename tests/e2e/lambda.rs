//! `storytime lambda` under a stand-in for the Lambda Runtime API on
//! loopback: the function takes an invocation, answers it, and writes the
//! invocation's metrics to its log in CloudWatch's embedded metric format.

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use serde_json::Value;
use storytime_tests::storytime_bin;

/// The runtime API's side: one invocation to hand out, and its answer.
#[derive(Clone, Default)]
struct Runtime {
    handed_out: Arc<Mutex<bool>>,
    answer: Arc<Mutex<Option<Value>>>,
}

async fn next(State(rt): State<Runtime>) -> (HeaderMap, String) {
    let first = !std::mem::replace(&mut *rt.handed_out.lock().unwrap(), true);
    if !first {
        // No more work: the function waits here, as on Lambda.
        std::future::pending::<()>().await;
    }
    let mut headers = HeaderMap::new();
    headers.insert("lambda-runtime-aws-request-id", "req-1".parse().unwrap());
    headers.insert("lambda-runtime-deadline-ms", (storytime_pipeline::now_ms() + 60_000).to_string().parse().unwrap());
    headers.insert("lambda-runtime-invoked-function-arn", "arn:aws:lambda:us-east-1:1:function:sweep".parse().unwrap());
    (headers, r#"{"source": "aws.events", "detail-type": "Scheduled Event"}"#.to_owned())
}

async fn response(State(rt): State<Runtime>, Path(_id): Path<String>, body: String) -> &'static str {
    *rt.answer.lock().unwrap() = Some(serde_json::from_str(&body).unwrap_or(Value::String(body)));
    "{}"
}

#[tokio::test]
async fn a_scheduled_sweep_answers_and_writes_its_metrics_in_embedded_metric_format() {
    let rt = Runtime::default();
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
        .with_state(rt.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let data = tempfile::tempdir().unwrap();
    let out = data.path().join("stdout");
    let mut child = Command::new(storytime_bin())
        .args(["lambda", "sweep"])
        .env("AWS_LAMBDA_RUNTIME_API", &api)
        .env("AWS_LAMBDA_FUNCTION_NAME", "storytime-sweep")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("STORYTIME_DATA_DIR", data.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::from(std::fs::File::create(&out).unwrap()))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let answer = loop {
        if let Some(answer) = rt.answer.lock().unwrap().clone() {
            break answer;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "no answer to the invocation");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(answer["requeued"], 0, "{answer}");
    let _ = child.kill();
    let _ = child.wait();

    // Every line on stdout is an embedded-metric-format document.
    let log = std::fs::read_to_string(&out).unwrap();
    let docs: Vec<Value> = log.lines().map(|l| serde_json::from_str(l).expect("one JSON object per line")).collect();
    assert!(!docs.is_empty(), "no metrics were written");
    let directives = &docs[0]["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(directives["Namespace"], "Storytime", "{}", docs[0]);
    assert!(docs.iter().any(|d| d["function"] == "sweep" && d["storytime_build_info"] == 1.0), "{log}");
}
