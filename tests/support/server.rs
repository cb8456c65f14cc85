//! Running `storytime serve` for a test.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::slack_sign::{now, slack_signature};

/// How long any end-to-end wait may take before the test fails.
pub const LIMIT: Duration = Duration::from_secs(120);

/// The `storytime` binary built beside the test executable (or named by
/// `STORYTIME_BIN`).
pub fn storytime_bin() -> PathBuf {
    if let Ok(p) = std::env::var("STORYTIME_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(Path::parent).expect("target directory");
    let bin = dir.join("storytime");
    assert!(
        bin.exists(),
        "{} is missing: build it first with `cargo build -p storytime-bot` (the README's test command does)",
        bin.display()
    );
    bin
}

/// Runs a `storytime` command other than `serve` to its end.
pub fn run_storytime(args: &[&str], env: &[(&str, &str)]) -> Output {
    // In a directory of its own: whatever the command keeps in its default
    // data directory (`.storytime` under the working directory) goes with it.
    let cwd = tempfile::tempdir().expect("a working directory");
    let mut cmd = Command::new(storytime_bin());
    cmd.args(args).current_dir(cwd.path()).env("RUST_LOG", "warn").env_remove("AWS_PROFILE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run storytime")
}

/// The variables that narrate with Piper as `scripts/test` installs it
/// (in the checkout's `.venv-piper`).
pub fn piper_env() -> [(&'static str, String); 2] {
    let program = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv-piper/bin/piper");
    assert!(program.exists(), "{} is missing: scripts/test installs Piper", program.display());
    [("STORYTIME_NARRATOR", "piper".into()), ("STORYTIME_PIPER", program.display().to_string())]
}

/// A running `storytime serve` with its own data directory.
pub struct Server {
    pub base: String,
    pub data_dir: PathBuf,
    env: Vec<(String, String)>,
    child: Option<Child>,
    _dir: Option<tempfile::TempDir>,
    pub http: reqwest::Client,
}

impl Server {
    /// Starts a server with a fresh data directory and `env` on top of the
    /// defaults.
    pub fn start(env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = dir.path().to_owned();
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut s =
            Self { base: String::new(), data_dir, env, child: None, _dir: Some(dir), http: reqwest::Client::new() };
        s.spawn();
        s
    }

    /// Starts a server on a data directory the caller owns (e.g. a small
    /// disk), with `env` on top of the defaults.
    pub fn start_in(data_dir: PathBuf, env: &[(&str, &str)]) -> Self {
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut s = Self { base: String::new(), data_dir, env, child: None, _dir: None, http: reqwest::Client::new() };
        s.spawn();
        s
    }

    /// Starts a server for a benchmark: as [`start`](Self::start), without
    /// the per-sender upload limit (a benchmark is one sender sending a lot).
    pub fn start_for_bench(env: &[(&str, &str)]) -> Self {
        let mut all = vec![("STORYTIME_UPLOADS_PER_MINUTE", "0")];
        all.extend_from_slice(env);
        Self::start(&all)
    }

    /// Starts a server with `base` (e.g. a fake Slack's or moto's
    /// variables) and `extra` on top of the defaults.
    pub fn start_with(base: &[(impl AsRef<str>, impl AsRef<str>)], extra: &[(&str, &str)]) -> Self {
        let mut all: Vec<(&str, &str)> = base.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).collect();
        all.extend_from_slice(extra);
        Self::start(&all)
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new(storytime_bin());
        cmd.arg("serve")
            .env("STORYTIME_DATA_DIR", &self.data_dir)
            .env("STORYTIME_LISTEN", "127.0.0.1:0")
            .env_remove("STORYTIME_PUBLIC_URL")
            // espeak-ng is quick; the tests of Piper ask for it (`PIPER`).
            .env("STORYTIME_NARRATOR", "espeak")
            .env("RUST_LOG", std::env::var("TEST_LOG").unwrap_or_else(|_| "warn".into()))
            .stdout(Stdio::piped())
            .stderr(match std::env::var("TEST_LOG") {
                Ok(_) => Stdio::inherit(),
                // Kept for tests that read the log (and for a look after a failure).
                Err(_) => std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.log_path())
                    .map(Stdio::from)
                    .unwrap_or_else(|_| Stdio::null()),
            });
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start storytime serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = lines.next().expect("storytime serve printed nothing").expect("readable stdout");
        let base = line
            .strip_prefix("Storytime listening on ")
            .unwrap_or_else(|| panic!("unexpected first line from storytime serve: {line}"))
            .to_owned();
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        self.base = base;
        self.child = Some(child);
    }

    /// Where the server's log (stderr) goes, unless `TEST_LOG` is set.
    pub fn log_path(&self) -> PathBuf {
        self.data_dir.join("server.log")
    }

    /// The complete lines the server has logged so far (its log writer
    /// may be in the middle of the last one).
    pub fn log_lines(&self) -> Vec<String> {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let complete = log.rfind('\n').map_or("", |end| &log[..end]);
        complete.lines().map(str::to_owned).collect()
    }

    /// Asks the server to stop (SIGTERM), as an operator or a container
    /// platform would, and returns how it ended. Panics if it is still
    /// running after `limit`.
    pub fn terminate(&mut self, limit: Duration) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("the server runs");
        let sent = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("wait for the server") {
                return status;
            }
            if start.elapsed() > limit {
                let _ = child.kill();
                panic!("the server did not stop within {limit:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the process the hard way (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same data directory, with `env`
    /// replacing the variables given at start.
    pub fn restart(&mut self, env: &[(&str, &str)]) {
        self.kill();
        for (k, v) in env {
            self.env.retain(|(key, _)| key != k);
            self.env.push((k.to_string(), v.to_string()));
        }
        self.spawn();
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// `POST /upload` with the original API's headers.
    pub async fn upload(&self, bytes: Vec<u8>, filename: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut req = self
            .http
            .post(self.url("/upload"))
            .header("Content-Type", "image/png")
            .header("Content-Disposition", format!("form-data; name=\"page\"; filename=\"{filename}\""))
            .body(bytes);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.expect("upload request")
    }

    /// `POST /upload` that must succeed: checks the answer names the job
    /// in its headers and body alike, and returns the body.
    pub async fn upload_ok(&self, bytes: Vec<u8>, filename: &str, headers: &[(&str, &str)]) -> Value {
        let r = self.upload(bytes, filename, headers).await;
        assert_eq!(r.status(), 200);
        let etag = r.headers()["etag"].to_str().expect("ETag").to_owned();
        let ts = r.headers()["timestamp"].to_str().expect("Timestamp").to_owned();
        let body: Value = r.json().await.expect("JSON body");
        assert_eq!(body["ID"], etag.as_str());
        assert_eq!(body["Timestamp"], ts.as_str());
        body
    }

    /// Polls `/retrieve` for the job an upload answered with, until it is
    /// no longer in progress.
    pub async fn wait_for_job(&self, upload: &Value) -> (u16, Value) {
        let (id, ts) = (upload["ID"].as_str().expect("ID"), upload["Timestamp"].as_str().expect("Timestamp"));
        self.wait_for(id, ts, LIMIT).await
    }

    /// A request signed as Slack signs them, to one of `/slack/*`.
    pub async fn post_signed(
        &self,
        path: &str,
        body: &str,
        content_type: &str,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let ts = now();
        let mut req = self
            .http
            .post(self.url(path))
            .header("Content-Type", content_type)
            .header("X-Slack-Request-Timestamp", ts.to_string())
            .header("X-Slack-Signature", slack_signature(crate::fake_slack::SIGNING_SECRET, ts, body))
            .body(body.to_owned());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.expect("request")
    }

    /// `GET /retrieve` for a job.
    pub async fn retrieve(&self, id: &str, timestamp: &str) -> reqwest::Response {
        self.http
            .get(self.url("/retrieve"))
            .header("ETag", id)
            .header("Timestamp", timestamp)
            .send()
            .await
            .expect("retrieve request")
    }

    /// Polls `/retrieve` until it stops answering 503, and returns the
    /// final status and body. Panics after `limit`.
    pub async fn wait_for(&self, id: &str, timestamp: &str, limit: Duration) -> (u16, Value) {
        let start = Instant::now();
        loop {
            let r = self.retrieve(id, timestamp).await;
            let status = r.status().as_u16();
            let body: Value = r.json().await.expect("JSON body");
            if status != 503 {
                return (status, body);
            }
            assert!(start.elapsed() < limit, "job {id} still in progress after {limit:?}: {body}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `GET /metrics`, the Prometheus text.
    pub async fn metrics(&self) -> String {
        self.http.get(self.url("/metrics")).send().await.expect("metrics").text().await.expect("text")
    }

    /// `GET /healthz` as JSON.
    pub async fn health(&self) -> Value {
        self.http.get(self.url("/healthz")).send().await.expect("healthz").json().await.expect("JSON")
    }

    /// Polls `/healthz` until `ready` holds for it. Panics after `limit`.
    pub async fn wait_until(&self, limit: Duration, ready: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let h = self.health().await;
            if ready(&h) {
                return h;
            }
            assert!(start.elapsed() < limit, "condition not reached within {limit:?}; last health: {h}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until no stage has a message waiting or in flight.
    pub async fn settled(&self, limit: Duration) -> Value {
        self.wait_until(limit, |h| {
            ["inbound", "read", "narrate", "deliver"]
                .iter()
                .all(|q| h["queues"][q]["waiting"] == 0 && h["queues"][q]["in_flight"] == 0)
        })
        .await
    }

    /// Waits until at least `n` emails are in the outbox, and returns them.
    pub async fn wait_for_emails(&self, n: usize) -> Vec<String> {
        let start = Instant::now();
        loop {
            let emails = self.outbox();
            if emails.len() >= n {
                return emails;
            }
            assert!(start.elapsed() < LIMIT, "expected {n} emails, found {}", emails.len());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The emails written to the outbox so far.
    pub fn outbox(&self) -> Vec<String> {
        let dir = self.data_dir.join("outbox");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files.iter().map(|p| std::fs::read_to_string(p).expect("readable eml")).collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}
