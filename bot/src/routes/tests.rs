//! The HTTP surface in process: the router on the in-memory pipeline (the
//! blobs in files, so media links work), each request through
//! `tower::ServiceExt::oneshot`. No socket, no engine: milliseconds.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use storytime_pipeline::Stage;
use storytime_pipeline::adapters::local::FsBlobStore;
use storytime_pipeline::links::MediaLinks;
use storytime_pipeline::settings::Secret;
use storytime_pipeline::testing::{Options, TestPipeline};
use tower::ServiceExt;

use crate::secrets::Credentials;
use crate::state::AppState;

struct Api {
    router: Router,
    t: TestPipeline,
    blobs: tempfile::TempDir,
}

fn api(settings: &[(&'static str, &str)], api_keys: &[&str]) -> Api {
    let blobs = tempfile::tempdir().unwrap();
    let links = MediaLinks::new(b"test key".to_vec(), "http://storytime.test");
    let store = Arc::new(FsBlobStore::new(blobs.path().to_owned(), links.clone()));
    let settings = settings.iter().map(|(k, v)| (*k, v.to_string())).collect();
    let t = TestPipeline::with(Options { settings, blobs: Some(store.clone()), ..Options::default() });
    let state = AppState {
        pipeline: t.pipeline.clone(),
        blobs: store,
        media_links: Some(Arc::new(links)),
        public_host: Some("storytime.test".into()),
        request_limit: None,
        credentials: Arc::new(Credentials::fixed(api_keys.iter().map(|k| Secret::new(*k)).collect(), Vec::new(), None)),
        jwt: None,
        slack: None,
        metrics: crate::telemetry::prometheus(&crate::settings::Settings::from_pairs(&[]).unwrap().telemetry),
        metrics_token: None,
        engines: None,
        workers: None,
        storage: Arc::new(crate::health::StorageReadings::new(std::time::Duration::ZERO)),
    };
    Api { router: super::router(state), t, blobs }
}

/// An answer: status, headers and the body as JSON (`Null` if not JSON).
struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Value,
}

impl Api {
    async fn send(&self, request: Request<Body>) -> Answer {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        Answer {
            status: parts.status,
            headers: parts.headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    async fn upload(&self, bytes: Vec<u8>, content_type: &str, name: &str, headers: &[(&str, &str)]) -> Answer {
        let mut request = Request::post("/upload")
            .header("Content-Type", content_type)
            .header("Content-Disposition", format!("attachment; filename=\"{name}\""));
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        self.send(request.body(Body::from(bytes)).unwrap()).await
    }

    async fn retrieve(&self, id: &str, timestamp: &str) -> Answer {
        let request = Request::get("/retrieve").header("ETag", id).header("Timestamp", timestamp);
        self.send(request.body(Body::empty()).unwrap()).await
    }

    async fn get(&self, path: &str) -> Answer {
        self.send(Request::get(path).body(Body::empty()).unwrap()).await
    }

    fn page(&self, text: &str) -> Vec<u8> {
        self.t.reader.page(text).to_vec()
    }
}

/// A PNG header declaring `w × h` pixels over a few bytes of data.
fn bomb(w: u32, h: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    png.extend(w.to_be_bytes());
    png.extend(h.to_be_bytes());
    png.extend([8, 0, 0, 0, 0, 0, 0, 0, 0]);
    png.extend(b"\0\0\0\x0aIDATx\x9c\x63\0\x01\0\0\x05\0\x01\0\0\0\0");
    png.extend(b"\0\0\0\0IEND\xaeB`\x82");
    png
}

#[tokio::test]
async fn uploads_that_are_not_readable_photos_are_refused_with_reasons() {
    let api = api(&[("STORYTIME_MAX_UPLOAD_BYTES", "3000000")], &[]);
    let png = api.page("A real page.");
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg"><text>hi</text></svg>"#.to_vec();
    let cases: Vec<(Vec<u8>, &str, &str, u16, &str)> = vec![
        (b"just some words".to_vec(), "image/jpeg", "page.jpeg", 415, "not_an_image"),
        (b"<!doctype html><html>sign in</html>".to_vec(), "image/png", "p.png", 415, "not_an_image"),
        (svg, "image/svg+xml", "p.svg", 415, "svg_not_supported"),
        (Vec::new(), "image/png", "empty.png", 400, "empty_body"),
        (png[..png.len() / 2].to_vec(), "image/png", "cut.png", 422, "truncated_image"),
        (bomb(100_000, 100_000), "image/png", "bomb.png", 413, "too_many_pixels"),
        (vec![0xFF; 3_000_001], "image/jpeg", "huge.jpeg", 413, "too_large"),
    ];
    for (body, content_type, name, status, code) in cases {
        let answer = api.upload(body, content_type, name, &[]).await;
        assert_eq!(answer.status.as_u16(), status, "{name}: {}", answer.body);
        assert_eq!(answer.body["error"]["code"], code, "{name}: {}", answer.body);
        assert!(answer.body["error"]["message"].as_str().unwrap().len() > 20, "{}", answer.body);
    }

    // Nothing was stored and no work was queued.
    assert!(api.t.pipeline.jobs.counts().await.unwrap().is_empty());
    assert_eq!(api.t.pipeline.queue.depth(Stage::Read).await.unwrap().waiting, 0);
    assert!(std::fs::read_dir(api.blobs.path()).unwrap().next().is_none(), "no blob was written");
}

#[tokio::test]
async fn a_bad_page_does_not_disturb_a_good_one() {
    let api = api(&[], &[]);
    let good = api.page("The moon smiled at the sleepy owl.");
    let truncated = good[..good.len() - 20].to_vec();
    let (bad, ok) = tokio::join!(
        api.upload(truncated, "image/png", "bad.png", &[]),
        api.upload(good, "image/png", "good.png", &[("X-Notification-Required", "false")])
    );
    assert_eq!(bad.status, 422);
    assert_eq!(ok.status, 200);
    api.t.drive_until_idle().await;
    let done = api.retrieve(ok.body["ID"].as_str().unwrap(), ok.body["Timestamp"].as_str().unwrap()).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body["Text"].as_str().unwrap().contains("sleepy owl"));
}

#[tokio::test]
async fn an_upload_answers_at_once_and_retrieve_says_when_it_is_done() {
    let api = api(&[], &[]);
    let up = api.upload(api.page("A fox and a kite."), "image/png", "fox.png", &[]).await;
    assert_eq!(up.status, 200, "{}", up.body);
    let (id, ts) = (up.body["ID"].as_str().unwrap(), up.body["Timestamp"].as_str().unwrap());
    assert_eq!(up.headers["etag"], id);
    assert_eq!(up.headers["timestamp"], ts);
    assert_eq!((up.body["Name"].as_str(), up.body["Duplicate"].as_bool()), (Some("fox.png"), Some(false)));

    let working = api.retrieve(id, ts).await;
    assert_eq!(working.status, 503);
    assert_eq!(working.headers["retry-after"], "3");

    api.t.drive_until_idle().await;
    let done = api.retrieve(id, ts).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!((done.body["Status"].as_str(), done.body["Text"].as_str()), (Some("done"), Some("A fox and a kite.")));
    assert!(done.body["DownURL"].as_str().unwrap().starts_with("http://storytime.test/media/audio/"));
    assert_eq!(api.t.notifier.sent().len(), 1, "X-Notification-Required defaults to true");

    let audio = api.get(done.body["DownURL"].as_str().unwrap().trim_start_matches("http://storytime.test")).await;
    assert_eq!(audio.status, 200);
    assert_eq!(audio.headers["content-type"], "audio/mpeg");
}

#[tokio::test]
async fn media_is_streamed_in_ranges_and_only_through_intact_links() {
    let api = api(&[], &[]);
    let up = api.upload(api.page("Seek me."), "image/png", "seek.png", &[("X-Notification-Required", "false")]).await;
    let link = up.body["OrigURL"].as_str().unwrap().trim_start_matches("http://storytime.test").to_owned();
    let size = api.page("Seek me.").len();

    let request = |range: &str| Request::get(&link).header("Range", range).body(Body::empty()).unwrap();
    let response = api.router.clone().oneshot(request("bytes=0-9")).await.unwrap();
    assert_eq!(response.status(), 206);
    assert_eq!(response.headers()["content-range"], format!("bytes 0-9/{size}").as_str());
    assert_eq!(response.headers()["content-length"], "10");
    assert_eq!(axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap().len(), 10);
    let outside = api.router.clone().oneshot(request(&format!("bytes={size}-"))).await.unwrap();
    assert_eq!(outside.status(), 416);
    assert_eq!(outside.headers()["content-range"], format!("bytes */{size}").as_str());

    // A stored photo is a download, and never sniffed as anything else.
    let whole = api.get(&link).await;
    assert_eq!(whole.headers["x-content-type-options"], "nosniff");
    assert!(whole.headers["content-disposition"].to_str().unwrap().starts_with("attachment; filename=\"seek.png\""));

    assert_eq!(api.get(&link.replace("sig=", "sig=x")).await.status, 403);
    assert_eq!(api.get(&link.replace("exp=", "exp=9")).await.status, 403);
    assert_eq!(api.get(link.split('?').next().unwrap()).await.status, 403);
}

#[tokio::test]
async fn bad_headers_and_unknown_jobs_get_json_errors() {
    let api = api(&[], &[]);
    let r =
        api.upload(api.page("Headers matter."), "image/png", "h.png", &[("X-Notification-Required", "perhaps")]).await;
    assert_eq!((r.status.as_u16(), r.body["error"]["code"].as_str()), (400, Some("bad_header")));

    let r = api.get("/retrieve").await;
    assert_eq!((r.status.as_u16(), r.body["error"]["code"].as_str()), (400, Some("missing_header")));
    assert_eq!(api.retrieve("1b4e28ba-2fa1-11d2-883f-0016d3cca427", "12").await.status, 404);
    assert_eq!(api.retrieve("../../etc/passwd", "12").await.status, 400);
    let r = api.get("/nowhere").await;
    assert_eq!((r.status.as_u16(), r.body["error"]["code"].as_str()), (404, Some("no_such_path")));
    let r = api.send(Request::post("/slack/events").body(Body::from("{}")).unwrap()).await;
    assert_eq!((r.status.as_u16(), r.body["error"]["code"].as_str()), (404, Some("slack_not_configured")));
    let r = api.send(Request::delete("/upload").body(Body::empty()).unwrap()).await;
    assert_eq!((r.status.as_u16(), r.body["error"]["code"].as_str()), (405, Some("method_not_allowed")));
}

#[tokio::test]
async fn the_open_api_answers_only_to_its_own_names_and_same_site_requests() {
    let api = api(&[], &[]);
    let png = api.page("Only from home.");
    let ok = |host: &'static str| [("Host", host), ("X-Notification-Required", "false")];
    for host in ["storytime.test", "127.0.0.1:8080", "localhost:8080", "[::1]:8080", "STORYTIME.TEST"] {
        assert_eq!(api.upload(png.clone(), "image/png", "a.png", &ok(host)).await.status, 200, "{host}");
    }
    // DNS rebinding: another name that resolves here.
    let r = api.upload(png.clone(), "image/png", "a.png", &ok("attacker.example")).await;
    assert_eq!((r.status.as_u16(), r.body["error"]["code"].as_str()), (403, Some("bad_host")));
    let r = api.send(Request::get("/retrieve").header("Host", "attacker.example").body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, 403);
    // A form posted from another site, by Origin or by Fetch metadata.
    let from = |origin: &'static str| [("Host", "127.0.0.1:8080"), ("Origin", origin)];
    let r = api.upload(png.clone(), "image/png", "a.png", &from("https://attacker.example")).await;
    assert_eq!((r.status.as_u16(), r.body["error"]["code"].as_str()), (403, Some("cross_site")));
    assert_eq!(api.upload(png.clone(), "image/png", "a.png", &from("null")).await.status, 403);
    let fetch = [("Host", "127.0.0.1:8080"), ("Sec-Fetch-Site", "cross-site")];
    assert_eq!(api.upload(png.clone(), "image/png", "a.png", &fetch).await.status, 403);
    // The web page's own requests are same-origin.
    let own = [("Host", "127.0.0.1:8080"), ("Origin", "http://127.0.0.1:8080"), ("Sec-Fetch-Site", "same-origin")];
    assert_eq!(api.upload(png, "image/png", "a.png", &own).await.status, 200);
}

#[tokio::test]
async fn api_keys_are_required_when_configured() {
    let api = api(&[], &["k1", "k2"]);
    let png = api.page("Keys keep the door shut.");
    assert_eq!(api.upload(png.clone(), "image/png", "k.png", &[]).await.status, 401);
    assert_eq!(api.upload(png.clone(), "image/png", "k.png", &[("Authorization", "Bearer nope")]).await.status, 401);
    assert_eq!(api.upload(png, "image/png", "k.png", &[("Authorization", "Bearer k2")]).await.status, 200);
    assert_eq!(api.get("/healthz").await.body["status"], "ok");
}

#[tokio::test]
async fn bulk_summarises_finished_jobs_and_emails_the_summary() {
    let api = api(&[], &[]);
    let up = api.upload(api.page("Bulk page."), "image/png", "b.png", &[("X-Notification-Required", "false")]).await;
    let list = json!([{ "Id": up.body["ID"], "Timestamp": up.body["Timestamp"] },
                      { "Id": "1b4e28ba-2fa1-11d2-883f-0016d3cca427", "Timestamp": "1" }]);
    let bulk = || Request::post("/bulk").body(Body::from(list.to_string())).unwrap();
    let early = api.send(bulk()).await;
    assert_eq!((early.status.as_u16(), early.body["error"]["code"].as_str()), (404, Some("nothing_ready")));

    api.t.drive_until_idle().await;
    let done = api.send(bulk()).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.body["Items"][0]["Status"], "done");
    assert_eq!(done.body["Items"][1]["Status"], "not_found");
    assert!(done.body["Message"].as_str().unwrap().contains("MP3 url: http"));
    assert_eq!(api.t.notifier.sent().last().unwrap().subject, "Get your voice stories");
    let bad = api.send(Request::post("/bulk").body(Body::from("{not json")).unwrap()).await;
    assert_eq!(bad.status, 400);
}

#[tokio::test]
async fn health_and_metrics_report_queues_and_jobs() {
    let api = api(&[], &[]);
    api.upload(api.page("Count me."), "image/png", "c.png", &[]).await;
    let health = api.get("/healthz").await;
    assert_eq!(health.body["status"], "ok");
    assert_eq!(health.body["queues"]["read"]["waiting"], 1);
    assert_eq!(health.body["jobs"]["queued"], 1);
    let metrics = api.router.clone().oneshot(Request::get("/metrics").body(Body::empty()).unwrap()).await.unwrap();
    let text =
        String::from_utf8(axum::body::to_bytes(metrics.into_body(), usize::MAX).await.unwrap().to_vec()).unwrap();
    assert!(text.contains("storytime_queue_messages{stage=\"read\",state=\"waiting\"} 1"), "{text}");
    assert!(text.contains("storytime_jobs{status=\"queued\"} 1"), "{text}");
    // The recorded metrics (the recorder is shared by every test here).
    for name in [
        "storytime_queue_depth{stage=\"read\",state=\"waiting\"} 1",
        "storytime_http_requests_total{route=\"/upload\",status=\"200\"}",
        "storytime_http_request_duration_seconds_bucket{route=\"/upload\",le=\"0.001\"}",
        "storytime_jobs_total{outcome=\"done\"}",
        "storytime_build_info{version=",
    ] {
        assert!(text.contains(name), "{name} in:\n{text}");
    }
}

#[tokio::test]
async fn metrics_can_require_a_token() {
    let mut api = api(&[], &[]);
    let handle = crate::telemetry::prometheus(&crate::settings::Settings::from_pairs(&[]).unwrap().telemetry);
    let state = AppState {
        pipeline: api.t.pipeline.clone(),
        blobs: api.t.pipeline.blobs.clone(),
        media_links: None,
        public_host: Some("storytime.test".into()),
        request_limit: None,
        credentials: Arc::new(Credentials::fixed(Vec::new(), Vec::new(), None)),
        jwt: None,
        slack: None,
        metrics: handle,
        metrics_token: Some(Arc::new(Secret::new("scrape-me"))),
        engines: None,
        workers: None,
        storage: Arc::new(crate::health::StorageReadings::new(std::time::Duration::ZERO)),
    };
    api.router = super::router(state);
    assert_eq!(api.get("/metrics").await.status, 401);
    let ok = Request::get("/metrics").header("Authorization", "Bearer scrape-me").body(Body::empty()).unwrap();
    assert_eq!(api.send(ok).await.status, 200);
}
