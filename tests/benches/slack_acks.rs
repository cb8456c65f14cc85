//! `cargo bench -p storytime-tests --bench slack_acks` (or `scripts/bench-slack`,
//! which also installs the Bolt-JS app): floods `/slack/events` on loopback
//! with distinct, correctly signed file-share events and prints
//! acknowledgements per second and the 50th/99th percentile answer time,
//! for `storytime serve` and, measured the same way in the same run, a
//! no-op Bolt-JS app. The photos are served by a fake Slack, so Storytime's
//! pipeline really runs behind the acknowledgements. Right after the last
//! answer Storytime is killed (SIGKILL) and its database is opened to count
//! how many acknowledged events were recorded for processing. The stand-in
//! for Slack runs at background priority, like Storytime's workers: in
//! production Slack's servers do not share the machine. Storytime logs as
//! it does by default (an access log line per request, at info), to a file.
//!
//! The load generator is one thread (like `wrk -t1`), so that it takes as
//! little of the machine from the app under test as it can; it measures
//! both apps the same way.
//!
//! Storytime runs `BENCH_ROUNDS` (default 3) rounds of two floods, metrics
//! on and off, the order alternating from round to round; the figures
//! compared are the medians, and the worst 99th percentile.
//!
//! Settings (environment): `BENCH_EVENTS` (default 200000) events per app,
//! `BENCH_CONNECTIONS` (default 32) keep-alive connections, `BOLT_APP`
//! (default `tests/benches/bolt`) the folder of the Bolt-JS app, with its
//! `node_modules` installed.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;
use storytime_tests::fake_slack::{FakeSlack, SIGNING_SECRET, TEAM, photo_event};
use storytime_tests::slack_sign::{now, slack_signature};
use storytime_tests::{Page, Server, render_page};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Distinct channels the events are spread over.
const CHANNELS: usize = 64;

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The body of event `i`: its own event id, channel and message, one photo.
fn event_body(i: usize, files: &[Value]) -> String {
    let file = files[i % files.len()].clone();
    photo_event(&format!("EvB{i}"), &format!("CB{:03}", i % CHANNELS), &format!("1700000000.{i:06}"), vec![file])
}

/// The inbound key Storytime gives event `i` (see `photo_event`).
fn event_key(i: usize) -> String {
    format!("slack:{}:CB{:03}:1700000000.{i:06}", TEAM, i % CHANNELS)
}

/// What one flood measured.
struct Flood {
    elapsed: Duration,
    latencies: Vec<Duration>,
    /// Indexes of the events answered 200.
    acked: Vec<usize>,
    failed: usize,
}

