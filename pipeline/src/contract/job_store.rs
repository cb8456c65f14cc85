//! The job store and preferences contract. Each check uses its own
//! content, so they can share one store.

use std::collections::HashSet;
use std::sync::Arc;

use crate::domain::{BlobKey, ContentId, Destination, ErrorKind, Failure, Job, JobStatus, Page, Reuse};
use crate::ports::{JobStore, MAX_RECIPIENTS, Preferences, Submitted, UserPrefs};

fn job(content: &[u8], dedup: bool) -> Job {
    let content_id = ContentId::of(content);
    let page = Page {
        original: BlobKey::original(&content_id, "png"),
        content_id,
        content_type: "image/png".into(),
        name: "p.png".into(),
        width: 100,
        height: 100,
        reading: None,
    };
    let reuse = if dedup { Reuse::SameJob } else { Reuse::Nothing };
    Job::new(vec![page], "p.png".into(), None, reuse, 1_000)
}

fn email(i: usize) -> Vec<Destination> {
    vec![Destination::Email { to: Some(format!("u{i}@example.com")) }]
}

/// Runs every job-store check.
pub async fn job_store(store: Arc<dyn JobStore>) {
    concurrent_submissions_of_the_same_page_make_one_job(store.clone()).await;
    without_the_duplication_check_every_submission_is_new(&*store).await;
    a_failed_job_does_not_block_a_new_attempt(&*store).await;
    submitting_the_same_request_twice_yields_one_job(&*store).await;
    a_key_is_claimed_once(&*store).await;
    a_job_with_many_recipients_hands_its_key_to_a_new_job(&*store).await;
    saving_a_stale_copy_is_refused(&*store).await;
    stalled_lists_unfinished_jobs_older_than_the_cutoff(&*store).await;
}

async fn concurrent_submissions_of_the_same_page_make_one_job(store: Arc<dyn JobStore>) {
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.submit(job(b"same page", true), email(i)).await.unwrap() })
        })
        .collect();
    let mut created = 0;
    let mut ids = HashSet::new();
    for t in tasks {
        match t.await.unwrap() {
            Submitted::Created(j) => {
                created += 1;
                ids.insert(j.id);
            }
            Submitted::Existing { job, .. } => {
                ids.insert(job.id);
            }
        }
    }
    assert_eq!(created, 1, "one submission creates the job");
    assert_eq!(ids.len(), 1, "every submitter gets that job");
    let stored = store.get(ids.iter().next().unwrap()).await.unwrap().unwrap();
    assert_eq!(stored.recipients.len(), 8, "every submitter is a recipient");
}

async fn without_the_duplication_check_every_submission_is_new(store: &dyn JobStore) {
    let a = store.submit(job(b"no dedup", false), vec![]).await.unwrap();
    let b = store.submit(job(b"no dedup", false), vec![]).await.unwrap();
    assert!(matches!((a, b), (Submitted::Created(_), Submitted::Created(_))));
}

async fn a_failed_job_does_not_block_a_new_attempt(store: &dyn JobStore) {
    let Submitted::Created(mut first) = store.submit(job(b"fails", true), vec![]).await.unwrap() else {
        panic!("the first submission creates the job")
    };
    first.fail(Failure::internal("boom"), 2_000);
    store.save(&first).await.unwrap();
    let again = store.submit(job(b"fails", true), vec![]).await.unwrap();
    assert!(matches!(again, Submitted::Created(ref j) if j.id != first.id), "{again:?}");
}

async fn submitting_the_same_request_twice_yields_one_job(store: &dyn JobStore) {
    let make = || {
        let mut j = job(b"request", false);
        j.request = Some("slack:T1:C1:1.5".into());
        j
    };
    let Submitted::Created(first) = store.submit(make(), vec![]).await.unwrap() else {
        panic!("the first submission creates the job")
    };
    let again = store.submit(make(), vec![Destination::Email { to: None }]).await.unwrap();
    assert!(
        matches!(again, Submitted::Existing { ref job, ref recipients } if job.id == first.id && recipients.is_empty()),
        "{again:?}"
    );
}

