//! The narration as a listener gets it: Piper's voice for English, word
//! timings that follow the audio, reading speed, and pages sent as a form.

use serde_json::Value;
use storytime_tests::{LIMIT, Page, Server, cer, mp3_seconds, piper_env, render_page};

fn bear_page() -> Page {
    Page::new(&[
        "Little Bear could not sleep. He looked out",
        "at the moon and asked it for a story.",
        "The moon smiled and began to tell one.",
    ])
}

async fn narrate(server: &Server, png: Vec<u8>, headers: &[(&str, &str)]) -> Value {
    let up = server.upload_ok(png, "bear.png", headers).await;
    let (status, done) = server.wait_for(up["ID"].as_str().unwrap(), up["Timestamp"].as_str().unwrap(), LIMIT).await;
    assert_eq!(status, 200, "{done}");
    done
}

/// `Words` has one entry per word of `Text`, in order, non-decreasing,
/// within the audio, and together they cover most of it.
fn check_words(done: &Value) -> Vec<(u64, u64)> {
    let text = done["Text"].as_str().unwrap();
    let words = done["Words"].as_array().unwrap_or_else(|| panic!("no Words: {done}"));
    let expected: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(words.len(), expected.len(), "{done}");
    let duration_ms = done["Duration"].as_f64().unwrap() * 1000.0;
    let mut last_start = 0;
    let mut spans = Vec::new();
    for (w, e) in words.iter().zip(&expected) {
        assert_eq!(w["Text"], *e);
        let (start, end) = (w["StartMs"].as_u64().unwrap(), w["EndMs"].as_u64().unwrap());
        assert!(start >= last_start && end >= start && end as f64 <= duration_ms + 1.0, "{w} in {duration_ms} ms");
        last_start = start;
        spans.push((start, end));
    }
    let covered = (spans.last().unwrap().1 - spans[0].0) as f64;
    assert!(covered > duration_ms * 0.7, "the words span {covered} ms of {duration_ms} ms");
    spans
}

