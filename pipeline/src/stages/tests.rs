//! The stages end to end on the in-memory adapters: intake, reading,
//! narration and delivery, in milliseconds.

use bytes::Bytes;

use super::{IntakeError, SubmitRequest, Upload};
use crate::domain::{DeliveryState, Destination, ErrorKind, JobStatus, Reuse, StageMessage};
use crate::image::ImageRejection;
use crate::ports::ChatResult;
use crate::testing::{Options, TestPipeline};

fn upload(bytes: Bytes, name: &str) -> Upload {
    Upload { bytes, name: Some(name.to_owned()) }
}

fn request(pages: Vec<Upload>, reuse: Reuse, destinations: Vec<Destination>) -> SubmitRequest {
    SubmitRequest { pages, voice: None, speed: None, reuse, destinations, request_key: None, owner: "tests".into() }
}

fn email() -> Vec<Destination> {
    vec![Destination::Email { to: None }]
}

fn chat(fallback: Option<&str>) -> Destination {
    Destination::Chat {
        workspace: "T1".into(),
        channel: "C1".into(),
        thread: "1.1".into(),
        message: "1.1".into(),
        user: Some("U1".into()),
        fallback_email: fallback.map(str::to_owned),
        status: None,
    }
}

#[tokio::test]
async fn an_uploaded_page_is_read_narrated_and_emailed() {
    let t = TestPipeline::new();
    let page = t.reader.page("The little fox found a red kite.");
    let accepted = t.pipeline.submit(request(vec![upload(page, "fox.png")], Reuse::SameJob, email())).await.unwrap();
    assert!(accepted.created);

    t.drive_until_idle().await;
    let job = t.pipeline.jobs.get(&accepted.job.id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Done);
    assert_eq!(job.text.as_deref(), Some("The little fox found a red kite."));
    let audio = job.audio.as_ref().expect("a narration");
    assert!(t.pipeline.blobs.exists(&audio.key).await.unwrap());
    assert!((1.0..3.0).contains(&audio.seconds), "{} s for 7 words", audio.seconds);
    let sent = t.notifier.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].subject, "Your story is ready: fox.png");
    assert!(sent[0].body.contains("red kite"));
    assert!(matches!(job.recipients[0].state, DeliveryState::Delivered { .. }));
}

#[tokio::test]
async fn the_same_page_sent_again_joins_the_first_job_and_is_read_once() {
    let t = TestPipeline::new();
    let page = t.reader.page("A hen laid an egg.");
    let first = t.pipeline.submit(request(vec![upload(page.clone(), "a.png")], Reuse::SameJob, email())).await.unwrap();
    let again = t.pipeline.submit(request(vec![upload(page.clone(), "b.png")], Reuse::SameJob, email())).await.unwrap();
    assert_eq!(again.job.id, first.job.id);
    assert!(!again.created);
    t.drive_until_idle().await;
    assert_eq!(t.reader.reads(), 1, "one reading for both");
    assert_eq!(t.notifier.sent().len(), 2, "each submission asked for its email");

    // Once done, a duplicate gets the result at once; without the check,
    // a new job reuses nothing.
    let late = t.pipeline.submit(request(vec![upload(page.clone(), "c.png")], Reuse::SameJob, vec![])).await.unwrap();
    assert_eq!((late.job.id.clone(), late.job.status), (first.job.id.clone(), JobStatus::Done));
    let fresh = t.pipeline.submit(request(vec![upload(page, "d.png")], Reuse::Nothing, vec![])).await.unwrap();
    assert_ne!(fresh.job.id, first.job.id);
    t.drive_until_idle().await;
    assert_eq!(t.reader.reads(), 2);
}

#[tokio::test]
async fn the_same_text_in_the_same_voice_is_narrated_once() {
    let t = TestPipeline::new();
    let text = "The owl and the cat went to sea.";
    let a = t.pipeline.submit(request(vec![upload(t.reader.page(text), "a.png")], Reuse::Results, vec![])).await;
    t.drive_until_idle().await;
    let calls = t.narrator.calls();
    // Another job for the same text: its reading is reused, and so is the narration.
    let b = t.pipeline.submit(request(vec![upload(t.reader.page(text), "b.png")], Reuse::Results, vec![])).await;
    t.drive_until_idle().await;
    let (a, b) = (a.unwrap().job.id, b.unwrap().job.id);
    assert_ne!(a, b);
    assert_eq!(t.narrator.calls(), calls, "no second narration");
    let a = t.pipeline.jobs.get(&a).await.unwrap().unwrap().audio.unwrap();
    let b = t.pipeline.jobs.get(&b).await.unwrap().unwrap().audio.unwrap();
    assert_eq!(a.key, b.key, "both jobs share one narration");
}

