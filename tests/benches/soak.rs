//! The soak run: `scripts/soak [MINUTES]` (30 by default).
//!
//! Runs the real `storytime serve` on loopback beside a stand-in for
//! Slack's servers and keeps a steady mix going for `MINUTES`: an upload a
//! second, two retrieves a second, a Slack photo event every two seconds.
//! Every 10 s it samples the server's resident memory and open file
//! descriptors. At the end it waits for all acknowledged work and prints:
//! memory after the first five minutes (or the first sixth of a shorter
//! run) and at the end, descriptors likewise, and whether every job is
//! accounted for (each upload finished, each event answered exactly once).
//! Exits non-zero if memory grew by more than 10%, descriptors grew, or
//! anything was lost or answered twice.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use storytime_tests::Server;
use storytime_tests::fake_slack::FakeSlack;
use storytime_tests::traffic::{Acked, Pages, answers, retrieve, send_photo, settle, upload};

/// Resident memory (KiB) and open descriptors of a process.
fn sample(pid: u32) -> (u64, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0);
    (rss, fds)
}

/// Runs `every` until `stop`, once per `period`, on its own schedule.
fn steady<F, Fut>(period: Duration, stop: Arc<AtomicBool>, mut every: F) -> tokio::task::JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            tokio::spawn(every());
        }
    })
}

#[tokio::main]
async fn main() {
    let minutes: f64 =
        std::env::args().skip(1).find(|a| !a.starts_with("--")).and_then(|a| a.parse().ok()).unwrap_or(30.0);
    let length = Duration::from_secs_f64(minutes * 60.0);
    let warm = (length / 6).min(Duration::from_secs(300));
    let fake = Arc::new(FakeSlack::start().await);
    let server = Server::start_with(&fake.env(), &[("STORYTIME_UPLOADS_PER_MINUTE", "0")]);
    let pid = server.pid();
    let (base, http) = (server.base.clone(), server.http.clone());
    let pages = Arc::new(Pages::default());
    let acked = Arc::new(Mutex::new(Acked::default()));
    let seq = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    println!("soak: {minutes} min against {base}: 1 upload/s, 2 retrieves/s, 1 Slack event per 2 s");

    let uploads = {
        let (base, http, pages, acked, seq, errors) =
            (base.clone(), http.clone(), pages.clone(), acked.clone(), seq.clone(), errors.clone());
        steady(Duration::from_secs(1), stop.clone(), move || {
            let (base, http, pages, acked, seq, errors) =
                (base.clone(), http.clone(), pages.clone(), acked.clone(), seq.clone(), errors.clone());
            async move {
                let n = seq.fetch_add(1, Ordering::Relaxed);
                match upload(&http, &base, pages.png(n), &format!("page-{n}.png")).await {
                    Ok((200, body)) => {
                        let id = body["ID"].as_str().unwrap_or_default().to_owned();
                        let ts = body["Timestamp"].as_str().unwrap_or_default().to_owned();
                        acked.lock().unwrap().uploads.push((id, ts));
                    }
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };
    let retrieves = {
        let (base, http, acked, errors) = (base.clone(), http.clone(), acked.clone(), errors.clone());
        steady(Duration::from_millis(500), stop.clone(), move || {
            let (base, http, acked, errors) = (base.clone(), http.clone(), acked.clone(), errors.clone());
            async move {
                let last = acked.lock().unwrap().uploads.last().cloned();
                if let Some((id, ts)) = last
                    && retrieve(&http, &base, &id, &ts).await.is_err()
                {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    let events = {
        let (base, http, pages, acked, seq, fake) =
            (base.clone(), http.clone(), pages.clone(), acked.clone(), seq.clone(), fake.clone());
        steady(Duration::from_secs(2), stop.clone(), move || {
            let (base, http, pages, acked, seq, fake) =
                (base.clone(), http.clone(), pages.clone(), acked.clone(), seq.clone(), fake.clone());
            async move {
                let n = seq.fetch_add(1, Ordering::Relaxed);
                send_photo(&fake, &http, &base, &pages, "C0SOAK", n, &acked).await;
            }
        })
    };

    let start = Instant::now();
    let first = sample(pid);
    let mut at_warm = None;
    let mut peak = 0;
    while start.elapsed() < length {
        tokio::time::sleep(Duration::from_secs(10).min(length.saturating_sub(start.elapsed()))).await;
        let (rss, fds) = sample(pid);
        peak = peak.max(rss);
        if at_warm.is_none() && start.elapsed() >= warm {
            at_warm = Some((rss, fds));
        }
        let minute = start.elapsed().as_secs() / 60;
        if start.elapsed().as_secs() % 60 < 10 {
            let done = acked.lock().unwrap().uploads.len();
            eprintln!("  {minute} min: {} MB resident, {fds} descriptors, {done} uploads acknowledged", rss / 1024);
        }
    }
    let end = sample(pid);
    stop.store(true, Ordering::Relaxed);
    for t in [uploads, retrieves, events] {
        let _ = t.await;
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    let settled = settle(&server, &fake, &acked).await;
    let outbox = server.outbox();
    let (mut once, mut twice, mut lost) = (0, 0, 0);
    for (c, t, n) in &acked.events {
        match answers(&fake, &outbox, c, t, n) {
            (0, 0) => lost += 1,
            (1, 0) | (0, 1) => once += 1,
            _ => twice += 1,
        }
    }
    let mut unfinished = 0;
    for (id, ts) in &acked.uploads {
        if !matches!(retrieve(&http, &base, id, ts).await, Ok(s) if s != 503 && s != 404) {
            unfinished += 1;
        }
    }
    let (warm_rss, warm_fds) = at_warm.unwrap_or(end);
    let growth = (end.0 as f64 - warm_rss as f64) / warm_rss.max(1) as f64 * 100.0;
    println!(
        "  resident memory: {} MB at start, {} MB after {:.0} min, {} MB at the end ({growth:+.1}%), peak {} MB",
        first.0 / 1024,
        warm_rss / 1024,
        warm.as_secs_f64() / 60.0,
        end.0 / 1024,
        peak / 1024
    );
    println!(
        "  open descriptors: {} at start, {warm_fds} after {:.0} min, {} at the end",
        first.1,
        warm.as_secs_f64() / 60.0,
        end.1
    );
    println!(
        "  uploads acknowledged: {} ({unfinished} not finished); Slack events acknowledged: {} ({once} answered once, {twice} twice, {lost} lost); requests refused or failed: {}",
        acked.uploads.len(),
        acked.events.len(),
        errors.load(Ordering::Relaxed)
    );
    let mut broken = Vec::new();
    if let Err(e) = settled {
        broken.push(e);
    }
    if growth > 10.0 {
        broken.push(format!("resident memory grew {growth:.1}% after the first {:.0} min", warm.as_secs_f64() / 60.0));
    }
    if end.1 > warm_fds + 4 {
        broken.push(format!("open descriptors grew from {warm_fds} to {}", end.1));
    }
    if unfinished + twice + lost > 0 {
        broken.push(format!("{unfinished} uploads unfinished, {twice} events answered twice, {lost} lost"));
    }
    if broken.is_empty() {
        println!("soak held");
    } else {
        for b in &broken {
            println!("  BROKEN: {b}");
        }
        std::process::exit(1);
    }
}
