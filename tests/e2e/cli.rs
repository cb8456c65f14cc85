//! The `storytime` commands other than `serve`.

use storytime_tests::{Page, blank_page, cer, mp3_seconds, render_page, run_storytime};

#[test]
fn narrate_reads_a_book_in_order_into_one_mp3() {
    let dir = tempfile::tempdir().unwrap();
    let first = Page::new(&["Once upon a time a small boat sailed out to sea."]);
    let second = Page::new(&["At night the boat came home, and everyone cheered."]).rotated(180);
    let (p1, p2, out) = (dir.path().join("p1.png"), dir.path().join("p2.png"), dir.path().join("book.mp3"));
    std::fs::write(&p1, render_page(&first)).unwrap();
    std::fs::write(&p2, render_page(&second)).unwrap();

    let run =
        run_storytime(&["narrate", p1.to_str().unwrap(), p2.to_str().unwrap(), "--out", out.to_str().unwrap()], &[]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let text = String::from_utf8(run.stdout).unwrap();
    let want = format!("{} {}", first.text(), second.text());
    assert!(cer(&text, &want) < 0.05, "printed {text:?}");
    let progress = String::from_utf8_lossy(&run.stderr);
    assert!(progress.contains("[1/2]") && progress.contains("[2/2]"), "{progress}");
    let seconds = mp3_seconds(&std::fs::read(&out).unwrap());
    assert!((4.0..15.0).contains(&seconds), "{seconds} s for 19 words");
}

#[test]
fn narrate_explains_pages_it_cannot_use() {
    let dir = tempfile::tempdir().unwrap();
    let blank = dir.path().join("blank.png");
    std::fs::write(&blank, blank_page()).unwrap();
    let out = dir.path().join("out.mp3");
    let run = run_storytime(&["narrate", blank.to_str().unwrap(), "--out", out.to_str().unwrap()], &[]);
    assert_eq!(run.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&run.stderr).contains("No text found"));
    assert!(!out.exists());

    let text = dir.path().join("notes.jpeg");
    std::fs::write(&text, "not a photo").unwrap();
    let run = run_storytime(&["narrate", text.to_str().unwrap(), "--out", out.to_str().unwrap()], &[]);
    assert_eq!(run.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&run.stderr).contains("not an image"));

    let run = run_storytime(&["narrate", "/nonexistent.png", "--out", out.to_str().unwrap()], &[]);
    assert_eq!(run.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&run.stderr).contains("/nonexistent.png"));
}

#[test]
fn init_is_idempotent_and_doctor_reports_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let env = [("STORYTIME_DATA_DIR", data.to_str().unwrap())];
    for _ in 0..2 {
        let run = run_storytime(&["init"], &env);
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    }
    assert!(data.join("storytime.sqlite").exists());

    let ok = run_storytime(&["doctor"], &env);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stdout));

    let broken = run_storytime(&["doctor"], &[env[0], ("STORYTIME_TESSERACT", "/nonexistent/tesseract")]);
    assert_eq!(broken.status.code(), Some(1));
    let report = String::from_utf8_lossy(&broken.stdout);
    assert!(report.contains("MISSING") && report.contains("apt-get install tesseract-ocr"), "{report}");

    let bad = run_storytime(&["doctor"], &[("STORYTIME_LISTEN", "nowhere")]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("STORYTIME_LISTEN"));
}
