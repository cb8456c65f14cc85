//! Downloading shared photos from Slack. The bot token goes only to
//! Slack's own hosts (or the host of `SLACK_API_URL`), never to a host a
//! payload names; redirects are followed by hand so the token is re-sent
//! only where it belongs. Slack answers a download without access with a
//! sign-in page, not an error: that is recognised, not fed to the reader.

use std::time::Duration;

use bytes::Bytes;
use storytime_pipeline::settings::Secret;
use url::Url;

const MAX_REDIRECTS: usize = 5;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("the file is hosted at {0}, which is not Slack")]
    ForeignHost(String),
    #[error("Slack sent a sign-in page instead of the photo; the app needs the files:read scope")]
    LoginPage,
    #[error("the file is larger than {0} bytes")]
    TooLarge(usize),
    #[error("Slack refused the download ({0})")]
    Refused(u16),
    #[error("the download failed: {0}")]
    Unavailable(String),
}

impl FetchError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

#[derive(Clone)]
pub struct SlackHosts {
    /// `host[:port]` of `SLACK_API_URL` when it is not Slack's own.
    api_authority: Option<(String, String)>,
}

impl SlackHosts {
    pub fn new(api_url: &str) -> Self {
        let api_authority = Url::parse(api_url).ok().and_then(|u| {
            let host = u.host_str()?.to_ascii_lowercase();
            let is_slack = host == "slack.com" || host.ends_with(".slack.com");
            (!is_slack).then(|| (u.scheme().to_owned(), authority(&u)))
        });
        Self { api_authority }
    }

    /// Slack's hosts over HTTPS, or exactly the configured API host.
    pub fn allows(&self, url: &Url) -> bool {
        let Some(host) = url.host_str().map(str::to_ascii_lowercase) else {
            return false;
        };
        let slack = url.scheme() == "https"
            && (host == "slack.com"
                || host.ends_with(".slack.com")
                || host == "slack-files.com"
                || host.ends_with(".slack-edge.com"));
        slack
            || self
                .api_authority
                .as_ref()
                .is_some_and(|(scheme, auth)| scheme == url.scheme() && *auth == authority(url))
    }
}

/// `host:port`, with the names of this machine's loopback address made one
/// (a local Slack stand-in may be reached as `localhost` or `127.0.0.1`).
fn authority(u: &Url) -> String {
    let host = u.host_str().unwrap_or("").to_ascii_lowercase();
    let host = match host.as_str() {
        "localhost" | "127.0.0.1" | "[::1]" => "loopback".to_owned(),
        _ => host,
    };
    match u.port_or_known_default() {
        Some(p) => format!("{host}:{p}"),
        None => host,
    }
}

#[derive(Clone)]
pub struct FileFetcher {
    http: reqwest::Client,
    hosts: SlackHosts,
    max_bytes: usize,
}

impl FileFetcher {
    pub fn new(hosts: SlackHosts, max_bytes: usize) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .build()
            .expect("a plain HTTP client builds");
        Self { http, hosts, max_bytes }
    }

    /// Downloads a private file with the workspace's bot token.
    pub async fn download(&self, url: &str, token: &Secret) -> Result<Bytes, FetchError> {
        let mut url = Url::parse(url).map_err(|e| FetchError::Unavailable(format!("bad file URL: {e}")))?;
        for _ in 0..=MAX_REDIRECTS {
            if !self.hosts.allows(&url) {
                return Err(FetchError::ForeignHost(url.host_str().unwrap_or("?").to_owned()));
            }
            let response = self
                .http
                .get(url.clone())
                .bearer_auth(token.expose())
                .send()
                .await
                .map_err(|e| FetchError::Unavailable(e.without_url().to_string()))?;
            let status = response.status();
            if status.is_redirection() {
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| FetchError::Unavailable("a redirect without a location".into()))?;
                url = url.join(location).map_err(|e| FetchError::Unavailable(format!("bad redirect: {e}")))?;
                continue;
            }
            if status.is_server_error() || status.as_u16() == 429 {
                return Err(FetchError::Unavailable(format!("Slack answered {status}")));
            }
            if !status.is_success() {
                return Err(FetchError::Refused(status.as_u16()));
            }
            let is_html = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("text/html"));
            if is_html {
                return Err(FetchError::LoginPage);
            }
            if response.content_length().is_some_and(|n| n > self.max_bytes as u64) {
                return Err(FetchError::TooLarge(self.max_bytes));
            }
            let bytes = read_limited(response, self.max_bytes).await?;
            if looks_like_html(&bytes) {
                return Err(FetchError::LoginPage);
            }
            return Ok(bytes);
        }
        Err(FetchError::Unavailable("too many redirects".into()))
    }
}

async fn read_limited(mut response: reqwest::Response, max: usize) -> Result<Bytes, FetchError> {
    let mut out = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| FetchError::Unavailable(e.without_url().to_string()))? {
        if out.len() + chunk.len() > max {
            return Err(FetchError::TooLarge(max));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(out))
}

fn looks_like_html(bytes: &[u8]) -> bool {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(256)]).to_ascii_lowercase();
    let head = head.trim_start();
    head.starts_with("<!doctype html") || head.starts_with("<html")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_goes_to_slack_and_the_configured_api_host_only() {
        let hosts = SlackHosts::new("http://127.0.0.1:4001/api");
        let ok = |u: &str| hosts.allows(&Url::parse(u).unwrap());
        assert!(ok("https://files.slack.com/files-pri/T1-F1/page.jpg"));
        assert!(ok("https://files-origin.slack.com/x"));
        assert!(ok("http://127.0.0.1:4001/files/F1"));
        assert!(!ok("http://127.0.0.1:4002/files/F1"), "another port on the same host");
        assert!(ok("http://localhost:4001/files/F1"), "another name of the same loopback host");
        assert!(!ok("http://10.0.0.1:4001/files/F1"));
        assert!(!ok("http://files.slack.com/x"), "Slack only over HTTPS");
        assert!(!ok("https://files.slack.com.evil.example/x"));
        assert!(!ok("https://evil.example/files.slack.com"));
        assert!(!ok("https://169.254.169.254/latest/meta-data"));

        let real = SlackHosts::new("https://slack.com/api");
        assert!(!real.allows(&Url::parse("http://127.0.0.1:4001/x").unwrap()));
    }

    #[test]
    fn sign_in_pages_are_recognised() {
        assert!(looks_like_html(b"  <!DOCTYPE html><html><title>Slack</title>"));
        assert!(!looks_like_html(b"\xff\xd8\xff\xe0"));
    }
}
