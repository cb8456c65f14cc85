//! Running `storytime serve` for a test.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

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

    fn spawn(&mut self) {
        let mut cmd = Command::new(storytime_bin());
        cmd.arg("serve")
            .env("STORYTIME_DATA_DIR", &self.data_dir)
            .env("STORYTIME_LISTEN", "127.0.0.1:0")
            .env_remove("STORYTIME_PUBLIC_URL")
            .env("RUST_LOG", std::env::var("TEST_LOG").unwrap_or_else(|_| "warn".into()))
            .stdout(Stdio::piped())
            .stderr(if std::env::var("TEST_LOG").is_ok() { Stdio::inherit() } else { Stdio::null() });
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