#[tokio::test]
async fn english_is_read_by_piper_as_joe_with_word_timings_and_captions() {
    let server = Server::start_with(&piper_env(), &[]);
    let page = bear_page();
    let done = narrate(&server, render_page(&page), &[]).await;
    assert_eq!(done["Voice"], "joe", "{done}");
    assert!(cer(done["Text"].as_str().unwrap(), &page.text()) < 0.05, "{done}");
    let spans = check_words(&done);
    // Piper's alignments: each word has its own time, no two the same.
    assert!(spans.windows(2).all(|w| w[1].0 > w[0].0), "{spans:?}");
    assert_eq!(done["Pages"][0]["StartMs"], done["Words"][0]["StartMs"]);

    let audio = server.http.get(done["DownURL"].as_str().unwrap()).send().await.unwrap();
    let seconds = mp3_seconds(&audio.bytes().await.unwrap());
    assert!((seconds - done["Duration"].as_f64().unwrap()).abs() < 0.5, "{seconds}");

    let captions = server.http.get(done["CaptionsURL"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(captions.status(), 200);
    assert!(captions.headers()["content-type"].to_str().unwrap().starts_with("text/vtt"));
    let vtt = captions.text().await.unwrap();
    assert!(vtt.starts_with("WEBVTT\n"), "{vtt}");
    assert_eq!(vtt.matches(" --> ").count(), spans.len(), "{vtt}");
}

#[tokio::test]
async fn korean_stays_on_espeak_when_piper_reads_english() {
    let server = Server::start_with(&piper_env(), &[]);
    let page =
        Page::new(&["옛날 옛적에 깊은 산속에 호랑이 한 마리가", "살았어요. 호랑이는 배가 고파서 마을로 내려갔어요."])
            .korean();
    let done = narrate(&server, render_page(&page), &[]).await;
    assert_eq!((done["Language"].as_str(), done["Voice"].as_str()), (Some("ko"), Some("ko")), "{done}");
    check_words(&done);
}

#[tokio::test]
async fn a_slower_speed_reads_slower_and_the_timings_follow() {
    let server = Server::start_with(&piper_env(), &[]);
    let png = render_page(&bear_page());
    let normal = narrate(&server, png.clone(), &[]).await;
    let slow = narrate(&server, png, &[("X-Speed", "0.7")]).await;
    assert_ne!(normal["ID"], slow["ID"], "a different speed is a different job");
    assert_eq!(slow["Speed"], 0.7);
    let (n, s) = (normal["Duration"].as_f64().unwrap(), slow["Duration"].as_f64().unwrap());
    assert!(s > n * 1.2, "0.7× lasts {s} s, 1× {n} s");
    let (n_words, s_words) = (check_words(&normal), check_words(&slow));
    assert!(s_words.last().unwrap().1 as f64 > n_words.last().unwrap().1 as f64 * 1.2);
}

#[tokio::test]
async fn speeds_out_of_range_are_refused_with_a_reason() {
    let server = Server::start(&[]);
    for bad in ["3", "0.2", "fast", "NaN"] {
        let r = server.upload(render_page(&bear_page()), "bear.png", &[("X-Speed", bad)]).await;
        assert_eq!(r.status(), 400, "X-Speed {bad}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "bad_speed", "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("0.5"), "{body}");
    }
}

#[tokio::test]
async fn espeak_narrations_have_estimated_word_timings() {
    let server = Server::start(&[]);
    let done = narrate(&server, render_page(&bear_page()), &[]).await;
    assert_eq!(done["Voice"], "en-us");
    check_words(&done);
}

/// A `multipart/form-data` body as browsers and `curl -F` send it.
fn form(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "----storytime-test-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, file, bytes) in parts {
        body.extend(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"").as_bytes());
        if let Some(file) = file {
            body.extend(format!("; filename=\"{file}\"\r\nContent-Type: image/png").as_bytes());
        }
        body.extend(b"\r\n\r\n");
        body.extend_from_slice(bytes);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test]
async fn a_form_upload_carries_several_pages_in_order_with_their_offsets() {
    let server = Server::start(&[]);
    let one = Page::new(&["The cat sat on a warm mat."]);
    let two = Page::new(&["Then the dog came in and barked twice."]);
    let (content_type, body) = form(&[
        ("page", Some("one.png"), &render_page(&one)),
        ("speed", None, b"1.2"),
        ("page", Some("two.png"), &render_page(&two)),
    ]);
    let r = server
        .http
        .post(server.url("/upload"))
        .header("Content-Type", content_type)
        .header("X-Notification-Required", "false")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let up: Value = r.json().await.unwrap();
    assert_eq!(up["Name"], "one.png");
    let (status, done) = server.wait_for(up["ID"].as_str().unwrap(), up["Timestamp"].as_str().unwrap(), LIMIT).await;
    assert_eq!(status, 200, "{done}");
    let text = done["Text"].as_str().unwrap();
    assert!(cer(text, &format!("{} {}", one.text(), two.text())) < 0.05, "{text}");
    assert_eq!(done["Speed"], 1.2);
    let pages = done["Pages"].as_array().unwrap();
    assert_eq!(pages.len(), 2, "{done}");
    let first_of_two = pages[1]["FirstWord"].as_u64().unwrap() as usize;
    assert_eq!(done["Words"][first_of_two]["Text"], "Then", "{done}");
    assert!(pages[1]["StartMs"].as_u64() > pages[0]["StartMs"].as_u64());

    // A form without a photo, or a broken one, is a clear 400.
    let (content_type, body) = form(&[("speed", None, b"1.0")]);
    let r = server.http.post(server.url("/upload")).header("Content-Type", content_type).body(body).send().await;
    assert_eq!(r.unwrap().status(), 400);
    let r = server
        .http
        .post(server.url("/upload"))
        .header("Content-Type", "multipart/form-data; boundary=abc")
        .body("--abc\r\nnonsense")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_form", "{body}");
}

/// A page as an iPhone stores it: HEIC, made from the rendered PNG with
/// libheif's own encoder (`heif-enc`, Debian's libheif-examples).
fn heic_of(png: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("page.png"), dir.path().join("page.heic"));
    std::fs::write(&input, png).unwrap();
    let status = std::process::Command::new("heif-enc")
        .args(["-q", "90", "-o"])
        .arg(&output)
        .arg(&input)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("heif-enc runs: `sudo apt-get install libheif-examples` (scripts/test does)");
    assert!(status.success());
    std::fs::read(output).unwrap()
}

#[tokio::test]
async fn a_heic_photo_is_read_like_its_png() {
    let server = Server::start(&[]);
    let page = bear_page();
    let heic = heic_of(&render_page(&page));
    assert_eq!(&heic[4..12], b"ftypheic");
    let up = server.upload_ok(heic.clone(), "IMG_0001.HEIC", &[]).await;
    // Stored as a JPEG of the same picture, which browsers and Slack show
    // (and which carries none of the HEIC's metadata).
    assert_eq!(up["ContentType"], "image/jpeg");
    let (status, done) = server.wait_for(up["ID"].as_str().unwrap(), up["Timestamp"].as_str().unwrap(), LIMIT).await;
    assert_eq!(status, 200, "{done}");
    assert!(cer(done["Text"].as_str().unwrap(), &page.text()) < 0.05, "{done}");
    let original = server.http.get(done["OrigURL"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(original.headers()["content-type"], "image/jpeg");
    let stored = image::load_from_memory(&original.bytes().await.unwrap()).unwrap();
    let png = image::load_from_memory(&render_page(&page)).unwrap();
    assert_eq!((stored.width(), stored.height()), (png.width(), png.height()));

    // A cut-off HEIC is refused at upload, with a reason.
    let r = server.upload(heic[..heic.len() / 2].to_vec(), "cut.heic", &[]).await;
    assert!(r.status().is_client_error(), "{}", r.status());
    let body: Value = r.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("HEIC"), "{body}");
}