impl Flood {
    fn rate(&self) -> f64 {
        self.acked.len() as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> Duration {
        let mut l = self.latencies.clone();
        l.sort_unstable();
        l.get(((l.len() as f64 * p).ceil() as usize).saturating_sub(1)).copied().unwrap_or_default()
    }

    fn print(&self, name: &str) {
        println!(
            "{name:<28} {:>9.0} acks/s   p50 {:>6.2} ms   p99 {:>6.2} ms   ({} acknowledged, {} not, in {:.2} s)",
            self.rate(),
            ms(self.percentile(0.50)),
            ms(self.percentile(0.99)),
            self.acked.len(),
            self.failed,
            self.elapsed.as_secs_f64()
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Events `first..first + count` as complete HTTP requests, signed now (a
/// signature stays valid for five minutes), so that the load generator
/// spends its time sending, not building.
fn requests(addr: SocketAddr, files: &[Value], first: usize, count: usize) -> Vec<(usize, Vec<u8>)> {
    let ts = now();
    (first..first + count)
        .map(|i| {
            let body = event_body(i, files);
            let mut request = format!(
                "POST /slack/events HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
                 X-Slack-Request-Timestamp: {ts}\r\nX-Slack-Signature: {}\r\nContent-Length: {}\r\n\r\n",
                slack_signature(SIGNING_SECRET, ts, &body),
                body.len()
            )
            .into_bytes();
            request.extend_from_slice(body.as_bytes());
            (i, request)
        })
        .collect()
}

/// Sends the requests over `connections` keep-alive connections, each one
/// request at a time.
async fn flood(addr: SocketAddr, requests: Vec<(usize, Vec<u8>)>, connections: usize) -> anyhow::Result<Flood> {
    let total = requests.len();
    let requests = Arc::new(requests);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (next, requests) = (next.clone(), requests.clone());
        tasks.push(tokio::spawn(async move { connection(addr, &next, &requests).await }));
    }
    let mut out = Flood { elapsed: Duration::ZERO, latencies: Vec::with_capacity(total), acked: Vec::new(), failed: 0 };
    for t in tasks {
        let (latencies, acked, failed) = t.await??;
        out.latencies.extend(latencies);
        out.acked.extend(acked);
        out.failed += failed;
    }
    out.elapsed = started.elapsed();
    Ok(out)
}

type ConnectionResult = (Vec<Duration>, Vec<usize>, usize);

async fn connection(
    addr: SocketAddr,
    next: &AtomicUsize,
    requests: &[(usize, Vec<u8>)],
) -> anyhow::Result<ConnectionResult> {
    let stream = TcpStream::connect(addr).await.with_context(|| format!("connect to {addr}"))?;
    stream.set_nodelay(true)?;
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let (mut latencies, mut acked, mut failed) = (Vec::new(), Vec::new(), 0);
    while let Some((i, request)) = requests.get(next.fetch_add(1, Ordering::Relaxed)) {
        let i = *i;
        let sent = Instant::now();
        write.write_all(request).await?;
        let status = read_response(&mut read).await?;
        latencies.push(sent.elapsed());
        if status == 200 {
            acked.push(i);
        } else {
            failed += 1;
        }
    }
    Ok((latencies, acked, failed))
}

/// Reads one HTTP/1.1 response (`Content-Length` or chunked body) and
/// returns its status.
async fn read_response<R: tokio::io::AsyncBufRead + Unpin>(read: &mut R) -> anyhow::Result<u16> {
    let mut line = String::new();
    if read.read_line(&mut line).await? == 0 {
        bail!("the server closed the connection");
    }
    let status: u16 = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).context("status line")?;
    let (mut length, mut chunked) = (0usize, false);
    loop {
        line.clear();
        read.read_line(&mut line).await?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':').unwrap_or((header, ""));
        if name.eq_ignore_ascii_case("content-length") {
            length = value.trim().parse().context("content-length")?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") && value.to_ascii_lowercase().contains("chunked") {
            chunked = true;
        }
    }
    if !chunked {
        let mut body = vec![0; length];
        read.read_exact(&mut body).await?;
        return Ok(status);
    }
    loop {
        line.clear();
        read.read_line(&mut line).await?;
        let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16).context("chunk size")?;
        let mut chunk = vec![0; size + 2];
        read.read_exact(&mut chunk).await?;
        if size == 0 {
            return Ok(status);
        }
    }
}

/// Counts the acknowledged events Storytime's database holds: still queued
/// for the inbound stage, already turned into a job, or dead-lettered.
/// The database is first opened as a restarted Storytime would, which
/// recovers what the killed process left in its queue journal.
fn recorded(data_dir: &Path, acked: &[usize]) -> anyhow::Result<usize> {
    let path = data_dir.join("storytime.sqlite");
    drop(storytime_pipeline::adapters::local::Database::open(&path)?);
    let db = rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    let mut keys = HashSet::new();
    for sql in
        ["SELECT body FROM queue WHERE stage = 'inbound'", "SELECT body FROM dead_letters WHERE stage = 'inbound'"]
    {
        let mut stmt = db.prepare(sql)?;
        let bodies = stmt.query_map([], |r| r.get::<_, String>(0))?;
        for body in bodies {
            let message: Value = serde_json::from_str(&body?)?;
            if let Some(k) = message["key"].as_str() {
                keys.insert(k.to_owned());
            }
        }
    }
    let mut stmt = db.prepare("SELECT request FROM request_claims")?;
    for k in stmt.query_map([], |r| r.get::<_, String>(0))? {
        keys.insert(k?);
    }
    Ok(acked.iter().filter(|i| keys.contains(&event_key(**i))).count())
}

/// The runtime of the Slack stand-in, at background priority.
struct StandIn(Option<tokio::runtime::Runtime>);

impl StandIn {
    fn handle(&self) -> &tokio::runtime::Handle {
        self.0.as_ref().expect("running").handle()
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        // A runtime cannot be dropped from async code; let its threads go.
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// The no-op Bolt-JS app, started on a free port.
struct Bolt(Child);

impl Bolt {
    fn start(dir: &Path, fake: &FakeSlack) -> anyhow::Result<(Self, SocketAddr)> {
        let mut child = Command::new("node")
            .arg(dir.join("app.js"))
            .envs(fake.env())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("start node")?;
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().context("stdout")?), &mut line)?;
        let port: u16 = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|p| p.parse().ok())
            .with_context(|| format!("unexpected first line from the Bolt app: {line:?}"))?;
        Ok((Self(child), SocketAddr::from(([127, 0, 0, 1], port))))
    }
}

