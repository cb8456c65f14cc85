//! The original REST API, as its clients use it.

use std::time::Duration;

use serde_json::Value;
use storytime_tests::{LIMIT, Page, Server, blank_page, cer, mp3_seconds, render_page, with_comment};

fn fox_page() -> Page {
    Page::new(&[
        "The little fox found a red kite in the tall grass.",
        "She ran to the top of the hill and let it fly.",
        "The wind carried it over the river and far away.",
    ])
}

#[tokio::test]
async fn an_uploaded_page_is_read_narrated_and_emailed() {
    let server = Server::start(&[]);
    let page = fox_page();
    let png = render_page(&page);

    let up = server.upload_ok(png.clone(), "fox.png", &[]).await;
    for field in ["ID", "Timestamp", "ContentID", "Name", "OrigURL", "DownURL"] {
        assert!(up.get(field).is_some(), "upload answer lacks {field}: {up}");
    }
    assert_eq!(up["Name"], "fox.png");
    assert_eq!(up["Duplicate"], false);

    let (status, done) = server.wait_for(up["ID"].as_str().unwrap(), up["Timestamp"].as_str().unwrap(), LIMIT).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["Status"], "done");
    assert_eq!(done["Language"], "en");
    let text = done["Text"].as_str().unwrap();
    assert!(cer(text, &page.text()) < 0.05, "read {text:?}");

    // The audio decodes, and its length fits 29 words read aloud.
    let audio = server.http.get(done["DownURL"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(audio.status(), 200);
    assert_eq!(audio.headers()["content-type"], "audio/mpeg");
    let seconds = mp3_seconds(&audio.bytes().await.unwrap());
    assert!((5.0..20.0).contains(&seconds), "{seconds} s for 29 words");
    assert!((seconds - done["Duration"].as_f64().unwrap()).abs() < 0.5);

    // The original photo comes back byte for byte.
    let orig = server.http.get(done["OrigURL"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(orig.bytes().await.unwrap().as_ref(), png.as_slice());

    // X-Notification-Required defaults to true: one email with the links.
    let emails = server.wait_for_emails(1).await;
    assert!(emails[0].contains("Subject: Your story is ready: fox.png"));
    assert!(emails[0].contains(done["DownURL"].as_str().unwrap().split('?').next().unwrap()));
    assert!(emails[0].contains("red kite"));
}

#[tokio::test]
async fn the_same_page_is_read_once_however_and_whenever_it_is_sent() {
    let server = Server::start(&[]);
    let png = render_page(&Page::new(&["A hen laid an egg under the old oak tree."]));
    let same_pixels = with_comment(&png, "edited in a photo app");
    assert_ne!(png, same_pixels);

    // Sent five times at once, plus once with other bytes but equal pixels.
    let uploads = (0..5).map(|_| server.upload_ok(png.clone(), "hen.png", &[("X-Notification-Required", "false")]));
    let answers: Vec<Value> = futures::future::join_all(uploads).await;
    let id = answers[0]["ID"].clone();
    assert!(answers.iter().all(|a| a["ID"] == id), "{answers:?}");
    assert_eq!(answers.iter().filter(|a| a["Duplicate"] == false).count(), 1);
    let again = server.upload_ok(same_pixels, "hen-copy.png", &[("X-Notification-Required", "false")]).await;
    assert_eq!(again["ID"], id);
    assert_eq!(again["ContentID"], answers[0]["ContentID"]);

    let (status, done) = server.wait_for(id.as_str().unwrap(), answers[0]["Timestamp"].as_str().unwrap(), LIMIT).await;
    assert_eq!(status, 200);
    let health = server.health().await;
    assert_eq!(health["jobs"]["done"], 1, "{health}");

    // Once done, a duplicate gets the finished result at once.
    let late = server.upload_ok(png.clone(), "hen.png", &[("X-Notification-Required", "false")]).await;
    assert_eq!(late["ID"], id);
    assert_eq!(late["Status"], "done");
    assert_eq!(
        late["DownURL"].as_str().unwrap().split('?').next(),
        done["DownURL"].as_str().unwrap().split('?').next()
    );

    // Turning the duplication check off forces fresh work: a new job.
    let fresh = server.upload_ok(png, "hen.png", &[("X-Duplication-Check-Required", "false")]).await;
    assert_ne!(fresh["ID"], id);
    assert_eq!(fresh["NeedDupChk"], false);
}

#[tokio::test]
async fn pages_turned_any_way_are_read_upright() {
    let server = Server::start(&[]);
    let page = Page::new(&[
        "Under the bridge lived a troll who loved to sing.",
        "Every night he sang songs to the stars and the moon.",
    ]);
    let mut jobs = Vec::new();
    for degrees in [90, 180, 270] {
        let up =
            server.upload_ok(render_page(&page.clone().rotated(degrees)), &format!("troll-{degrees}.png"), &[]).await;
        jobs.push((degrees, up));
    }
    for (degrees, up) in jobs {
        let (status, done) =
            server.wait_for(up["ID"].as_str().unwrap(), up["Timestamp"].as_str().unwrap(), LIMIT).await;
        assert_eq!(status, 200);
        let text = done["Text"].as_str().unwrap();
        assert!(cer(text, &page.text()) < 0.05, "turned {degrees}°, read {text:?}");
    }
}

#[tokio::test]
async fn a_korean_page_is_read_and_narrated_in_korean() {
    let server = Server::start(&[]);
    let page =
        Page::new(&["옛날 옛적에 깊은 산속에 호랑이 한 마리가", "살았어요. 호랑이는 배가 고파서 마을로 내려갔어요."])
            .korean();
    let up = server.upload_ok(render_page(&page), "tiger.png", &[]).await;
    let (status, done) = server.wait_for(up["ID"].as_str().unwrap(), up["Timestamp"].as_str().unwrap(), LIMIT).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["Language"], "ko");
    assert_eq!(done["Voice"], "ko");
    let text = done["Text"].as_str().unwrap();
    assert!(cer(text, &page.text()) < 0.1, "read {text:?}");
}

#[tokio::test]
async fn a_page_without_text_finishes_with_a_clear_message() {
    let server = Server::start(&[]);
    let up = server.upload_ok(blank_page(), "blank.png", &[]).await;
    let (status, done) = server.wait_for(up["ID"].as_str().unwrap(), up["Timestamp"].as_str().unwrap(), LIMIT).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["Status"], "no_text");
    assert_eq!(done["DownURL"], "");
    assert!(done["Message"].as_str().unwrap().contains("No text"));
    let emails = server.wait_for_emails(1).await;
    assert!(emails[0].contains("Subject: No text found on blank.png"));
    assert_eq!(server.health().await["queues"]["read"]["dead"], 0);
}

#[tokio::test]
async fn media_links_are_signed_expire_and_serve_ranges() {
    let server = Server::start(&[]);
    let up = server.upload_ok(render_page(&fox_page()), "fox.png", &[("X-Notification-Required", "false")]).await;
    let (_, done) = server.wait_for(up["ID"].as_str().unwrap(), up["Timestamp"].as_str().unwrap(), LIMIT).await;
    let link = done["DownURL"].as_str().unwrap().to_owned();

    let part = server.http.get(&link).header("Range", "bytes=0-99").send().await.unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(part.bytes().await.unwrap().len(), 100);

    let tampered = link.replace("sig=", "sig=x");
    assert_eq!(server.http.get(&tampered).send().await.unwrap().status(), 403);
    let stretched = link.replace("exp=", "exp=9");
    assert_eq!(server.http.get(&stretched).send().await.unwrap().status(), 403);
    let unsigned = link.split('?').next().unwrap();
    assert_eq!(server.http.get(unsigned).send().await.unwrap().status(), 403);

    // A server whose links live one second: they stop working.
    let mut short = Server::start(&[("STORYTIME_LINK_TTL", "0")]);
    let up = short.upload_ok(render_page(&fox_page()), "fox.png", &[("X-Notification-Required", "false")]).await;
    let orig = up["OrigURL"].as_str().unwrap().to_owned();
    let start = std::time::Instant::now();
    loop {
        let status = short.http.get(&orig).send().await.unwrap().status();
        if status == 410 {
            break;
        }
        assert_eq!(status, 200, "a fresh link works until it expires");
        assert!(start.elapsed() < Duration::from_secs(5), "the link never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    short.kill();
}

#[tokio::test]
async fn the_same_text_in_the_same_voice_is_narrated_once() {
    let server = Server::start(&[]);
    let page = Page::new(&["The owl and the cat went to sea in a green boat."]);
    // Two different photos (one turned round) of the same page.
    let a = server.upload_ok(render_page(&page), "a.png", &[("X-Notification-Required", "false")]).await;
    let b = server
        .upload_ok(render_page(&page.clone().rotated(180)), "b.png", &[("X-Notification-Required", "false")])
        .await;
    assert_ne!(a["ID"], b["ID"]);
    let (_, a) = server.wait_for(a["ID"].as_str().unwrap(), a["Timestamp"].as_str().unwrap(), LIMIT).await;
    let (_, b) = server.wait_for(b["ID"].as_str().unwrap(), b["Timestamp"].as_str().unwrap(), LIMIT).await;
    assert_eq!(a["Text"], b["Text"]);
    let path = |v: &Value| v["DownURL"].as_str().unwrap().split('?').next().unwrap().to_owned();
    assert_eq!(path(&a), path(&b), "both jobs share one narration");
}

/// A photo too large for an API request (on AWS) goes to the link
/// `POST /uploads` answers, and is retrieved by the ID answered there.
#[tokio::test]
async fn a_photo_sent_to_an_upload_link_is_read_and_retrieved_like_an_upload() {
    let server = Server::start(&[("STORYTIME_MAX_UPLOAD_BYTES", "400000")]);
    let expect = |name: &str| {
        server
            .http
            .post(server.url("/uploads"))
            .header("Content-Disposition", format!("attachment; filename=\"{name}\""))
            .header("X-Notification-Required", "false")
            .send()
    };
    let r = expect("fox.png").await.unwrap();
    assert_eq!(r.status(), 201);
    let upload: Value = r.json().await.unwrap();
    assert_eq!((upload["Method"].as_str(), upload["MaxBytes"].as_u64()), (Some("PUT"), Some(400_000)));
    let (id, ts, url) =
        (upload["ID"].as_str().unwrap(), upload["Timestamp"].as_str().unwrap(), upload["UploadURL"].as_str().unwrap());
    let waiting = server.retrieve(id, ts).await;
    assert_eq!(waiting.status(), 503);
    assert_eq!(waiting.json::<Value>().await.unwrap()["Status"], "waiting_for_upload");

    // The link works only as handed out, and takes no more than the limit.
    let page = fox_page();
    let png = render_page(&page);
    let tampered = url.replace("sig=", "sig=x");
    assert_eq!(server.http.put(&tampered).body(png.clone()).send().await.unwrap().status(), 403);
    let retrieve_link = url.replace("/media/incoming/", "/media/audio/");
    assert_eq!(server.http.put(&retrieve_link).body(png.clone()).send().await.unwrap().status(), 403);
    let big = server.http.put(url).body(vec![0u8; 400_001]).send().await.unwrap();
    assert_eq!(big.status(), 413);

    let taken = server.http.put(url).body(png).send().await.unwrap();
    assert_eq!(taken.status(), 200);
    let taken: Value = taken.json().await.unwrap();
    assert_eq!(taken["Name"], "fox.png");
    let (status, done) = server.wait_for(id, ts, LIMIT).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["ID"], taken["ID"]);
    // The upload's ID echoed back quoted, as clients send an ETag, works too.
    let quoted = server.retrieve(&format!("\"{id}\""), ts).await;
    assert_eq!(quoted.status(), 200);
    assert!(cer(done["Text"].as_str().unwrap(), &page.text()) < 0.05, "{done}");

    // What is not a photo is refused, at the link and at /retrieve.
    let r = expect("notes.txt").await.unwrap();
    let bad: Value = r.json().await.unwrap();
    let refused = server.http.put(bad["UploadURL"].as_str().unwrap()).body("just words").send().await.unwrap();
    assert_eq!(refused.status(), 422);
    let r = server.retrieve(bad["ID"].as_str().unwrap(), bad["Timestamp"].as_str().unwrap()).await;
    assert_eq!(r.status(), 422);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "upload_refused");

    // Without a key, where keys are required, no link is handed out.
    let locked = Server::start(&[("STORYTIME_API_KEYS", "k1")]);
    let r = locked.http.post(locked.url("/uploads")).send().await.unwrap();
    assert_eq!(r.status(), 401);
}