#[tokio::test]
async fn a_book_is_read_page_by_page_and_narrated_in_order() {
    let t = TestPipeline::new();
    let pages = vec![upload(t.reader.page("Once upon a time."), "1.png"), upload(t.reader.page("The end."), "2.png")];
    let job = t.pipeline.submit(request(pages, Reuse::SameJob, vec![])).await.unwrap().job.id;
    t.drive_until_idle().await;
    let job = t.pipeline.jobs.get(&job).await.unwrap().unwrap();
    assert_eq!(job.text.as_deref(), Some("Once upon a time.\nThe end."));
    assert_eq!(job.name, "1.png");
}

#[tokio::test]
async fn a_page_without_text_finishes_with_no_text_and_says_so() {
    let t = TestPipeline::new();
    // A photo the reader finds nothing on.
    let blank = t.reader.page("");
    let job = t.pipeline.submit(request(vec![upload(blank, "blank.png")], Reuse::SameJob, email())).await.unwrap();
    t.drive_until_idle().await;
    let job = t.pipeline.jobs.get(&job.job.id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::NoText);
    assert!(job.audio.is_none());
    assert_eq!(t.notifier.sent()[0].subject, "No text found on blank.png");
    assert_eq!(t.narrator.calls(), 0);
}

#[tokio::test]
async fn a_chat_thread_gets_the_narration() {
    let t = TestPipeline::new();
    let page = t.reader.page("Hello chat.");
    let job = t.pipeline.submit(request(vec![upload(page, "hi.png")], Reuse::Results, vec![chat(None)])).await;
    t.drive_until_idle().await;
    let delivered = t.messenger.delivered();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].0, chat(None));
    match &delivered[0].1 {
        ChatResult::Narrated { text, file_name, audio, .. } => {
            assert_eq!(text, "Hello chat.");
            assert_eq!(file_name, "hi.mp3");
            assert!(!audio.is_empty());
        }
        other => panic!("{other:?}"),
    }
    assert!(t.notifier.sent().is_empty());
    let job = t.pipeline.jobs.get(&job.unwrap().job.id).await.unwrap().unwrap();
    assert!(matches!(job.recipients[0].state, DeliveryState::Delivered { .. }));
}

#[tokio::test]
async fn a_chat_thread_that_is_gone_gets_the_result_by_email_instead() {
    let t = TestPipeline::new();
    t.messenger.fail(ErrorKind::Missing, 1);
    let page = t.reader.page("Hello again.");
    let dest = vec![chat(Some("parent@example.com"))];
    let job = t.pipeline.submit(request(vec![upload(page, "hi.png")], Reuse::Results, dest)).await.unwrap().job.id;
    t.drive_until_idle().await;
    let sent = t.notifier.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to.as_deref(), Some("parent@example.com"));
    let job = t.pipeline.jobs.get(&job).await.unwrap().unwrap();
    assert!(matches!(job.recipients[0].state, DeliveryState::FellBack { .. }), "{:?}", job.recipients);
}

#[tokio::test]
async fn without_a_chat_front_end_chat_results_go_by_email() {
    let t = TestPipeline::with(Options { chat: false, ..Options::default() });
    let page = t.reader.page("No chat here.");
    t.pipeline.submit(request(vec![upload(page, "x.png")], Reuse::Results, vec![chat(None)])).await.unwrap();
    t.drive_until_idle().await;
    assert_eq!(t.notifier.sent().len(), 1);
}

#[tokio::test]
async fn uploads_that_cannot_be_read_are_refused_before_any_work() {
    let t = TestPipeline::with(Options { settings: vec![("STORYTIME_MAX_PAGES", "2".into())], ..Options::default() });
    let not_image = upload(Bytes::from_static(b"just some words"), "page.jpeg");
    match t.pipeline.submit(request(vec![not_image], Reuse::SameJob, email())).await {
        Err(IntakeError::Rejected { page: 0, reason: ImageRejection::NotAnImage(_) }) => {}
        other => panic!("{other:?}"),
    }
    let page = t.reader.page("A page.");
    let three = (0..3).map(|i| upload(page.clone(), &format!("{i}.png"))).collect();
    assert!(matches!(
        t.pipeline.submit(request(three, Reuse::SameJob, vec![])).await,
        Err(IntakeError::TooManyPages { count: 3, max: 2 })
    ));
    assert!(matches!(t.pipeline.submit(request(vec![], Reuse::SameJob, vec![])).await, Err(IntakeError::NoPages)));
    assert!(t.pipeline.jobs.counts().await.unwrap().is_empty(), "no job was made");
    t.drive_until_idle().await;
    assert!(t.notifier.sent().is_empty());
}

