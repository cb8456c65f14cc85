//! AWS adapters benchmark against moto on loopback (`scripts/bench-aws`).
//!
//! Every AWS call goes through a counting proxy in front of moto, so the
//! figures show how many requests the adapters make, not only how fast:
//!
//! 1. the SQS queue alone: messages per second sent in batches, received
//!    ten at a time by concurrent consumers and acknowledged (deletes
//!    coalesced), with the SQS requests per message;
//! 2. the whole pipeline (`storytime serve` with `STORYTIME_BACKEND=aws`,
//!    Tesseract and espeak-ng as engines): pages per minute, stage messages
//!    per second through SQS, and AWS requests per page by service and call;
//! 3. an idle server: requests per minute (long polling, no busy loop).
//!
//! `STORYTIME_BENCH_MESSAGES` (default 300; moto slows down with thousands) and `STORYTIME_BENCH_PAGES`
//! (default 12) size the runs.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use storytime_pipeline::adapters::aws::SqsQueue;
use storytime_pipeline::ports::Queue;
use storytime_pipeline::{JobId, Stage, StageMessage};
use storytime_tests::aws_proxy::RecordingProxy;
use storytime_tests::moto::Moto;
use storytime_tests::{Page, Server, render_page, storytime_bin};

fn total(counts: &BTreeMap<String, u64>, prefix: &str) -> u64 {
    counts.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(_, v)| v).sum()
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    rt.block_on(run());
}

