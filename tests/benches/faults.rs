//! The fault suite: `scripts/faults [KILLS]`.
//!
//! Runs the real `storytime serve` on loopback with a stand-in for Slack's
//! servers, keeps the pipeline busy, and injects one fault at a time:
//!
//! - `kill -9` of the server at random moments, `KILLS` times in a row (50
//!   by default), with uploads and Slack photo events flowing: every
//!   acknowledged upload must end finished or failed with its reason, and
//!   every acknowledged event must get exactly one answer in its thread (or
//!   one email when Slack would not take it);
//! - engines that hang or crash (stand-in `tesseract` programs): the job
//!   times out, is retried, and fails with its reason after its attempts,
//!   while the server keeps answering;
//! - Slack answering 429 with `Retry-After` and storms of 5xx: everything is
//!   delivered once, in its thread, when Slack recovers, or by email when it
//!   does not within the retry budget;
//! - the data directory's disk full (a small tmpfs; needs root): uploads
//!   answer 507 with a clear message, nothing is corrupted, and work resumes
//!   once space is freed;
//! - the database locked by another process, and a damaged tail in the
//!   queue journal.
//!
//! Prints the figures of each and exits non-zero if a promise did not hold.
//! A second argument runs only the faults whose name contains it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use storytime_tests::Server;
use storytime_tests::fake_slack::{FakeSlack, Plan};
use storytime_tests::stats::percentile;
use storytime_tests::traffic::{Acked, Pages, SETTLE, answers, send_photo, settle, upload};

/// What one fault showed: figures to print, and promises broken.
#[derive(Default)]
struct Outcome {
    figures: Vec<String>,
    broken: Vec<String>,
}

impl Outcome {
    fn figure(&mut self, text: impl Into<String>) {
        self.figures.push(text.into());
    }

    fn check(&mut self, holds: bool, promise: impl Into<String>) {
        if !holds {
            self.broken.push(promise.into());
        }
    }
}

/// A small xorshift generator: random kill moments without a dependency.
struct Rng(u64);

