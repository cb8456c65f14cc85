//! Bad input gets a clear 4xx with a JSON reason, and nothing else happens.

use std::time::Duration;

use serde_json::Value;
use storytime_tests::{Page, Server, render_page};

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

async fn refused(server: &Server, body: Vec<u8>, content_type: &str, filename: &str, status: u16, code: &str) {
    let r = server
        .http
        .post(server.url("/upload"))
        .header("Content-Type", content_type)
        .header("Content-Disposition", format!("attachment; filename=\"{filename}\""))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), status, "{filename}");
    let body: Value = r.json().await.expect("a JSON error body");
    assert_eq!(body["error"]["code"], code, "{filename}: {body}");
    assert!(body["error"]["message"].as_str().unwrap().len() > 20, "{body}");
}

#[tokio::test]
async fn uploads_that_are_not_readable_photos_are_refused_with_reasons() {
    let server = Server::start(&[("STORYTIME_MAX_UPLOAD_BYTES", "3000000")]);
    let png = render_page(&Page::new(&["A real page."]));

    refused(&server, b"just some words".to_vec(), "image/jpeg", "page.jpeg", 415, "not_an_image").await;
    refused(&server, b"<!doctype html><html>sign in</html>".to_vec(), "image/png", "p.png", 415, "not_an_image").await;
    refused(
        &server,
        br#"<svg xmlns="http://www.w3.org/2000/svg"><text>hi</text></svg>"#.to_vec(),
        "image/svg+xml",
        "p.svg",
        415,
        "svg_not_supported",
    )
    .await;
    refused(&server, Vec::new(), "image/png", "empty.png", 400, "empty_body").await;
    refused(&server, png[..png.len() / 2].to_vec(), "image/png", "cut.png", 422, "truncated_image").await;
    refused(&server, bomb(100_000, 100_000), "image/png", "bomb.png", 413, "too_many_pixels").await;
    refused(&server, vec![0xFF; 3_000_001], "image/jpeg", "huge.jpeg", 413, "too_large").await;

    // Nothing was stored and no work was queued.
    let health = server.health().await;
    assert_eq!(health["jobs"], serde_json::json!({}), "{health}");
    assert_eq!(health["queues"]["read"]["waiting"], 0);
    let originals = server.data_dir.join("blobs/originals");
    assert!(!originals.exists() || std::fs::read_dir(originals).unwrap().next().is_none());
}

#[tokio::test]
async fn a_bad_page_does_not_disturb_a_good_one() {
    let server = Server::start(&[]);
    let good = render_page(&Page::new(&["The moon smiled at the sleepy owl."]));
    let truncated = good[..good.len() - 200].to_vec();
    let (bad, ok) = tokio::join!(
        server.upload(truncated, "bad.png", &[]),
        server.upload(good, "good.png", &[("X-Notification-Required", "false")])
    );
    assert_eq!(bad.status(), 422);
    let up: Value = ok.json().await.unwrap();
    let (status, done) =
        server.wait_for(up["ID"].as_str().unwrap(), up["Timestamp"].as_str().unwrap(), Duration::from_secs(120)).await;
    assert_eq!(status, 200);
    assert!(done["Text"].as_str().unwrap().contains("sleepy owl"));
}

#[tokio::test]
async fn bad_headers_and_unknown_jobs_get_json_errors() {
    let server = Server::start(&[]);
    let png = render_page(&Page::new(&["Headers matter."]));
    let r = server.upload(png, "h.png", &[("X-Notification-Required", "perhaps")]).await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "bad_header");

    let r = server.http.get(server.url("/retrieve")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "missing_header");
    let r = server.retrieve("1b4e28ba-2fa1-11d2-883f-0016d3cca427", "12").await;
    assert_eq!(r.status(), 404);
    let r = server.retrieve("../../etc/passwd", "12").await;
    assert_eq!(r.status(), 400);
    let r = server.http.get(server.url("/nowhere")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "no_such_path");
}