async fn run() {
    let messages = env_number("STORYTIME_BENCH_MESSAGES", 300);
    let pages = env_number("STORYTIME_BENCH_PAGES", 12);
    let moto = Moto::start();
    let recorder = RecordingProxy::start(&moto.url).await;
    let proxy = recorder.url.clone();
    println!("Storytime AWS adapters benchmark against moto (through a counting proxy)");

    // 1. The queue alone.
    let sdk = storytime_tests::moto::sdk_config(&proxy).await;
    let queue = Arc::new(SqsQueue::new(&sdk, "bench-"));
    queue.ensure_queues(5, Duration::from_secs(60)).await.unwrap();
    recorder.take_counts();
    let start = Instant::now();
    let batch: Vec<StageMessage> = (0..messages).map(|page| StageMessage::read(JobId::new(), page)).collect();
    for chunk in batch.chunks(100) {
        queue.send_many(chunk).await.unwrap();
    }
    let consumers: Vec<_> = (0..4)
        .map(|_| {
            let queue = queue.clone();
            tokio::spawn(async move {
                let mut handled = 0;
                loop {
                    let got = queue.receive(Stage::Read, 10, Duration::from_secs(1), Duration::from_secs(60)).await;
                    let got = got.unwrap();
                    if got.is_empty() {
                        return handled;
                    }
                    handled += got.len();
                    let acks = got.iter().map(|m| queue.ack(m));
                    for r in futures::future::join_all(acks).await {
                        r.unwrap();
                    }
                }
            })
        })
        .collect();
    let mut handled = 0;
    for c in consumers {
        handled += c.await.unwrap();
    }
    // Each consumer's last, empty receive waited its 1 s out.
    let elapsed = start.elapsed().saturating_sub(Duration::from_secs(1));
    let calls = recorder.take_counts();
    println!();
    println!("SQS queue alone: {handled} of {messages} messages sent, received and acknowledged");
    println!(
        "  {:.0} messages/s; {:.3} SQS requests per message ({} sends, {} receives, {} deletes)",
        handled as f64 / elapsed.as_secs_f64(),
        total(&calls, "sqs") as f64 / handled as f64,
        calls.get("sqs:SendMessageBatch").unwrap_or(&0),
        calls.get("sqs:ReceiveMessage").unwrap_or(&0),
        calls.get("sqs:DeleteMessageBatch").unwrap_or(&0) + calls.get("sqs:DeleteMessage").unwrap_or(&0),
    );

    // 2. The whole pipeline.
    let env = [
        ("STORYTIME_BACKEND", "aws"),
        ("STORYTIME_READER", "tesseract"),
        ("STORYTIME_NARRATOR", "espeak"),
        ("AWS_ENDPOINT_URL", proxy.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    let cwd = tempfile::tempdir().expect("a working directory");
    let mut init = Command::new(storytime_bin());
    init.arg("init").current_dir(cwd.path()).envs(env);
    let out = init.output().expect("storytime init");
    assert!(out.status.success(), "init: {}", String::from_utf8_lossy(&out.stderr));
    let server = Server::start_for_bench(&env);
    server.settled(Duration::from_secs(60)).await;
    recorder.take_counts();
    let start = Instant::now();
    let mut jobs = Vec::new();
    for i in 0..pages {
        let page = Page::new(&[&format!("Page {i}: the little fox found a red kite in the tall grass.")]);
        let r = server.upload(render_page(&page), &format!("p{i}.png"), &[("X-Notification-Required", "false")]).await;
        let body: serde_json::Value = r.json().await.unwrap();
        jobs.push((body["ID"].as_str().unwrap().to_owned(), body["Timestamp"].as_str().unwrap().to_owned()));
    }
    // Poll /retrieve until every job is done, counting the polls: their
    // own AWS requests are taken out of the pipeline's figures below.
    let mut polls = 0u64;
    let mut waiting = jobs.clone();
    while !waiting.is_empty() {
        let mut still = Vec::new();
        for (id, ts) in waiting {
            polls += 1;
            let r = server.retrieve(&id, &ts).await;
            match r.status().as_u16() {
                503 => still.push((id, ts)),
                200 => {}
                other => panic!("job {id}: {other} {}", r.text().await.unwrap_or_default()),
            }
        }
        waiting = still;
        assert!(start.elapsed() < Duration::from_secs(300), "pages still in progress after 5 minutes");
        if !waiting.is_empty() {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    let elapsed = start.elapsed();
    let mut calls = recorder.take_counts();
    // What one /retrieve costs, measured on a finished job.
    let (id, ts) = &jobs[0];
    server.retrieve(id, ts).await;
    for (call, n) in recorder.take_counts() {
        if let Some(c) = calls.get_mut(&call) {
            *c = c.saturating_sub(n * polls);
        }
    }

    // Each page passes read and narrate (one page per book here).
    let stage_messages = pages * 2;
    println!();
    println!("whole pipeline, {pages} one-page books (Tesseract and espeak-ng as engines):");
    println!(
        "  {:.1} pages/min; {:.1} stage messages/s through SQS",
        pages as f64 / elapsed.as_secs_f64() * 60.0,
        stage_messages as f64 / elapsed.as_secs_f64()
    );
    println!("  (the benchmark's {polls} /retrieve polls are left out)");
    let per_page = |prefix: &str| total(&calls, prefix) as f64 / pages as f64;
    println!(
        "  AWS requests per page: {:.1} (S3 {:.1}, SQS {:.1}, DynamoDB {:.1}, SNS {:.1})",
        per_page(""),
        per_page("s3"),
        per_page("sqs"),
        per_page("dynamodb"),
        per_page("sns")
    );
    for (call, n) in &calls {
        println!("    {call:<36} {:>6.2} per page", *n as f64 / pages as f64);
    }

    // 3. Idle.
    server.settled(Duration::from_secs(60)).await;
    recorder.take_counts();
    let idle = Duration::from_secs(env_number("STORYTIME_BENCH_IDLE_SECONDS", 25) as u64);
    tokio::time::sleep(idle).await;
    let calls = recorder.take_counts();
    println!();
    println!(
        "idle server: {:.0} AWS requests per minute ({} in {:?}: {:?})",
        total(&calls, "") as f64 / idle.as_secs_f64() * 60.0,
        total(&calls, ""),
        idle,
        calls
    );
}