impl Rng {
    fn seeded() -> Self {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Self(t.as_nanos() as u64 | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// Deliveries this server process found already in their thread.
async fn repeats_avoided(server: &Server) -> u64 {
    let metrics = server.http.get(server.url("/metrics")).send().await;
    let Ok(metrics) = metrics else { return 0 };
    let text = metrics.text().await.unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("storytime_slack_repeats_avoided_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// kill -9 at random moments with uploads and Slack events flowing.
async fn kill_nine(kills: usize) -> Outcome {
    let mut out = Outcome::default();
    let fake = Arc::new(FakeSlack::start().await);
    let extra = [("STORYTIME_UPLOADS_PER_MINUTE", "0"), ("STORYTIME_RETRY_BASE_MS", "500")];
    let mut server = Server::start_with(&fake.env(), &extra);
    // Slack's calls take time, so kills land in the middle of deliveries.
    fake.set_latency(Duration::from_millis(300));
    let pages = Arc::new(Pages::default());
    let acked = Arc::new(Mutex::new(Acked::default()));
    let mut avoided = 0;
    let seq = Arc::new(AtomicU64::new(0));
    let http = reqwest::Client::new();
    let mut rng = Rng::seeded();
    let mut restarts = Vec::new();
    let started = Instant::now();
    for round in 0..kills {
        let stop = Arc::new(AtomicBool::new(false));
        let mut traffic = Vec::new();
        for kind in 0..2 {
            let (base, http, stop, seq) = (server.base.clone(), http.clone(), stop.clone(), seq.clone());
            let (pages, acked, fake) = (pages.clone(), acked.clone(), fake.clone());
            traffic.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let n = seq.fetch_add(1, Ordering::Relaxed);
                    let alive = if kind == 0 {
                        match upload(&http, &base, pages.png(n), &format!("page-{n}.png")).await {
                            Ok((200, body)) => {
                                let id = body["ID"].as_str().unwrap_or_default().to_owned();
                                let ts = body["Timestamp"].as_str().unwrap_or_default().to_owned();
                                acked.lock().unwrap().uploads.push((id, ts));
                                true
                            }
                            Ok(_) => true,
                            Err(_) => false,
                        }
                    } else {
                        send_photo(&fake, &http, &base, &pages, "C0KILL", n, &acked).await
                            || reqwest::get(format!("{base}/healthz")).await.is_ok()
                    };
                    if !alive {
                        break;
                    }
                    // About four of each a second: a backlog builds up,
                    // so kills land in every stage.
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }));
        }
        // The fault lands at a random moment, 0.2 to 2 s into the round.
        tokio::time::sleep(Duration::from_millis(200 + rng.below(1800))).await;
        avoided += repeats_avoided(&server).await;
        server.kill();
        stop.store(true, Ordering::Relaxed);
        for t in traffic {
            let _ = t.await;
        }
        let t = Instant::now();
        server.restart(&[]);
        restarts.push(t.elapsed().as_secs_f64());
        if (round + 1) % 10 == 0 {
            eprintln!("  {} kills done", round + 1);
        }
    }
    let traffic_time = started.elapsed();
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    let settled = settle(&server, &fake, &acked).await;
    let outbox = server.outbox();
    let mut statuses: HashMap<String, usize> = HashMap::new();
    let mut lost_uploads = 0;
    for (id, ts) in &acked.uploads {
        let r = server.retrieve(id, ts).await;
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or_default();
        let state = match status {
            200 => "done".to_owned(),
            404 => {
                lost_uploads += 1;
                "lost".to_owned()
            }
            _ => body["error"]["code"].as_str().unwrap_or("other").to_owned(),
        };
        *statuses.entry(state).or_default() += 1;
    }
    let (mut in_thread, mut by_email, mut lost_events, mut twice) = (0, 0, 0, 0);
    for (channel, thread, name) in &acked.events {
        match answers(&fake, &outbox, channel, thread, name) {
            (0, 0) => lost_events += 1,
            (1, 0) => in_thread += 1,
            (0, 1) => by_email += 1,
            _ => twice += 1,
        }
    }
    let unacked_twice = acked
        .sent_events
        .iter()
        .filter(|(c, t)| !acked.events.iter().any(|(ac, at, _)| ac == c && at == t))
        .filter(|(c, t)| fake.deliveries(c, t).len() > 1)
        .count();
    avoided += repeats_avoided(&server).await;
    out.figure(format!("{kills} kills in {:.0} s of traffic", traffic_time.as_secs_f64()));
    out.figure(format!(
        "restart to listening: p50 {:.2} s, max {:.2} s",
        percentile(&restarts, 50.0),
        percentile(&restarts, 100.0)
    ));
    let mut statuses: Vec<_> = statuses.into_iter().collect();
    statuses.sort();
    out.figure(format!("uploads acknowledged: {} ({statuses:?})", acked.uploads.len()));
    out.figure(format!(
        "Slack events acknowledged: {}: {in_thread} answered once in their thread, {by_email} by email, \
         {twice} answered twice, {lost_events} lost; deliveries cut by a kill and found in their thread on retry: {avoided}",
        acked.events.len()
    ));
    out.figure(format!("unacknowledged events answered twice: {unacked_twice}"));
    match settled {
        Ok(t) => out.figure(format!("all settled {:.0} s after the last restart", t.as_secs_f64())),
        Err(e) => out.check(false, e),
    }
    out.check(lost_uploads == 0, format!("{lost_uploads} acknowledged uploads lost"));
    out.check(lost_events == 0, format!("{lost_events} acknowledged events lost"));
    out.check(twice == 0 && unacked_twice == 0, format!("{} threads answered twice", twice + unacked_twice));
    out.check(!acked.uploads.is_empty() && !acked.events.is_empty(), "no traffic was acknowledged");
    out
}

/// A stand-in `tesseract` that answers version and language questions as
/// the real one does and runs `body` for every reading.
fn stand_in(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("tesseract");
    let script = format!(
        "#!/bin/sh\ncase \"$1\" in --version|--list-langs) exec tesseract \"$@\";; esac\necho call >> {}\n{body}\n",
        dir.join("calls").display()
    );
    std::fs::write(&path, script).expect("write the stand-in");
    let mut perms = std::fs::metadata(&path).expect("stand-in").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&path, perms).expect("make it runnable");
    path
}

/// An engine that hangs, or one that crashes.
async fn broken_engine(kind: &str, body: &str) -> Outcome {
    let mut out = Outcome::default();
    let dir = tempfile::tempdir().expect("temp dir");
    let program = stand_in(dir.path(), body);
    let program = program.display().to_string();
    let server = Server::start(&[
        ("STORYTIME_TESSERACT", &program),
        ("STORYTIME_ENGINE_TIMEOUT", "3"),
        ("STORYTIME_MAX_ATTEMPTS", "3"),
        ("STORYTIME_RETRY_BASE_MS", "500"),
        ("STORYTIME_READ_WORKERS", "1"),
    ]);
    let pages = Pages::default();
    let start = Instant::now();
    let mut jobs = Vec::new();
    for n in 0..2 {
        match upload(&server.http, &server.base, pages.png(n), &format!("page-{n}.png")).await {
            Ok((200, body)) => jobs.push(body),
            other => out.check(false, format!("upload answered {other:?}")),
        }
    }
    // The server keeps answering while its reader is stuck.
    let mut health = Vec::new();
    let mut ended = Vec::new();
    while ended.len() < jobs.len() && start.elapsed() < Duration::from_secs(120) {
        let t = Instant::now();
        let ok = server.http.get(server.url("/healthz")).send().await.is_ok_and(|r| r.status().as_u16() != 500);
        health.push(t.elapsed().as_secs_f64() * 1000.0);
        out.check(ok, "/healthz did not answer while the engine was stuck");
        ended.clear();
        for job in &jobs {
            let (id, ts) = (job["ID"].as_str().unwrap_or_default(), job["Timestamp"].as_str().unwrap_or_default());
            let r = server.retrieve(id, ts).await;
            if r.status().as_u16() != 503 {
                ended.push((r.status().as_u16(), r.json::<Value>().await.unwrap_or_default()));
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let took = start.elapsed().as_secs_f64();
    out.check(ended.len() == jobs.len(), format!("{kind}: jobs still running after 120 s"));
    let reasons: Vec<String> =
        ended.iter().map(|(s, b)| format!("{s} {}", b["error"]["message"].as_str().unwrap_or_default())).collect();
    out.check(ended.iter().all(|(s, b)| *s != 200 && b["error"]["message"].is_string()), format!("{reasons:?}"));
    let calls = std::fs::read_to_string(dir.path().join("calls")).map(|s| s.lines().count()).unwrap_or(0);
    out.check(calls == 2 * 3, format!("{kind}: the engine was called {calls} times for 2 jobs of 3 attempts"));
    out.figure(format!(
        "{kind}: 2 jobs ended failed with their reason in {took:.1} s, the engine called {calls} times \
         (3 attempts each); /healthz p99 {:.1} ms meanwhile",
        percentile(&health, 99.0)
    ));
    if let Some(r) = reasons.first() {
        out.figure(format!("{kind}: answer: {r}"));
    }
    out
}

/// Slack answering 429 with Retry-After, then a storm of 5xx; then an
/// outage longer than the retry budget.
async fn slack_storms() -> Outcome {
    let mut out = Outcome::default();
    let fake = FakeSlack::start().await;
    let extra =
        [("STORYTIME_UPLOADS_PER_MINUTE", "0"), ("STORYTIME_RETRY_BASE_MS", "500"), ("STORYTIME_MAX_ATTEMPTS", "4")];
    let server = Server::start_with(&fake.env(), &extra);
    let pages = Pages::default();
    let acked = Mutex::new(Acked::default());
    for _ in 0..4 {
        fake.plan("files.completeUploadExternal", Plan::RateLimit(2));
    }
    for _ in 0..6 {
        fake.plan("files.getUploadURLExternal", Plan::Status(503));
        fake.plan("files.completeUploadExternal", Plan::Status(502));
    }
    let start = Instant::now();
    for n in 0..5 {
        send_photo(&fake, &server.http, &server.base, &pages, "C0STORM", n, &acked).await;
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    let settled = settle(&server, &fake, &acked).await;
    let outbox = server.outbox();
    let once = acked.events.iter().filter(|(c, t, n)| answers(&fake, &outbox, c, t, n) == (1, 0)).count();
    let rate_limited = fake.all_calls().len();
    out.check(settled.is_ok(), format!("storm: {settled:?}"));
    out.check(once == 5, format!("storm: {once} of 5 answered once in their thread, no email"));
    out.figure(format!(
        "429 ×4 (Retry-After 2 s) and 5xx ×12: 5 of 5 delivered once in their thread in {:.1} s ({rate_limited} Slack calls)",
        start.elapsed().as_secs_f64()
    ));

    // Slack down for longer than the attempts: the result goes by email.
    for _ in 0..50 {
        fake.plan("files.getUploadURLExternal", Plan::Status(503));
    }
    let acked = Mutex::new(Acked::default());
    let start = Instant::now();
    send_photo(&fake, &server.http, &server.base, &pages, "C0DOWN", 100, &acked).await;
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    let settled = settle(&server, &fake, &acked).await;
    let outbox = server.outbox();
    let by_email = acked.events.iter().filter(|(c, t, n)| answers(&fake, &outbox, c, t, n) == (0, 1)).count();
    out.check(settled.is_ok() && by_email == 1, format!("outage: {settled:?}, emailed {by_email}"));
    out.figure(format!(
        "Slack down past 4 attempts: emailed instead in {:.1} s, nothing posted in the thread",
        start.elapsed().as_secs_f64()
    ));
    out
}

/// Runs `mount`; false when this machine does not let us (not root).
fn mount_tmpfs(at: &Path, size: &str) -> bool {
    std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "tmpfs"])
        .arg(at)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Files a write cut short would leave: the blob store's hidden
/// temporary files.
fn half_written(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            let path = e.path();
            if path.is_dir() {
                half_written(&path)
            } else {
                usize::from(e.file_name().to_string_lossy().starts_with('.'))
            }
        })
        .sum()
}

/// The data directory's disk fills up, then space is freed.
async fn disk_full() -> Outcome {
    let mut out = Outcome::default();
    let dir = tempfile::tempdir().expect("temp dir");
    let mount = dir.path().join("disk");
    std::fs::create_dir(&mount).expect("mount point");
    if !mount_tmpfs(&mount, "24m") {
        out.figure("skipped: mounting a small tmpfs needs root");
        return out;
    }
    let data = mount.join("data");
    let mut server = Server::start_in(data.clone(), &[("STORYTIME_UPLOADS_PER_MINUTE", "0")]);
    let pages = Pages::default();
    let mut acked = Vec::new();
    for n in 0..3 {
        if let Ok((200, body)) = upload(&server.http, &server.base, pages.png(n), "before.png").await {
            acked.push(body);
        }
    }
    // Fill what is left.
    let filler = mount.join("filler");
    let mut f = std::fs::File::create(&filler).expect("filler");
    let chunk = vec![0u8; 1 << 20];
    while std::io::Write::write_all(&mut f, &chunk).is_ok() {}
    let _ = std::io::Write::write_all(&mut f, &chunk[..4096]);
    drop(f);
    let mut answers: HashMap<u16, usize> = HashMap::new();
    let mut message = String::new();
    for n in 10..20 {
        match upload(&server.http, &server.base, pages.png(n), "full.png").await {
            Ok((status, body)) => {
                *answers.entry(status).or_default() += 1;
                if status == 200 {
                    acked.push(body);
                } else {
                    message = format!("{status} {}", body["error"]);
                }
            }
            Err(e) => out.check(false, format!("upload on a full disk: {e}")),
        }
    }
    let health = server.http.get(server.url("/healthz")).send().await.map(|r| r.status().as_u16());
    let leftovers = half_written(&data);
    out.check(leftovers == 0, format!("{leftovers} half-written files left on the full disk"));
    out.check(
        answers.keys().all(|s| [200, 503, 507].contains(s)),
        format!("uploads on a full disk answered {answers:?}"),
    );
    out.check(health.is_ok(), "/healthz did not answer on a full disk");
    std::fs::remove_file(&filler).expect("free the space");
    let mut after = 0;
    for n in 20..23 {
        if let Ok((200, body)) = upload(&server.http, &server.base, pages.png(n), "after.png").await {
            acked.push(body);
            after += 1;
        }
    }
    out.check(after == 3, format!("{after} of 3 uploads accepted once space was freed"));
    let mut finished = 0;
    for job in &acked {
        let (status, _) =
            server.wait_for(job["ID"].as_str().unwrap_or(""), job["Timestamp"].as_str().unwrap_or(""), SETTLE).await;
        if status != 404 {
            finished += 1;
        }
    }
    out.check(finished == acked.len(), format!("{finished} of {} acknowledged jobs finished", acked.len()));
    let _ = server.terminate(Duration::from_secs(30));
    let check = rusqlite::Connection::open(data.join("storytime.sqlite"))
        .and_then(|c| c.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0)));
    out.check(check.as_deref() == Ok("ok"), format!("integrity check: {check:?}"));
    let mut answers: Vec<_> = answers.into_iter().collect();
    answers.sort();
    out.figure(format!(
        "10 uploads on a full 24 MB disk answered {answers:?}: {message}; {leftovers} half-written files"
    ));
    out.figure(format!(
        "after freeing space: 3 of 3 accepted; {finished} of {} acknowledged jobs finished; database integrity {}",
        acked.len(),
        check.unwrap_or_else(|e| e.to_string())
    ));
    drop(server);
    let _ = std::process::Command::new("umount").arg(&mount).status();
    out
}