async fn a_key_is_claimed_once(store: &dyn JobStore) {
    assert!(store.claim("slack:T1:C1:1.2").await.unwrap());
    assert!(!store.claim("slack:T1:C1:1.2").await.unwrap());
    assert!(store.claim("slack:T1:C1:1.3").await.unwrap());
}

async fn a_job_with_many_recipients_hands_its_key_to_a_new_job(store: &dyn JobStore) {
    let mut created = Vec::new();
    for i in 0..=MAX_RECIPIENTS {
        if let Submitted::Created(j) = store.submit(job(b"popular", true), email(i)).await.unwrap() {
            created.push((i, j.id));
        }
    }
    assert_eq!(created.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [0, MAX_RECIPIENTS]);
    let next = store.submit(job(b"popular", true), vec![]).await.unwrap();
    assert!(matches!(next, Submitted::Existing { ref job, .. } if job.id == created[1].1), "{next:?}");
}

async fn saving_a_stale_copy_is_refused(store: &dyn JobStore) {
    let Submitted::Created(j) = store.submit(job(b"stale", true), vec![]).await.unwrap() else {
        panic!("the first submission creates the job")
    };
    let mut a = j.clone();
    a.status = JobStatus::Reading;
    assert_eq!(store.save(&a).await.unwrap(), 1);
    let mut b = j;
    b.status = JobStatus::Narrating;
    assert_eq!(store.save(&b).await.err().map(|e| e.kind()), Some(ErrorKind::Conflict));
    assert_eq!(store.get(&a.id).await.unwrap().unwrap().status, JobStatus::Reading);
}

async fn stalled_lists_unfinished_jobs_older_than_the_cutoff(store: &dyn JobStore) {
    let Submitted::Created(j) = store.submit(job(b"stalls", true), vec![]).await.unwrap() else {
        panic!("the first submission creates the job")
    };
    let listed = |jobs: Vec<Job>| jobs.iter().any(|s| s.id == j.id);
    assert!(listed(store.stalled(1_001, 1000).await.unwrap()));
    assert!(!listed(store.stalled(1_000, 1000).await.unwrap()));
    let mut done = j.clone();
    done.status = JobStatus::Done;
    store.save(&done).await.unwrap();
    assert!(!listed(store.stalled(i64::MAX, 1000).await.unwrap()));
}

/// Runs the preferences checks.
pub async fn preferences(prefs: &dyn Preferences) {
    assert_eq!(prefs.get("slack:T:U1").await.unwrap(), UserPrefs::default());
    let mine = UserPrefs {
        voice: Some("en-gb".into()),
        speed: Some("0.7".parse().unwrap()),
        email: Some("a@b.c".into()),
        pending_email: Some(crate::ports::PendingEmail {
            address: "b@c.d".into(),
            code_digest: "ab".repeat(32),
            expires_ms: 1_700_000_000_000,
            tries: 1,
        }),
    };
    prefs.set("slack:T:U1", &mine).await.unwrap();
    assert_eq!(prefs.get("slack:T:U1").await.unwrap(), mine);
    assert_eq!(prefs.get("slack:T:U2").await.unwrap(), UserPrefs::default());

    assert_eq!(prefs.record("install:T1").await.unwrap(), None);
    prefs.put_record("install:T1", "first").await.unwrap();
    prefs.put_record("install:T2", "other").await.unwrap();
    prefs.put_record("install:T1", "second").await.unwrap();
    assert_eq!(prefs.record("install:T1").await.unwrap().as_deref(), Some("second"));
    prefs.delete_record("install:T1").await.unwrap();
    prefs.delete_record("install:T1").await.unwrap();
    assert_eq!(prefs.record("install:T1").await.unwrap(), None);
    assert_eq!(prefs.record("install:T2").await.unwrap().as_deref(), Some("other"));
}
