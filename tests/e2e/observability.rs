//! What an operator sees: `/metrics` with the contract's names and counts
//! that match the work done, one JSON object per log line with each
//! stage's time and job, and the Prometheus dashboard's every query
//! evaluated by a real Prometheus scraping the server.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use storytime_tests::fake_slack::{FakeSlack, photo_event};
use storytime_tests::{LIMIT, Page, Server, render_page};

/// Prometheus from Debian's package, scraping one target every second.
struct Prometheus {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        let host = target.trim_start_matches("http://");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: storytime\n    static_configs:\n      - targets: ['{host}']\n"
            ),
        )
        .unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start prometheus (scripts/test installs Debian's prometheus package)");
        // Prometheus logs when it is ready; keep reading so it never blocks.
        let mut log = BufReader::new(child.stderr.take().unwrap()).lines();
        for line in log.by_ref() {
            let line = line.unwrap();
            if line.contains("Server is ready to receive web requests") {
                break;
            }
        }
        std::thread::spawn(move || for _ in log {});
        Self { child, url: format!("http://127.0.0.1:{port}"), _dir: dir }
    }

    async fn query(&self, expr: &str) -> Value {
        let url = format!("{}/api/v1/query", self.url);
        reqwest::Client::new().get(url).query(&[("query", expr)]).send().await.unwrap().json().await.unwrap()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A sample's value from a Prometheus text page, by its exact series.
fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{series} not in:\n{metrics}"))
}

#[tokio::test]
async fn metrics_logs_and_the_dashboard_show_the_work_done() {
    let fake = FakeSlack::start().await;
    let server = Server::start_with(&fake.env(), &[("STORYTIME_LOG_FORMAT", "json"), ("RUST_LOG", "info")]);

    // Two pages by REST, one photo in Slack.
    let mut jobs = Vec::new();
    for (i, text) in ["The cat sat on the warm mat.", "A dog ran after the red ball."].iter().enumerate() {
        let up = server.upload_ok(render_page(&Page::new(&[text])), &format!("p{i}.png"), &[]).await;
        jobs.push(up);
    }
    let file =
        fake.add_file("F0OBS", "owl.png", "image/png", render_page(&Page::new(&["The owl hooted at the moon."])));
    let r = server
        .post_signed(
            "/slack/events",
            &photo_event("EvObs", "C0OBS", "1700000900.000100", vec![file]),
            "application/json",
            &[],
        )
        .await;
    assert_eq!(r.status(), 200);
    for up in &jobs {
        assert_eq!(server.wait_for_job(up).await.0, 200);
    }
    fake.wait_for("files.completeUploadExternal", 1, LIMIT).await;
    server.wait_for_emails(2).await;
    server.settled(LIMIT).await;

    // The counts match the work: three pages read and narrated, three jobs
    // done and delivered, one Slack event handled.
    let metrics = server.http.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    for stage in ["read", "narrate", "deliver"] {
        assert_eq!(sample(&metrics, &format!("storytime_stage_duration_seconds_count{{stage=\"{stage}\"}}")), 3.0);
        assert_eq!(sample(&metrics, &format!("storytime_stage_wait_seconds_count{{stage=\"{stage}\"}}")), 3.0);
    }
    assert_eq!(sample(&metrics, "storytime_stage_duration_seconds_count{stage=\"inbound\"}"), 1.0);
    assert_eq!(sample(&metrics, "storytime_jobs_total{outcome=\"done\"}"), 3.0);
    assert_eq!(sample(&metrics, "storytime_job_duration_seconds_count{outcome=\"done\"}"), 3.0);
    assert!(sample(&metrics, "storytime_engine_calls_total{engine=\"tesseract\",outcome=\"ok\"}") >= 3.0);
    assert_eq!(sample(&metrics, "storytime_engine_calls_total{engine=\"espeak\",outcome=\"ok\"}"), 3.0);
    assert_eq!(sample(&metrics, "storytime_http_requests_total{route=\"/upload\",status=\"200\"}"), 2.0);
    assert_eq!(sample(&metrics, "storytime_http_requests_total{route=\"/slack/events\",status=\"200\"}"), 1.0);
    assert!(
        sample(&metrics, "storytime_slack_api_calls_total{method=\"files.completeUploadExternal\",outcome=\"ok\"}")
            >= 1.0
    );
    assert_eq!(sample(&metrics, "storytime_queue_depth{stage=\"read\",state=\"dead\"}"), 0.0);
    assert!(metrics.contains("storytime_build_info{version=\""), "{metrics}");

    // One JSON object per log line; each handled stage logs its time with
    // its job; each request its route, status and id, never a query string.
    let ids: HashSet<String> = jobs.iter().map(|j| j["ID"].as_str().unwrap().to_owned()).collect();
    let lines: Vec<Value> = server
        .log_lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not one JSON object ({e}): {l}")))
        .collect();
    let finished: Vec<&Value> = lines.iter().filter(|l| l["message"] == "stage finished").collect();
    for id in &ids {
        for stage in ["read", "narrate", "deliver"] {
            assert!(
                finished.iter().any(|l| l["span"]["job"] == id.as_str()
                    && l["span"]["stage"] == stage
                    && l["elapsed_ms"].is_u64()),
                "no {stage} timing for job {id}"
            );
        }
    }
    let requests: Vec<&Value> = lines.iter().filter(|l| l["message"] == "http request").collect();
    assert!(requests.iter().any(|l| l["route"] == "/upload" && l["status"] == 200 && l["request_id"].is_string()));
    assert!(lines.iter().all(|l| l["level"] != "ERROR"), "nothing went wrong");
    assert!(!server.log_lines().iter().any(|l| l.contains("sig=")), "no signed link in the log");

    // A real Prometheus evaluates every query of the dashboard.
    let prometheus = Prometheus::start(&server.base);
    let start = Instant::now();
    loop {
        let scrapes = prometheus.query("count_over_time(up{job=\"storytime\"}[1m])").await;
        let n = scrapes["data"]["result"][0]["value"][1].as_str().and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        if n >= 3.0 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "Prometheus did not scrape the server: {scrapes}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/dashboards/prometheus.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut evaluated = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            let answer = prometheus.query(expr).await;
            assert_eq!(answer["status"], "success", "{}: {expr}: {answer}", panel["title"]);
            let result = answer["data"]["result"].as_array().unwrap();
            assert!(!result.is_empty(), "{}: {expr} returned no data", panel["title"]);
            evaluated += 1;
        }
    }
    assert!(evaluated >= 20, "{evaluated} queries");
}

#[tokio::test]
async fn health_names_the_part_that_is_down_and_answers_503() {
    let server = Server::start(&[("STORYTIME_TESSERACT", "/nonexistent/tesseract")]);
    let r = server.http.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["parts"]["engines"]["tesseract"], "missing", "{body}");
    assert_eq!(body["parts"]["engines"]["espeak-ng"], "ok", "{body}");
    assert_eq!(body["parts"]["workers"]["read"], "running", "{body}");
    assert!(!body.to_string().contains("/nonexistent"), "no internal detail: {body}");
}

#[tokio::test]
async fn a_stop_signal_ends_the_server_cleanly() {
    let mut server = Server::start(&[]);
    let up = server.upload_ok(render_page(&Page::new(&["Good night, moon."])), "moon.png", &[]).await;
    assert_eq!(server.wait_for_job(&up).await.0, 200);
    let status = server.terminate(Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
}
