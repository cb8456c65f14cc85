//! `storytime lambda` under a stand-in for the Lambda Runtime API on
//! loopback: the function takes an invocation, answers it, and writes the
//! invocation's metrics to its log in CloudWatch's embedded metric format.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use storytime_tests::lambda_runtime::LambdaRuntime;
use storytime_tests::storytime_bin;

#[tokio::test]
async fn a_scheduled_sweep_answers_and_writes_its_metrics_in_embedded_metric_format() {
    let runtime = LambdaRuntime::start().await;
    let api = runtime.address.clone();
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
    let event = json!({ "source": "aws.events", "detail-type": "Scheduled Event" });
    let answer = runtime.invoke(event, Duration::from_secs(60)).await;
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
