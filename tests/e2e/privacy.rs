//! What one uploader can learn of another: nothing. Stored photos carry no
//! metadata, and a duplicate upload from someone else reuses the work but
//! gets a job of its own.

use std::io::Cursor;

use serde_json::Value;
use storytime_tests::{LIMIT, Page, Server, render_page};

/// A phone-like JPEG of a page: EXIF with a GPS block and the phone's
/// name, a comment, and bytes after the picture's end.
fn phone_jpeg(page: &Page) -> Vec<u8> {
    let picture = image::load_from_memory(&render_page(page)).unwrap();
    let mut plain = Vec::new();
    picture.to_rgb8().write_to(&mut Cursor::new(&mut plain), image::ImageFormat::Jpeg).unwrap();
    let mut exif = b"Exif\0\0II*\0\x08\0\0\0\x01\0".to_vec();
    exif.extend_from_slice(&[0x0F, 0x01, 2, 0, 12, 0, 0, 0, 26, 0, 0, 0, 0, 0, 0, 0]);
    exif.extend_from_slice(b"PhoneMaker\0\0GPSLatitude 51.5007N");
    let mut out = plain[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((exif.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&exif);
    let comment = b"taken at 12 Elm Street";
    out.extend_from_slice(&[0xFF, 0xFE]);
    out.extend_from_slice(&((comment.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(comment);
    out.extend_from_slice(&plain[2..]);
    out.extend_from_slice(b"HIDDEN-TRAILER");
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn upload_as(server: &Server, key: &str, bytes: Vec<u8>, name: &str) -> Value {
    let auth = format!("Bearer {key}");
    server.upload_ok(bytes, name, &[("Authorization", &auth), ("X-Notification-Required", "false")]).await
}

#[tokio::test]
async fn stored_photos_carry_no_metadata_and_duplicates_stay_with_their_sender() {
    let mut server = Server::start(&[("STORYTIME_API_KEYS", "alice-key,bob-key")]);
    // Polling and health checks go as Alice; uploads say whose they are.
    let mut alice_auth = reqwest::header::HeaderMap::new();
    alice_auth.insert("authorization", "Bearer alice-key".parse().unwrap());
    server.http = reqwest::Client::builder().default_headers(alice_auth).build().unwrap();
    let page = Page::new(&["The owl sat in the tall pine tree all night."]);
    let photo = phone_jpeg(&page);
    assert!(contains(&photo, b"GPSLatitude") && contains(&photo, b"Elm Street"));

    let alice = upload_as(&server, "alice-key", photo.clone(), "alice-at-home.jpeg").await;
    let (status, done) = server.wait_for_job(&alice).await;
    assert_eq!(status, 200, "{done}");

    // The stored original is the picture only.
    let stored = server.http.get(done["OrigURL"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(stored.headers()["content-type"], "image/jpeg");
    let stored = stored.bytes().await.unwrap();
    for secret in [&b"Exif"[..], b"GPSLatitude", b"PhoneMaker", b"Elm Street", b"HIDDEN-TRAILER"] {
        assert!(!contains(&stored, secret), "the stored photo still holds {:?}", String::from_utf8_lossy(secret));
    }
    assert!(stored.ends_with(&[0xFF, 0xD9]));
    image::load_from_memory(&stored).expect("the stored photo is still a picture");

    // Bob sends the same photo: a job of his own, with his name and time,
    // which reuses the reading; he never sees Alice's job.
    let bob = upload_as(&server, "bob-key", photo.clone(), "bob.jpeg").await;
    assert_ne!(bob["ID"], alice["ID"]);
    assert_eq!(bob["Duplicate"], false);
    assert_eq!(bob["Name"], "bob.jpeg");
    let (status, bob_done) = server.wait_for_job(&bob).await;
    assert_eq!(status, 200, "{bob_done}");
    assert_eq!(bob_done["Text"], done["Text"]);
    for field in ["ID", "Name"] {
        let text = bob_done.to_string();
        assert!(!text.contains(alice[field].as_str().unwrap()), "Bob's answer shows Alice's {field}: {text}");
    }
    assert_eq!(bob_done["Timestamp"], bob["Timestamp"], "Bob's job has its own time");

    // Alice sending it again joins her own job, as the duplicate check says.
    let again = upload_as(&server, "alice-key", photo, "alice-again.jpeg").await;
    assert_eq!(again["ID"], alice["ID"]);
    assert_eq!(again["Duplicate"], true);
    assert!(server.settled(LIMIT).await["jobs"]["done"].as_u64() == Some(2));
}

#[tokio::test]
async fn bulk_cannot_send_unlimited_mail_and_uploads_are_rate_limited_per_sender() {
    let server = Server::start(&[("STORYTIME_UPLOADS_PER_MINUTE", "5")]);
    let up = server
        .upload_ok(
            render_page(&Page::new(&["A frog sang to the moon."])),
            "frog.png",
            &[("X-Notification-Required", "false")],
        )
        .await;
    let (status, _) = server.wait_for_job(&up).await;
    assert_eq!(status, 200);

    // 100 calls for one finished job: at most the hourly limit (10) of
    // emails; the rest are told when to come back.
    let body = serde_json::json!([{ "Id": up["ID"], "Timestamp": up["Timestamp"] }]).to_string();
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for _ in 0..100 {
        let r = server.http.post(server.url("/bulk")).body(body.clone()).send().await.unwrap();
        if r.status() == 429 {
            assert!(r.headers().contains_key("retry-after"));
        }
        *statuses.entry(r.status().as_u16()).or_default() += 1;
    }
    assert_eq!(statuses.get(&200), Some(&10), "{statuses:?}");
    assert_eq!(statuses.get(&429), Some(&90), "{statuses:?}");
    assert_eq!(server.outbox().len(), 10);

    // Uploads: five a minute here; the sixth is refused with a wait.
    for n in 1..5 {
        let r = server.upload(render_page(&Page::new(&["Again."])), &format!("p{n}.png"), &[]).await;
        assert_eq!(r.status(), 200, "upload {n}");
    }
    let r = server.upload(render_page(&Page::new(&["Again."])), "p5.png", &[]).await;
    assert_eq!(r.status(), 429);
    let wait: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=12).contains(&wait), "{wait}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    assert!(server.health().await["status"] == "ok");
}
