//! A moto server on loopback, standing in for AWS: started from the
//! virtualenv the test command installs (`.venv-moto/bin/moto_server` in
//! the workspace, or the program `MOTO_SERVER` names), on a free port, and
//! stopped when dropped. Another moto found on the PATH is not used: its
//! version may answer differently (one seen here drops the headers a
//! presigned link asks for), which would fail tests for the wrong reason.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub struct Moto {
    child: Child,
    pub url: String,
}

fn program() -> PathBuf {
    if let Some(p) = std::env::var_os("MOTO_SERVER") {
        return PathBuf::from(p);
    }
    let venv = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv-moto/bin/moto_server");
    assert!(
        venv.exists(),
        "{} is missing: run scripts/test, which installs the moto these tests expect (or set MOTO_SERVER)",
        venv.display()
    );
    venv
}

impl Moto {
    pub fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let mut child = Command::new(program())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start moto_server (the README's test command installs it into .venv-moto)");
        // The server says when it listens; keep reading its log after that
        // so it never blocks on a full pipe.
        let mut log = BufReader::new(child.stderr.take().expect("stderr is piped")).lines();
        let mut seen = Vec::new();
        loop {
            match log.next() {
                Some(Ok(line)) if line.contains("Running on") => break,
                Some(Ok(line)) => seen.push(line),
                _ => panic!("moto_server stopped before listening:\n{}", seen.join("\n")),
            }
        }
        let echo = std::env::var("TEST_LOG").is_ok();
        std::thread::spawn(move || {
            for line in log.map_while(Result::ok) {
                if echo {
                    eprintln!("moto: {line}");
                }
            }
        });
        Self { child, url: format!("http://127.0.0.1:{port}") }
    }

    /// SDK settings pointing at this server, with dummy credentials.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        sdk_config(&self.url).await
    }
}

/// SDK settings pointing at `endpoint` (moto, or a proxy in front of it),
/// with dummy credentials and Storytime's HTTPS client.
pub async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(storytime_pipeline::adapters::aws::http_client())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "moto"))
        .load()
        .await
}

impl Moto {
    /// What moto recorded as published to SNS topics: (subject, message,
    /// the `to` attribute). moto builds this dump by walking its live state,
    /// so while other tests write to it the dump can fail: that is an `Err`
    /// worth asking again, not an answer.
    pub async fn published(&self) -> Result<Vec<(String, String, String)>, String> {
        let url = format!("{}/moto-api/data.json", self.url);
        let answer = reqwest::get(url).await.map_err(|e| format!("moto does not answer: {e}"))?;
        let status = answer.status();
        let body = answer.text().await.map_err(|e| format!("moto's answer breaks off: {e}"))?;
        let data: serde_json::Value = serde_json::from_str(&body)
            .map_err(|e| format!("moto answered {status} without JSON ({e}): {body:.200}"))?;
        let mut out = Vec::new();
        for topic in data["sns"]["Topic"].as_array().into_iter().flatten() {
            for n in topic["sent_notifications"].as_array().into_iter().flatten() {
                // [message id, message, subject, attributes, group id]
                let to = n[3]["to"]["Value"].as_str().or(n[3]["to"]["StringValue"].as_str()).unwrap_or("").to_owned();
                out.push((n[2].as_str().unwrap_or("").to_owned(), n[1].as_str().unwrap_or("").to_owned(), to));
            }
        }
        Ok(out)
    }

    /// Waits until moto has recorded `n` publishes, and returns them.
    pub async fn wait_for_published(&self, n: usize) -> Vec<(String, String, String)> {
        let start = std::time::Instant::now();
        loop {
            match self.published().await {
                Ok(mails) if mails.len() >= n || start.elapsed() > crate::LIMIT => return mails,
                Err(e) if start.elapsed() > crate::LIMIT => panic!("{e}"),
                _ => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            }
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