/// Another process holds the database's write lock for a while.
async fn database_locked() -> Outcome {
    let mut out = Outcome::default();
    let server = Server::start(&[("STORYTIME_UPLOADS_PER_MINUTE", "0")]);
    let pages = Pages::default();
    let first = upload(&server.http, &server.base, pages.png(1), "first.png").await;
    out.check(matches!(first, Ok((200, _))), format!("first upload: {first:?}"));
    let db = server.data_dir.join("storytime.sqlite");
    let hold = Duration::from_secs(15);
    let holder = std::thread::spawn(move || {
        let c = rusqlite::Connection::open(db).expect("open the database");
        c.execute_batch("BEGIN EXCLUSIVE").expect("take the lock");
        std::thread::sleep(hold);
        c.execute_batch("COMMIT").expect("release the lock");
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let start = Instant::now();
    let mut answers: HashMap<u16, usize> = HashMap::new();
    let mut acked = Vec::new();
    let mut waits = Vec::new();
    for n in 10..16 {
        let t = Instant::now();
        match upload(&server.http, &server.base, pages.png(n), "locked.png").await {
            Ok((status, body)) => {
                *answers.entry(status).or_default() += 1;
                if status == 200 {
                    acked.push(body);
                }
            }
            Err(e) => out.check(false, format!("upload while locked: {e}")),
        }
        waits.push(t.elapsed().as_secs_f64());
    }
    let _ = holder.join();
    let locked_for = start.elapsed();
    if let Ok((200, body)) = &first {
        acked.push(body.clone());
    }
    for n in 20..22 {
        if let Ok((200, body)) = upload(&server.http, &server.base, pages.png(n), "after.png").await {
            acked.push(body);
        }
    }
    let mut finished = 0;
    for job in &acked {
        let (status, _) =
            server.wait_for(job["ID"].as_str().unwrap_or(""), job["Timestamp"].as_str().unwrap_or(""), SETTLE).await;
        if status == 200 {
            finished += 1;
        }
    }
    out.check(answers.keys().all(|s| [200, 503].contains(s)), format!("answers while locked: {answers:?}"));
    out.check(finished == acked.len(), format!("{finished} of {} acknowledged jobs read", acked.len()));
    let mut answers: Vec<_> = answers.into_iter().collect();
    answers.sort();
    out.figure(format!(
        "database locked {:.0} s by another process: 6 uploads in a row answered {answers:?}, \
         waiting {waits:.1?} s; all {} acknowledged jobs read afterwards",
        locked_for.as_secs_f64().min(hold.as_secs_f64()),
        acked.len()
    ));
    out
}

/// The queue journal's last segment gets garbage at its end while the
/// server is down.
async fn damaged_journal() -> Outcome {
    let mut out = Outcome::default();
    let mut server = Server::start(&[("STORYTIME_UPLOADS_PER_MINUTE", "0"), ("STORYTIME_READ_WORKERS", "0")]);
    let pages = Pages::default();
    let mut acked = Vec::new();
    for n in 0..5 {
        if let Ok((200, body)) = upload(&server.http, &server.base, pages.png(n), "queued.png").await {
            acked.push(body);
        }
    }
    server.kill();
    let journal = server.data_dir.join("storytime.sqlite-appends");
    let mut damaged = 0;
    for entry in std::fs::read_dir(&journal).into_iter().flatten().flatten() {
        let mut f = std::fs::OpenOptions::new().append(true).open(entry.path()).expect("open a segment");
        let mut noise = b"STJ1\xff\xff\x00\x00garbage".to_vec();
        noise.extend(std::iter::repeat_n(0x5a, 300));
        std::io::Write::write_all(&mut f, &noise).expect("damage it");
        damaged += 1;
    }
    out.check(damaged > 0, format!("no journal segment found in {}", journal.display()));
    server.restart(&[("STORYTIME_READ_WORKERS", "2")]);
    for n in 10..12 {
        if let Ok((200, body)) = upload(&server.http, &server.base, pages.png(n), "after.png").await {
            acked.push(body);
        }
    }
    let mut finished = 0;
    for job in &acked {
        let (status, _) =
            server.wait_for(job["ID"].as_str().unwrap_or(""), job["Timestamp"].as_str().unwrap_or(""), SETTLE).await;
        if status == 200 {
            finished += 1;
        }
    }
    out.check(finished == acked.len(), format!("{finished} of {} jobs read after the damage", acked.len()));
    out.figure(format!(
        "{damaged} journal segment(s) given a damaged tail while down: restarted, {finished} of {} acknowledged jobs read",
        acked.len()
    ));
    out
}

/// One fault's run, not started yet.
type Fault = std::pin::Pin<Box<dyn std::future::Future<Output = Outcome>>>;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let kills = args.first().and_then(|a| a.parse().ok()).unwrap_or(50);
    let mut broken = Vec::new();
    let faults: Vec<(&str, Fault)> = vec![
        ("kill -9 with traffic flowing", Box::pin(kill_nine(kills))),
        ("an engine that hangs", Box::pin(broken_engine("hang", "exec sleep 3600"))),
        ("an engine that crashes", Box::pin(broken_engine("crash", "kill -SEGV $$"))),
        ("Slack 429 and 5xx", Box::pin(slack_storms())),
        ("disk full", Box::pin(disk_full())),
        ("database locked by another process", Box::pin(database_locked())),
        ("damaged queue journal tail", Box::pin(damaged_journal())),
    ];
    let only = args.get(1).cloned().unwrap_or_default();
    for (name, fault) in faults.into_iter().filter(|(name, _)| name.contains(&only)) {
        println!("== {name}");
        let start = Instant::now();
        let outcome = fault.await;
        for f in &outcome.figures {
            println!("   {f}");
        }
        for b in &outcome.broken {
            println!("   BROKEN: {b}");
            broken.push(format!("{name}: {b}"));
        }
        println!("   ({:.0} s)", start.elapsed().as_secs_f64());
    }
    if broken.is_empty() {
        println!("every fault handled");
    } else {
        println!("{} promises broken", broken.len());
        std::process::exit(1);
    }
}
