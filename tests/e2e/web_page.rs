//! The web page in a real browser (headless Chromium): choose a photo,
//! follow the reading, play it, and watch the spoken word highlighted.

use std::time::Duration;

use serde_json::json;
use storytime_tests::browser::Browser;
use storytime_tests::{Page, Server, render_page};

/// The highlighted word: its index in the text and the audio's time.
const HIGHLIGHTED: &str = "const el = document.querySelector('#text span[aria-current=\"true\"]');
    const audio = document.getElementById('audio');
    return el ? [Number(el.dataset.index), audio.currentTime, el.textContent] : null;";

/// Chooses `photo` on the page, presses "Read aloud", and waits for the
/// narration to be ready to play.
async fn read_aloud(browser: &Browser, photo: &std::path::Path) {
    let input = browser.find("#photos").await;
    browser.type_into(&input, photo.to_str().unwrap()).await;
    browser
        .wait_for(
            "the chosen page to be listed",
            Duration::from_secs(5),
            "return document.querySelectorAll('#pages li').length === 1",
        )
        .await;
    let read = browser.find("#read").await;
    browser.click(&read).await;
    browser
        .wait_for(
            "the narration",
            Duration::from_secs(120),
            "return !document.getElementById('player').hidden && document.getElementById('audio').readyState >= 1",
        )
        .await;
}