#[tokio::test]
async fn a_message_carrying_an_old_copy_of_its_job_loses_nothing() {
    let t = TestPipeline::new();
    let page = t.reader.page("The owl sang to the moon.");
    let accepted = t.pipeline.submit(request(vec![upload(page, "owl.png")], Reuse::SameJob, email())).await.unwrap();
    let queued = accepted.job.clone();
    // A second recipient joins after the pages were queued with a copy of
    // the job that has one: the stages' writes see the newer job.
    t.pipeline
        .submit(request(vec![upload(t.reader.page("The owl sang to the moon."), "again.png")], Reuse::SameJob, email()))
        .await
        .unwrap();
    t.drive_until_idle().await;
    let done = t.pipeline.jobs.get(&queued.id).await.unwrap().unwrap();
    assert_eq!(done.status, JobStatus::Done);
    assert_eq!(done.recipients.len(), 2);
    assert_eq!(t.notifier.sent().len(), 2, "both recipients got the result");

    // The first messages delivered again, with their old copies: nothing is
    // read or narrated again, and the finished job is left as it is.
    let (reads, narrations) = (t.reader.reads(), t.narrator.calls());
    t.send(&StageMessage::read_of(&queued, 0)).await;
    let mut narrating = queued.clone();
    narrating.status = JobStatus::Narrating;
    narrating.pages[0].reading = done.pages[0].reading.clone();
    t.send(&StageMessage::narrate_of(&narrating)).await;
    t.drive_until_idle().await;
    let after = t.pipeline.jobs.get(&queued.id).await.unwrap().unwrap();
    assert_eq!(after.version, done.version);
    assert_eq!((t.reader.reads(), t.narrator.calls()), (reads, narrations));
    assert_eq!(t.notifier.sent().len(), 2);
}

#[tokio::test]
async fn a_photo_uploaded_straight_to_storage_is_taken_in_once_when_storage_says_it_arrived() {
    use crate::domain::BlobKey;
    use crate::stages::{UploadRequest, UploadState};
    let t = TestPipeline::new();
    let request = |owner: &str| UploadRequest {
        name: Some("big.png".into()),
        voice: None,
        speed: None,
        dedup: true,
        notify: true,
        owner: owner.into(),
    };
    let ttl = std::time::Duration::from_secs(900);
    let upload = t.pipeline.expect_upload(request("tests"), ttl).await.unwrap();
    assert!(upload.url.contains(&format!("incoming/{}", upload.id)), "{}", upload.url);
    assert!(matches!(t.pipeline.upload_state(&upload.id).await.unwrap(), Some(UploadState::Waiting { .. })));

    // The photo arrives; storage's event comes through the inbound queue.
    let key = BlobKey::incoming(&upload.id).unwrap();
    t.pipeline.blobs.put(&key, t.reader.page("The big bear slept all winter.")).await.unwrap();
    let event = format!(
        r#"{{"Records":[{{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{{"object":{{"key":"incoming/{}"}}}}}}]}}"#,
        upload.id
    );
    t.send(&StageMessage::from_json(&event).unwrap()).await;
    t.drive_until_idle().await;
    let Some(UploadState::Taken { job, timestamp }) = t.pipeline.upload_state(&upload.id).await.unwrap() else {
        panic!("not taken in");
    };
    let done = t.pipeline.jobs.get(&job).await.unwrap().unwrap();
    assert_eq!((done.status, done.timestamp.clone(), done.name.as_str()), (JobStatus::Done, timestamp, "big.png"));
    assert_eq!(done.text.as_deref(), Some("The big bear slept all winter."));
    assert_eq!(t.notifier.sent().len(), 1);
    assert!(!t.pipeline.blobs.exists(&key).await.unwrap(), "the incoming copy is removed");

    // The event again: the same answer, no second job.
    t.send(&StageMessage::from_json(&event).unwrap()).await;
    t.drive_until_idle().await;
    assert_eq!(
        t.pipeline.take_upload(&upload.id).await.unwrap(),
        UploadState::Taken { job, timestamp: done.timestamp }
    );
    assert_eq!(t.reader.reads(), 1);

    // What cannot be read is refused with its reason; an unknown upload is
    // not found, and its photo removed.
    let bad = t.pipeline.expect_upload(request("tests"), ttl).await.unwrap();
    t.pipeline
        .blobs
        .put(&BlobKey::incoming(&bad.id).unwrap(), bytes::Bytes::from_static(b"not a photo"))
        .await
        .unwrap();
    let Ok(UploadState::Refused { reason }) = t.pipeline.take_upload(&bad.id).await else { panic!("not refused") };
    assert!(reason.contains("not a picture") || reason.contains("photo"), "{reason}");
    let stray = BlobKey::incoming("0123456789abcdef0123456789abcdef").unwrap();
    t.pipeline.blobs.put(&stray, bytes::Bytes::from_static(b"x")).await.unwrap();
    let err = t.pipeline.take_upload("0123456789abcdef0123456789abcdef").await.unwrap_err();
    assert!(matches!(err, IntakeError::Unavailable(e) if e.kind() == ErrorKind::NotFound));
    assert!(!t.pipeline.blobs.exists(&stray).await.unwrap());
    assert_eq!(t.pipeline.upload_state("../etc").await.unwrap(), None);
}
