//! Traffic for the fault and soak runs: distinct pages, uploads and Slack
//! photo events that report errors instead of panicking (the server may be
//! down on purpose), a record of what was acknowledged, and the wait until
//! all of it has been answered.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::fake_slack::{FakeSlack, SIGNING_SECRET, photo_event};
use crate::slack_sign::{now, slack_signature};
use crate::{Page, Server, render_page};

/// How long the acknowledged work may take to finish once traffic stops.
pub const SETTLE: Duration = Duration::from_secs(900);

/// Page images that differ in their pixels, so no two uploads share work.
pub struct Pages {
    base: image::GrayImage,
}

impl Default for Pages {
    fn default() -> Self {
        let page = Page::new(&["The little fox ran home.", "It was time for tea."]);
        let base = image::load_from_memory(&render_page(&page)).expect("a rendered page decodes").to_luma8();
        Self { base }
    }
}

impl Pages {
    /// Page `n`: the same text, with a few pixels in a corner set from `n`.
    pub fn png(&self, n: u64) -> Vec<u8> {
        let mut img = self.base.clone();
        for bit in 0..32 {
            let dark = (n >> bit) & 1 == 1;
            img.put_pixel(bit, 0, image::Luma([if dark { 0 } else { 255 }]));
        }
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).expect("PNG encodes");
        out.into_inner()
    }
}

/// What the server acknowledged.
#[derive(Default)]
pub struct Acked {
    /// `(ID, Timestamp)` of each upload answered 200.
    pub uploads: Vec<(String, String)>,
    /// `(channel, thread, file name)` of each Slack event answered 200.
    pub events: Vec<(String, String, String)>,
    /// Events sent, acknowledged or not: `(channel, thread)`.
    pub sent_events: Vec<(String, String)>,
}

/// `POST /upload` of one PNG: the status and JSON body, or the error.
pub async fn upload(http: &reqwest::Client, base: &str, png: Vec<u8>, name: &str) -> Result<(u16, Value), String> {
    let r = http
        .post(format!("{base}/upload"))
        .header("Content-Type", "image/png")
        .header("Content-Disposition", format!("form-data; name=\"page\"; filename=\"{name}\""))
        .timeout(Duration::from_secs(30))
        .body(png)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = r.status().as_u16();
    let body = r.json().await.map_err(|e| e.to_string())?;
    Ok((status, body))
}

/// `GET /retrieve` for a job: the status, or the error.
pub async fn retrieve(http: &reqwest::Client, base: &str, id: &str, timestamp: &str) -> Result<u16, String> {
    let r = http
        .get(format!("{base}/retrieve"))
        .header("ETag", id)
        .header("Timestamp", timestamp)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    Ok(r.status().as_u16())
}

/// A signed Slack event to `/slack/events`: the status, or the error.
pub async fn slack_event(http: &reqwest::Client, base: &str, body: &str) -> Result<u16, String> {
    let ts = now();
    let r = http
        .post(format!("{base}/slack/events"))
        .header("Content-Type", "application/json")
        .header("X-Slack-Request-Timestamp", ts.to_string())
        .header("X-Slack-Signature", slack_signature(SIGNING_SECRET, ts, body))
        .timeout(Duration::from_secs(30))
        .body(body.to_owned())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    Ok(r.status().as_u16())
}

/// Sends one Slack photo event for page `n` into its own thread; returns
/// whether it was acknowledged.
pub async fn send_photo(
    fake: &FakeSlack,
    http: &reqwest::Client,
    base: &str,
    pages: &Pages,
    channel: &str,
    n: u64,
    acked: &Mutex<Acked>,
) -> bool {
    let name = format!("page-{n}.png");
    let file = fake.add_file(&format!("F0N{n}"), &name, "image/png", pages.png(n));
    let thread = format!("1700200000.{n:06}");
    let body = photo_event(&format!("EvN{n}"), channel, &thread, vec![file]);
    acked.lock().unwrap().sent_events.push((channel.to_owned(), thread.clone()));
    let ok = slack_event(http, base, &body).await == Ok(200);
    if ok {
        acked.lock().unwrap().events.push((channel.to_owned(), thread, name));
    }
    ok
}

/// The answers to an event, as the stand-in saw them: `(messages in its
/// thread, emails naming its file)`.
pub fn answers(fake: &FakeSlack, outbox: &[String], channel: &str, thread: &str, name: &str) -> (usize, usize) {
    let emails =
        outbox.iter().filter(|m| m.contains(&format!(": {name}\r\n")) || m.contains(&format!(": {name}\n"))).count();
    (fake.deliveries(channel, thread).len(), emails)
}

/// Waits until every acknowledged upload has finished and every
/// acknowledged event has an answer, then until the queues are empty.
pub async fn settle(server: &Server, fake: &FakeSlack, acked: &Acked) -> Result<Duration, String> {
    let start = Instant::now();
    let mut open_uploads: Vec<&(String, String)> = acked.uploads.iter().collect();
    loop {
        let mut still = Vec::new();
        for job in open_uploads {
            let answer = retrieve(&server.http, &server.base, &job.0, &job.1).await;
            if !matches!(answer, Ok(status) if status != 503) {
                still.push(job);
            }
        }
        open_uploads = still;
        let outbox = server.outbox();
        let unanswered = acked.events.iter().filter(|(c, t, n)| answers(fake, &outbox, c, t, n) == (0, 0)).count();
        if open_uploads.is_empty() && unanswered == 0 {
            break;
        }
        if start.elapsed() > SETTLE {
            return Err(format!(
                "after {SETTLE:?}: {} uploads unfinished, {unanswered} events unanswered",
                open_uploads.len()
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    server.settled(SETTLE).await;
    Ok(start.elapsed())
}