#[tokio::test]
async fn a_photo_chosen_on_the_page_is_read_aloud_with_the_spoken_word_highlighted() {
    let server = Server::start(&[]);
    let page = Page::new(&[
        "The owl flew over the quiet barn at night.",
        "A mouse ran home under the old gate and hid.",
        "Then the moon came out and all was still.",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let photo = dir.path().join("owl.png");
    std::fs::write(&photo, render_page(&page)).unwrap();

    let browser = Browser::start(360, 800).await;
    browser.open(&server.url("/")).await;
    let accepts = browser
        .run(
            "const i = document.getElementById('photos'); return [i.accept, i.getAttribute('capture'), i.multiple];",
            json!([]),
        )
        .await;
    assert_eq!(accepts, json!(["image/*,.heic,.heif", "environment", true]));
    read_aloud(&browser, &photo).await;
    let words = browser.run("return document.querySelectorAll('#text span[data-index]').length", json!([])).await;
    assert_eq!(words, json!(page.text().split_whitespace().count()), "one highlightable word per word read");

    // Play: a word is highlighted, and later a later one.
    browser.run("document.getElementById('audio').play(); return null;", json!([])).await;
    let first = browser.wait_for("a highlighted word while playing", Duration::from_secs(20), HIGHLIGHTED).await;
    let later = browser
        .wait_for(
            "the highlight to move on",
            Duration::from_secs(20),
            &highlighted_after(first[0].as_u64().unwrap() + 2),
        )
        .await;
    assert!(later[1].as_f64() > first[1].as_f64(), "{first} then {later}");
    let marked = browser.run("return document.querySelectorAll('[aria-current=\"true\"]').length", json!([])).await;
    assert_eq!(marked, 1, "exactly one word is the current one");

    // Tapping a word plays from there.
    let tenth = browser.find("#text span[data-index=\"10\"]").await;
    browser.click(&tenth).await;
    let at =
        browser.wait_for("the tapped word to be highlighted", Duration::from_secs(10), &highlighted_after(10)).await;
    assert!(at[0].as_u64().unwrap() >= 10 && at[0].as_u64().unwrap() <= 13, "{at}");

    // The book is remembered in this browser.
    let recent = browser.run("return JSON.parse(localStorage.getItem('storytime.recent')).length", json!([])).await;
    assert_eq!(recent, 1);

    // Pictures of the page for the docs, when asked for (scripts/screenshots).
    if let Ok(dir) = std::env::var("STORYTIME_SCREENSHOTS") {
        let dir = std::path::PathBuf::from(dir);
        std::fs::write(dir.join("web-page-phone.png"), browser.screenshot().await).unwrap();
        let desktop = Browser::start(1280, 900).await;
        desktop.open(&server.url("/")).await;
        let script = "const [id, ts] = arguments; openBook(id, ts); return null;";
        let recent = browser.run("return JSON.parse(localStorage.getItem('storytime.recent'))[0]", json!([])).await;
        desktop.run(script, json!([recent["id"], recent["timestamp"]])).await;
        desktop.wait_for("the book", Duration::from_secs(20), "return !document.getElementById('player').hidden").await;
        desktop
            .run("const a = document.getElementById('audio'); a.currentTime = 3; a.play(); return null;", json!([]))
            .await;
        desktop.wait_for("a highlighted word", Duration::from_secs(20), HIGHLIGHTED).await;
        desktop.run("document.getElementById('audio').pause(); window.scrollTo(0, 0); return null;", json!([])).await;
        std::fs::write(dir.join("web-page-desktop.png"), desktop.screenshot().await).unwrap();
    }
}

/// The highlighted word, once its index is at least `index`.
fn highlighted_after(index: u64) -> String {
    format!(
        "const el = document.querySelector('#text span[aria-current=\"true\"]');
         const audio = document.getElementById('audio');
         return el && Number(el.dataset.index) >= {index} ? [Number(el.dataset.index), audio.currentTime] : null;"
    )
}

#[tokio::test]
async fn the_page_speaks_korean_and_keeps_its_controls_labelled() {
    let server = Server::start(&[]);
    let browser = Browser::start(360, 800).await;
    browser.open(&server.url("/")).await;
    let unlabelled = browser
        .run(
            "return [...document.querySelectorAll('input, select, button')].filter(e =>
                !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim()).map(e => e.id)",
            json!([]),
        )
        .await;
    assert_eq!(unlabelled, json!([]), "every control has a label");
    let lang = browser.find("#lang").await;
    browser.click(&lang).await;
    browser.run("const s = document.getElementById('lang'); s.value = 'ko'; s.dispatchEvent(new Event('change')); return null;", json!([])).await;
    let shown = browser
        .run("return [document.documentElement.lang, document.getElementById('read').textContent]", json!([]))
        .await;
    assert_eq!(shown, json!(["ko", "읽어 주기"]));
    // Nothing is wider than a 360-pixel phone screen.
    let overflow = browser.run("return document.documentElement.scrollWidth > window.innerWidth", json!([])).await;
    assert_eq!(overflow, false);
}

#[tokio::test]
async fn the_page_is_served_from_the_binary_with_a_strict_policy() {
    let server = Server::start(&[]);
    let r = server.http.get(server.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    let policy = r.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(policy.contains("script-src 'self'") && policy.contains("frame-ancestors 'none'"), "{policy}");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    let html = r.text().await.unwrap();
    assert!(html.contains(r#"capture="environment""#) && html.contains("/app.js"));
    for (path, kind) in [("/app.js", "text/javascript"), ("/app.css", "text/css")] {
        let r = server.http.get(server.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with(kind), "{path}");
    }
}

/// A photo too large for one API request on AWS goes to an upload link
/// (`POST /uploads`, then `PUT`), with the same result.
#[tokio::test]
async fn a_large_photo_goes_through_an_upload_link() {
    let server = Server::start(&[]);
    let page = Page::new(&["The bear found honey in the old oak tree."]);
    let dir = tempfile::tempdir().unwrap();
    let photo = dir.path().join("bear.png");
    // A phone photo's size: the picture, then bytes past its end (which
    // Storytime drops when it stores the picture).
    let mut bytes = render_page(&page);
    bytes.resize(bytes.len() + 5 * 1024 * 1024, 0);
    std::fs::write(&photo, &bytes).unwrap();

    let browser = Browser::start(360, 800).await;
    browser.open(&server.url("/")).await;
    read_aloud(&browser, &photo).await;
    let text = browser.run("return document.getElementById('text').textContent", json!([])).await;
    assert!(text.as_str().unwrap().contains("honey"), "{text}");
    let sent = browser
        .run("return performance.getEntriesByType('resource').map(e => new URL(e.name).pathname)", json!([]))
        .await;
    let paths: Vec<&str> = sent.as_array().unwrap().iter().filter_map(|p| p.as_str()).collect();
    assert!(paths.contains(&"/uploads"), "{paths:?}");
    assert!(paths.iter().any(|p| p.starts_with("/media/incoming/")), "{paths:?}");
    assert!(!paths.contains(&"/upload"), "{paths:?}");
}

#[tokio::test]
async fn a_book_too_large_for_one_request_is_sent_with_smaller_photos() {
    // A server that takes 1.5 MB a photo and two pages a book (3 MB in
    // one request), as API Gateway's limit makes it on AWS, and two phone
    // photos of 2 MB each.
    let server = Server::start(&[("STORYTIME_MAX_UPLOAD_BYTES", "1500000"), ("STORYTIME_MAX_PAGES", "2")]);
    let book = [
        Page::new(&["The fox crept out of its den at dawn."]),
        Page::new(&["It found a puddle full of sky and drank."]),
    ];
    let dir = tempfile::tempdir().unwrap();
    let photos: Vec<String> = book
        .iter()
        .enumerate()
        .map(|(i, page)| {
            let path = dir.path().join(format!("page{i}.png"));
            let mut bytes = render_page(page);
            bytes.resize(2 * 1024 * 1024, 0);
            std::fs::write(&path, &bytes).unwrap();
            path.display().to_string()
        })
        .collect();

    let browser = Browser::start(360, 800).await;
    browser.open(&server.url("/")).await;
    let limits =
        browser.run("return [document.body.dataset.photoBytes, document.body.dataset.bookBytes]", json!([])).await;
    assert_eq!(limits, json!(["1500000", "3000000"]));
    let input = browser.find("#photos").await;
    browser.type_into(&input, &photos.join("\n")).await;
    browser
        .wait_for(
            "both pages to be listed",
            Duration::from_secs(5),
            "return document.querySelectorAll('#pages li').length === 2",
        )
        .await;
    browser.click(&browser.find("#read").await).await;
    browser
        .wait_for(
            "the narration",
            Duration::from_secs(120),
            "return !document.getElementById('player').hidden && document.getElementById('audio').readyState >= 1",
        )
        .await;
    let text = browser.run("return document.getElementById('text').textContent", json!([])).await;
    let text = text.as_str().unwrap();
    assert!(text.contains("den") && text.contains("puddle"), "{text}");
    // In one request: each photo alone would have been refused (413).
    let sent = browser
        .run("return performance.getEntriesByType('resource').map(e => new URL(e.name).pathname)", json!([]))
        .await;
    let paths: Vec<&str> = sent.as_array().unwrap().iter().filter_map(|p| p.as_str()).collect();
    assert!(paths.contains(&"/upload") && !paths.contains(&"/uploads"), "{paths:?}");
}
