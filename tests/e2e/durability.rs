//! Work survives crashes; work that keeps failing ends in the dead-letter
//! queue with its job marked failed; stalled jobs are re-queued.

use storytime_tests::{LIMIT, Page, Server, render_page};

fn page() -> Vec<u8> {
    render_page(&Page::new(&["The bear slept all winter in a warm cave.", "In spring he woke up very hungry."]))
}

async fn upload(server: &Server) -> (String, String) {
    let v = server.upload_ok(page(), "bear.png", &[("X-Notification-Required", "false")]).await;
    (v["ID"].as_str().unwrap().to_owned(), v["Timestamp"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn queued_work_survives_a_kill_and_finishes_after_restart() {
    // No reader in this process: the page stays queued.
    let mut server = Server::start(&[("STORYTIME_READ_WORKERS", "0")]);
    let (id, ts) = upload(&server).await;
    server.wait_until(LIMIT, |h| h["queues"]["read"]["waiting"] == 1).await;

    server.restart(&[("STORYTIME_READ_WORKERS", "1")]);
    let (status, done) = server.wait_for(&id, &ts, LIMIT).await;
    assert_eq!(status, 200, "{done}");
    assert!(done["Text"].as_str().unwrap().contains("warm cave"));
}

#[tokio::test]
async fn work_in_progress_when_the_process_dies_is_picked_up_again() {
    let mut server = Server::start(&[("STORYTIME_VISIBILITY_TIMEOUT", "2")]);
    let (id, ts) = upload(&server).await;
    // Kill the process while the page is being read.
    server.wait_until(LIMIT, |h| h["queues"]["read"]["in_flight"] == 1).await;
    server.kill();

    server.restart(&[]);
    let (status, done) = server.wait_for(&id, &ts, LIMIT).await;
    assert_eq!(status, 200, "{done}");
    assert!(done["Text"].as_str().unwrap().contains("hungry"));
}

#[tokio::test]
async fn a_job_whose_message_was_lost_is_requeued_once_stalled() {
    // A long visibility timeout hides the killed worker's message for ten
    // minutes; only the stall check can rescue the job.
    let mut server = Server::start(&[("STORYTIME_VISIBILITY_TIMEOUT", "600"), ("STORYTIME_STALL_AFTER", "2")]);
    let (id, ts) = upload(&server).await;
    server.wait_until(LIMIT, |h| h["queues"]["read"]["in_flight"] == 1).await;
    server.kill();

    server.restart(&[]);
    let (status, done) = server.wait_for(&id, &ts, LIMIT).await;
    assert_eq!(status, 200, "{done}");
}

#[tokio::test]
async fn work_that_keeps_failing_is_dead_lettered_and_the_job_says_why() {
    // A directory is not a program: every attempt to start the reader fails
    // with an error worth retrying, until the attempts run out.
    let not_a_program = tempfile::tempdir().unwrap();
    let server = Server::start(&[
        ("STORYTIME_TESSERACT", not_a_program.path().to_str().unwrap()),
        ("STORYTIME_MAX_ATTEMPTS", "3"),
        ("STORYTIME_RETRY_BASE_MS", "50"),
    ]);
    let (id, ts) = upload(&server).await;
    let (status, body) = server.wait_for(&id, &ts, LIMIT).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "job_failed");
    assert_eq!(body["Reason"], "kept_failing");
    assert!(body["error"]["message"].as_str().unwrap().contains("tried 3 times"), "{body}");
    let health = server.health().await;
    assert_eq!(health["queues"]["read"]["dead"], 1, "{health}");
    assert_eq!(health["jobs"]["failed"], 1);
}

#[tokio::test]
async fn a_missing_engine_fails_the_job_at_once_with_a_fix() {
    let server = Server::start(&[("STORYTIME_TESSERACT", "/nonexistent/tesseract")]);
    let (id, ts) = upload(&server).await;
    let (status, body) = server.wait_for(&id, &ts, LIMIT).await;
    assert_eq!(status, 422, "{body}");
    // The user reads that it was not their photo; the operator's log has
    // the program's path and the fix.
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("not with the photo") && !message.contains("/nonexistent"), "{message}");
    let logged = |log: &str| log.contains("apt-get install tesseract-ocr") && log.contains("/nonexistent/tesseract");
    // The log writer may still be writing the line out.
    let start = std::time::Instant::now();
    while !logged(&server.log_lines().join("\n")) {
        assert!(start.elapsed() < LIMIT, "{}", server.log_lines().join("\n"));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(server.health().await["queues"]["read"]["dead"], 0);
}
