//! Load at a steady rate, like the original service's load script:
//! `scripts/load RATE SECONDS [PHOTO...]`.
//!
//! Sends `RATE` uploads a second for `SECONDS` seconds, open loop (each
//! upload leaves on its schedule whether or not earlier ones were
//! answered, so a slow server shows as latency, not as a lower rate), at
//! most `RATE × SECONDS` uploads. Every upload asks for fresh work (the
//! duplication check off) and no email. Then it waits for the jobs, and
//! prints the answers by status, the upload latency percentiles, the pages
//! finished per minute, and the end-to-end percentiles read back from the
//! server's own `storytime_job_duration_seconds` histogram.
//!
//! Target: `STORYTIME_BENCH_URL` (with `STORYTIME_BENCH_API_KEY` when the
//! API wants one; a server of your own counts the load as one sender, so
//! start it with `STORYTIME_UPLOADS_PER_MINUTE=0`), or else a
//! `storytime serve` this starts on loopback, without that limit.
//! Photos: the files given, or the pages the project renders itself.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use storytime_tests::stats::{buckets, percentile, quantile_between};
use storytime_tests::{Server, render_page, sample_book};

/// How long to wait for the last jobs once the uploads are sent.
const DRAIN: Duration = Duration::from_secs(600);

struct Target {
    base: String,
    key: Option<String>,
    http: reqwest::Client,
    _server: Option<Server>,
}

impl Target {
    fn request(&self, r: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.key {
            Some(k) => r.bearer_auth(k),
            None => r,
        }
    }

    async fn metrics(&self) -> String {
        let r = self.request(self.http.get(format!("{}/metrics", self.base))).send().await;
        match r {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }
}

fn usage() -> ! {
    eprintln!("usage: scripts/load RATE SECONDS [PHOTO...]   (RATE uploads per second, for SECONDS seconds)");
    std::process::exit(2)
}

#[tokio::main]
async fn main() {
    // `cargo bench` adds `--bench`; the rest are ours.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let (Some(rate), Some(seconds)) = (args.first(), args.get(1)) else { usage() };
    let (Ok(rate), Ok(seconds)) = (rate.parse::<f64>(), seconds.parse::<f64>()) else { usage() };
    if !(rate > 0.0 && seconds > 0.0) {
        usage();
    }
    let photos: Vec<(String, Vec<u8>)> = if args.len() > 2 {
        args[2..].iter().map(|p| (p.clone(), std::fs::read(p).unwrap_or_else(|e| panic!("{p}: {e}")))).collect()
    } else {
        sample_book().iter().enumerate().map(|(i, page)| (format!("page-{}.png", i + 1), render_page(page))).collect()
    };
    let target = Arc::new(match std::env::var("STORYTIME_BENCH_URL") {
        Ok(base) => Target {
            base: base.trim_end_matches('/').to_owned(),
            key: std::env::var("STORYTIME_BENCH_API_KEY").ok(),
            http: reqwest::Client::new(),
            _server: None,
        },
        Err(_) => {
            let server = Server::start_for_bench(&[]);
            Target { base: server.base.clone(), key: None, http: reqwest::Client::new(), _server: Some(server) }
        }
    });
    let total = (rate * seconds).floor() as usize;
    println!("load: {rate} uploads/s for {seconds} s ({total} uploads) to {}, {} photos", target.base, photos.len());
    let histogram = |m: &str| buckets(m, "storytime_job_duration_seconds", "outcome=\"done\"");
    let before = histogram(&target.metrics().await);

    // Open loop: each upload leaves at its own time.
    let start = Instant::now();
    let mut uploads = Vec::with_capacity(total);
    for i in 0..total {
        let at = start + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(at.into()).await;
        let (name, bytes) = photos[i % photos.len()].clone();
        let target = target.clone();
        uploads.push(tokio::spawn(async move {
            let t = Instant::now();
            let r = target
                .request(target.http.post(format!("{}/upload", target.base)))
                .header("Content-Type", if name.ends_with(".png") { "image/png" } else { "image/jpeg" })
                .header("Content-Disposition", format!("attachment; filename=\"{name}\""))
                .header("X-Duplication-Check-Required", "false")
                .header("X-Notification-Required", "false")
                .body(bytes)
                .send()
                .await;
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            match r {
                Ok(r) => {
                    let status = r.status().as_u16().to_string();
                    let body: Value = r.json().await.unwrap_or_default();
                    let job =
                        body["ID"].as_str().zip(body["Timestamp"].as_str()).map(|(i, t)| (i.to_owned(), t.to_owned()));
                    (status, ms, job)
                }
                Err(e) => (format!("error ({})", e.without_url()), ms, None),
            }
        }));
    }
    let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
    let mut latency = Vec::new();
    let mut jobs = Vec::new();
    for u in uploads {
        let (status, ms, job) = u.await.expect("an upload task");
        *by_status.entry(status).or_default() += 1;
        latency.push(ms);
        jobs.extend(job);
    }
    let sent = start.elapsed();

    // Wait for every accepted job to finish.
    let mut finished = 0;
    let mut last_finish = start.elapsed();
    for (id, ts) in &jobs {
        loop {
            let r = target
                .request(target.http.get(format!("{}/retrieve", target.base)))
                .header("ETag", id)
                .header("Timestamp", ts)
                .send()
                .await;
            match r.map(|r| r.status().as_u16()) {
                Ok(503) if start.elapsed() < sent + DRAIN => tokio::time::sleep(Duration::from_millis(200)).await,
                Ok(200) => {
                    finished += 1;
                    last_finish = start.elapsed();
                    break;
                }
                _ => break,
            }
        }
    }
    let after = histogram(&target.metrics().await);

    println!();
    let statuses: Vec<String> = by_status.iter().map(|(s, n)| format!("{s}: {n}")).collect();
    println!("answers by status: {}", statuses.join(", "));
    println!(
        "upload latency: p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&latency, 50.0),
        percentile(&latency, 95.0),
        percentile(&latency, 99.0),
        percentile(&latency, 100.0)
    );
    // The last upload leaves one interval before the end of the period.
    let achieved = total as f64 / (sent.as_secs_f64() + 1.0 / rate);
    println!(
        "sent {total} uploads ({achieved:.2}/s); {finished} of {} accepted pages finished within {:.0} s of the first",
        jobs.len(),
        last_finish.as_secs_f64()
    );
    println!("pages finished per minute: {:.1}", finished as f64 / last_finish.as_secs_f64() * 60.0);
    match [0.5, 0.95, 0.99].map(|q| quantile_between(&before, &after, q)) {
        [Some(p50), Some(p95), Some(p99)] => {
            println!("upload to delivered (server's histogram): p50 {p50:.2} s, p95 {p95:.2} s, p99 {p99:.2} s")
        }
        _ => println!("upload to delivered: the server's /metrics has no storytime_job_duration_seconds to read"),
    }
}