impl Drop for Bolt {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn bolt_dir() -> PathBuf {
    std::env::var_os("BOLT_APP")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/bolt"))
}

/// Floods a `storytime serve` started with `env`, kills it right after
/// the last answer, and counts the acknowledged events it had recorded.
async fn storytime(
    env: &[(&str, &str)],
    files: &[Value],
    connections: usize,
    total: usize,
    name: &str,
) -> anyhow::Result<Flood> {
    let mut server = Server::start_for_bench(env);
    let addr: SocketAddr = server.base.trim_start_matches("http://").parse()?;
    // Warm up connections and code paths; these events count as recorded too.
    let warm = flood(addr, requests(addr, files, 0, WARM), connections).await?;
    let ours = flood(addr, requests(addr, files, WARM, total), connections).await?;
    server.kill();
    ours.print(name);
    let saved = recorded(&server.data_dir, &ours.acked)?;
    println!(
        "{:<28} {saved} of {} acknowledged events recorded for processing after SIGKILL right after the last answer{}",
        "",
        ours.acked.len(),
        if saved == ours.acked.len() { "" } else { "  <-- LOST EVENTS" }
    );
    let warm_saved = recorded(&server.data_dir, &warm.acked)?;
    if warm_saved != warm.acked.len() {
        println!("{:<28} warm-up: only {warm_saved} of {} recorded  <-- LOST EVENTS", "", warm.acked.len());
    }
    Ok(ours)
}

/// Events sent before measuring, to warm up connections and code paths.
const WARM: usize = 1000;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let total = setting("BENCH_EVENTS", 200_000);
    let connections = setting("BENCH_CONNECTIONS", 32);
    println!("{total} distinct signed file-share events per app over {connections} keep-alive connections\n");

    // Slack's servers do not share the machine in production: the stand-in
    // answers the pipeline's calls with the CPU the apps under test leave
    // idle, as Storytime's own workers do.
    let stand_in = StandIn(Some(storytime_pipeline::runtime::priority::background_runtime()?));
    let fake = stand_in.handle().spawn(FakeSlack::start()).await?;
    let pages = [
        "The little fox found a red ball in the snow.",
        "Grandma baked a pie and the whole street came to taste it.",
        "The moon sang a quiet song to the sleepy sea.",
        "Tom and his dog walked to the library on Monday.",
    ];
    let files: Vec<Value> = pages
        .iter()
        .enumerate()
        .map(|(n, text)| {
            fake.add_file(&format!("FB{n}"), &format!("page{n}.png"), "image/png", render_page(&Page::new(&[text])))
        })
        .collect();

    let env = fake.env();
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    // Logging as an operator runs it (Storytime's default filter: an access
    // log line per request, written to a file), not the tests' quiet one.
    env.push(("RUST_LOG", ""));
    // More settings for the server, e.g. `STORYTIME_INBOUND_WORKERS=2`.
    let extra = std::env::var("BENCH_SERVER_ENV").unwrap_or_default();
    env.extend(extra.split_whitespace().filter_map(|kv| kv.split_once('=')));
    // Storytime with metrics on (the default) and off, in alternating
    // rounds (on first, then off first) so that neither gets the quieter
    // moments of the machine: recording them must not cost the
    // acknowledgements more than a few percent.
    let mut off = env.clone();
    off.push(("STORYTIME_METRICS", "off"));
    let rounds = setting("BENCH_ROUNDS", 3).max(1);
    let (mut on_floods, mut off_floods) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        for metrics in if round % 2 == 0 { [true, false] } else { [false, true] } {
            let (settings, name, floods) = match metrics {
                true => (&env, "storytime serve", &mut on_floods),
                false => (&off, "storytime serve, metrics off", &mut off_floods),
            };
            floods.push(storytime(settings, &files, connections, total, name).await?);
        }
    }
    let median = |floods: &[Flood], f: &dyn Fn(&Flood) -> f64| {
        let mut v: Vec<f64> = floods.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let rate = |f: &Flood| f.rate();
    let p99 = |f: &Flood| f.percentile(0.99).as_secs_f64() * 1000.0;
    let worst = |floods: &[Flood]| floods.iter().map(p99).fold(0.0, f64::max);
    println!(
        "\n{rounds} rounds: metrics on {:.0} acks/s (median), p99 median {:.2} ms, worst {:.2} ms; \
         metrics off {:.0} acks/s, p99 median {:.2} ms, worst {:.2} ms",
        median(&on_floods, &rate),
        median(&on_floods, &p99),
        worst(&on_floods),
        median(&off_floods, &rate),
        median(&off_floods, &p99),
        worst(&off_floods),
    );
    println!(
        "metrics on / off: {:.3}x the acknowledgements per second (medians)\n",
        median(&on_floods, &rate) / median(&off_floods, &rate)
    );
    let ours = median(&on_floods, &rate);

    let dir = bolt_dir();
    if !dir.join("node_modules/@slack/bolt").exists() {
        println!(
            "\nBolt-JS: not measured; install it with `npm ci --prefix {}` (scripts/bench-slack does)",
            dir.display()
        );
        return Ok(());
    }
    let (bolt, bolt_addr) = Bolt::start(&dir, &fake)?;
    flood(bolt_addr, requests(bolt_addr, &files, 0, WARM), connections).await?;
    let theirs = flood(bolt_addr, requests(bolt_addr, &files, WARM, total), connections).await?;
    drop(bolt);
    theirs.print("Bolt-JS (no-op handler)");
    println!("\nstorytime (median) / Bolt-JS: {:.2}x the acknowledgements per second", ours / theirs.rate());
    Ok(())
}
