//! The Slack Web API calls Storytime makes, through slack-morphism: rate
//! limits (HTTP 429 with `Retry-After`) are waited out, and every failure is
//! classified as one that may pass or one that will not.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;
use storytime_pipeline::settings::Secret;
use storytime_pipeline::{ErrorKind, PortError};
use url::Url;

use super::files::SlackHosts;

/// Longest a call waits out rate limits before giving up for now (the
/// queue then retries the whole delivery later).
const RATE_LIMIT_BUDGET: Duration = Duration::from_secs(120);
/// Pages of a thread's replies read to find an earlier delivery.
const REPLIES_PAGES: usize = 10;
/// Longest single wait a `Retry-After` is honoured for.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Slack errors that mean the destination is gone or the app lacks access:
/// retrying cannot help, so the result goes by email instead.
const PERMANENT: &[&str] = &[
    // No token for the workspace: the app was never installed there, or
    // was uninstalled.
    "not_installed",
    "not_in_channel",
    "channel_not_found",
    "is_archived",
    "invalid_auth",
    "not_authed",
    "token_revoked",
    "token_expired",
    "account_inactive",
    "missing_scope",
    "no_permission",
    "restricted_action",
    "cannot_dm_bot",
    "user_not_found",
    "file_uploads_disabled",
    "file_upload_size_restricted",
    "ekm_access_denied",
    "team_access_not_granted",
    "invalid_arguments",
];

/// A failed Slack call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SlackError {
    /// Slack answered `ok: false` with this code.
    #[error("Slack {method}: {code}")]
    Api { method: &'static str, code: String },
    #[error("Slack {method}: {detail}")]
    Unavailable { method: &'static str, detail: String },
    #[error("Slack {method}: {detail}")]
    Rejected { method: &'static str, detail: String },
    /// Slack said ok, but the answer's shape was not the expected one.
    #[error("Slack {method}: unexpected answer: {detail}")]
    Unexpected { method: &'static str, detail: String },
}

impl SlackError {
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// Counts one Web API call by method and outcome (`ok`, `rate_limited`,
/// or Slack's error code).
fn counted(method: &'static str, outcome: String) {
    metrics::counter!(storytime_pipeline::metrics::SLACK_CALLS, "method" => method, "outcome" => outcome).increment(1);
}

impl From<SlackError> for PortError {
    fn from(e: SlackError) -> Self {
        let kind = match &e {
            SlackError::Api { code, .. } => match code.as_str() {
                "ratelimited" => ErrorKind::Throttled,
                "internal_error" | "fatal_error" | "service_unavailable" | "request_timeout" => ErrorKind::Unavailable,
                "not_in_channel" | "channel_not_found" | "is_archived" | "user_not_found" => ErrorKind::Missing,
                "invalid_arguments" | "cannot_dm_bot" => ErrorKind::Invalid,
                code if PERMANENT.contains(&code) => ErrorKind::AccessDenied,
                _ => ErrorKind::Failed,
            },
            SlackError::Unavailable { .. } => ErrorKind::Unavailable,
            SlackError::Rejected { .. } | SlackError::Unexpected { .. } => ErrorKind::Failed,
        };
        PortError::new(kind, "Slack", e.to_string()).with_source(e)
    }
}

/// A Web API client for one bot token (or none: response URLs, OAuth).
#[derive(Clone)]
pub struct SlackApi {
    client: Arc<SlackHyperClient>,
    token: SlackApiToken,
    bearer: Secret,
    http: reqwest::Client,
    hosts: SlackHosts,
    api_url: Arc<str>,
}

/// What `auth.test` says of a token.
pub struct Identity {
    pub team: String,
    pub team_id: String,
    pub user: String,
    /// The scopes granted, from the `x-oauth-scopes` answer header.
    pub scopes: Option<Vec<String>>,
}

impl SlackApi {
    /// A client without a token; [`Self::with_token`] makes one per token.
    pub fn new(api_url: &str, hosts: SlackHosts) -> std::io::Result<Self> {
        let https =
            hyper_rustls::HttpsConnectorBuilder::new().with_native_roots()?.https_or_http().enable_http1().build();
        let connector = SlackClientHyperConnector::with_connector(https).with_slack_api_url(api_url);
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("a plain HTTP client builds");
        Ok(Self {
            client: Arc::new(SlackClient::new(connector)),
            token: SlackApiToken::new(SlackApiTokenValue(String::new())),
            bearer: Secret::new(""),
            http,
            hosts,
            api_url: api_url.trim_end_matches('/').into(),
        })
    }

    /// The same client speaking with `token`.
    pub fn with_token(&self, token: &Secret) -> Self {
        Self {
            token: SlackApiToken::new(SlackApiTokenValue(token.expose().to_owned())),
            bearer: token.clone(),
            ..self.clone()
        }
    }

    /// The token, for file downloads.
    pub fn bearer(&self) -> &Secret {
        &self.bearer
    }

    pub fn client(&self) -> Arc<SlackHyperClient> {
        self.client.clone()
    }

    fn session(&self) -> SlackClientSession<'_, SlackClientHyperHttpsConnector> {
        self.client.open_session(&self.token)
    }

    /// Runs a call, waiting out rate limits within the budget.
    async fn call<T, F, Fut>(&self, method: &'static str, mut attempt: F) -> Result<T, SlackError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = ClientResult<T>>,
    {
        within_rate_limits(method, RATE_LIMIT_BUDGET, || {
            let sent = attempt();
            async move {
                sent.await.map_err(|e| match e {
                    SlackClientError::RateLimitError(e) => {
                        Answer::RateLimited(e.retry_after.unwrap_or(Duration::from_secs(1)))
                    }
                    e => Answer::Failed(classify(method, e)),
                })
            }
        })
        .await
    }

    pub async fn file_info(&self, id: &str) -> Result<SlackFile, SlackError> {
        let req = SlackApiFilesInfoRequest::new(SlackFileId(id.to_owned()));
        let req = &req;
        self.call("files.info", || async move { self.session().files_info(req).await }).await.map(|r| r.file)
    }

    pub async fn react(&self, channel: &str, ts: &str, name: &str) -> Result<(), SlackError> {
        let req = SlackApiReactionsAddRequest::new(
            SlackChannelId(channel.to_owned()),
            SlackReactionName(name.to_owned()),
            SlackTs(ts.to_owned()),
        );
        let req = &req;
        match done(self.call("reactions.add", || async move { self.session().reactions_add(req).await }).await) {
            Err(e) if e.code() == Some("already_reacted") => Ok(()),
            other => other,
        }
    }

    pub async fn unreact(&self, channel: &str, ts: &str, name: &str) -> Result<(), SlackError> {
        let req = SlackApiReactionsRemoveRequest::new(SlackReactionName(name.to_owned()))
            .with_channel(SlackChannelId(channel.to_owned()))
            .with_timestamp(SlackTs(ts.to_owned()));
        let req = &req;
        match done(self.call("reactions.remove", || async move { self.session().reactions_remove(req).await }).await) {
            Err(e) if e.code() == Some("no_reaction") => Ok(()),
            other => other,
        }
    }

    /// Posts a message in a thread.
    pub async fn post(&self, channel: &str, thread_ts: &str, text: &str) -> Result<(), SlackError> {
        self.post_content(channel, thread_ts, SlackMessageContent::new().with_text(text.to_owned())).await
    }

    /// Posts a message in a thread as blocks, the first one named `key`
    /// so that [`Self::posted`] can find it again.
    pub async fn post_marked(&self, channel: &str, thread_ts: &str, text: &str, key: &str) -> Result<(), SlackError> {
        let content = SlackMessageContent::new().with_text(text.to_owned()).with_blocks(marked_blocks(text, key));
        self.post_content(channel, thread_ts, content).await
    }

    async fn post_content(
        &self,
        channel: &str,
        thread_ts: &str,
        content: SlackMessageContent,
    ) -> Result<(), SlackError> {
        let req = SlackApiChatPostMessageRequest::new(SlackChannelId(channel.to_owned()), content)
            .with_thread_ts(SlackTs(thread_ts.to_owned()));
        let req = &req;
        done(self.call("chat.postMessage", || async move { self.session().chat_post_message(req).await }).await)
    }

    /// Posts a message (text, and blocks when given) in a thread; its `ts`.
    pub async fn post_blocks(
        &self,
        channel: &str,
        thread_ts: &str,
        text: &str,
        blocks: Option<Value>,
    ) -> Result<String, SlackError> {
        let mut body = json!({ "channel": channel, "thread_ts": thread_ts, "text": text });
        if let Some(blocks) = blocks {
            body["blocks"] = blocks;
        }
        let (answer, _) = self.raw("chat.postMessage", &body).await?;
        Ok(answer["ts"].as_str().unwrap_or_default().to_owned())
    }

    /// Replaces a message the app posted.
    pub async fn update(&self, channel: &str, ts: &str, text: &str, blocks: Option<Value>) -> Result<(), SlackError> {
        let body = json!({ "channel": channel, "ts": ts, "text": text, "blocks": blocks.unwrap_or_else(|| json!([])) });
        self.raw("chat.update", &body).await.map(drop)
    }

    /// Whether a message whose first block is named `key` is in the thread
    /// (its replies, newest pages first as Slack gives them, at most
    /// `REPLIES_PAGES` pages of 200). An app installed without the history
    /// scopes (`manifest.mentions.yml`) cannot look, and posts again.
    pub async fn posted(&self, channel: &str, thread_ts: &str, key: &str) -> Result<bool, SlackError> {
        match self.find_marked(channel, thread_ts, key).await {
            Err(e) if e.code() == Some("missing_scope") => {
                tracing::warn!(channel, "cannot read the thread (no history scope) to check for an earlier post");
                Ok(false)
            }
            other => other,
        }
    }

    async fn find_marked(&self, channel: &str, thread_ts: &str, key: &str) -> Result<bool, SlackError> {
        let mut cursor: Option<SlackCursorId> = None;
        for _ in 0..REPLIES_PAGES {
            let mut req = SlackApiConversationsRepliesRequest::new(
                SlackChannelId(channel.to_owned()),
                SlackTs(thread_ts.to_owned()),
            )
            .with_limit(200);
            req.cursor = cursor.take();
            let req = &req;
            let page = self
                .call("conversations.replies", || async move { self.session().conversations_replies(req).await })
                .await?;
            let marked = page
                .messages
                .iter()
                .flat_map(|m| m.content.blocks.iter().flatten())
                .any(|b| matches!(b, SlackBlock::Section(s) if s.block_id.as_ref().is_some_and(|id| id.0 == key)));
            if marked {
                return Ok(true);
            }
            cursor = page.response_metadata.and_then(|m| m.next_cursor).filter(|c| !c.0.is_empty());
            if cursor.is_none() {
                break;
            }
        }
        Ok(false)
    }

    /// Uploads an MP3 into a thread with a comment, through Slack's upload
    /// flow: get an upload URL, send the bytes there, complete the upload.
    /// The comment goes as blocks, the first one named `key`.
    #[allow(clippy::too_many_arguments)]
    pub async fn upload_audio(
        &self,
        channel: &str,
        thread_ts: &str,
        bytes: Bytes,
        file_name: &str,
        title: &str,
        comment: &str,
        key: &str,
    ) -> Result<(), SlackError> {
        let req = SlackApiFilesGetUploadUrlExternalRequest::new(file_name.to_owned(), bytes.len());
        let req = &req;
        let target = self
            .call("files.getUploadURLExternal", || async move { self.session().get_upload_url_external(req).await })
            .await?;
        if !self.hosts.allows(target.upload_url.value()) {
            return Err(SlackError::Rejected {
                method: "files.getUploadURLExternal",
                detail: "the upload URL is not on a Slack host".into(),
            });
        }
        let upload =
            SlackApiFilesUploadViaUrlRequest::new(target.upload_url.clone(), bytes.to_vec(), "audio/mpeg".into());
        let upload = &upload;
        done(self.call("file upload", || async move { self.session().files_upload_via_url(upload).await }).await)?;
        let complete = SlackApiFilesCompleteUploadExternalRequest::new(vec![
            SlackApiFilesComplete::new(target.file_id.clone()).with_title(title.to_owned()),
        ])
        .with_channel_id(SlackChannelId(channel.to_owned()))
        .with_thread_ts(SlackTs(thread_ts.to_owned()))
        .with_blocks(marked_blocks(comment, key));
        let complete = &complete;
        done(
            self.call("files.completeUploadExternal", || async move {
                self.session().files_complete_upload_external(complete).await
            })
            .await,
        )
    }

    /// Who the bot token belongs to, and the scopes it was granted.
    pub async fn whoami(&self) -> Result<Identity, SlackError> {
        let (answer, headers) = self.raw("auth.test", &serde_json::Map::new().into()).await?;
        let scopes = headers
            .get("x-oauth-scopes")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect());
        let text = |k: &str| answer[k].as_str().unwrap_or_default().to_owned();
        Ok(Identity { team: text("team"), team_id: text("team_id"), user: text("user_id"), scopes })
    }

    /// Calls a Web API method with a JSON body and the token, waiting out
    /// rate limits within the budget; the answer and its headers.
    pub async fn raw(
        &self,
        method: &'static str,
        body: &Value,
    ) -> Result<(Value, reqwest::header::HeaderMap), SlackError> {
        within_rate_limits(method, RATE_LIMIT_BUDGET, || async {
            let request = self.http.post(format!("{}/{method}", self.api_url)).bearer_auth(self.bearer.expose());
            self.answer(method, request.json(body).send().await).await
        })
        .await
    }

    /// `oauth.v2.access` with form parameters (the app's credentials, not
    /// a token). A browser waits on it: a rate limit is not waited out.
    pub async fn oauth_access(&self, form: &[(&str, &str)]) -> Result<Value, SlackError> {
        let method = "oauth.v2.access";
        let field = |name: &str| form.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
        let answer = within_rate_limits(method, Duration::ZERO, || async {
            let mut request = self.http.post(format!("{}/{method}", self.api_url)).form(form);
            // Slack prefers the credentials as HTTP Basic; the form has them too.
            if let (Some(id), Some(secret)) = (field("client_id"), field("client_secret")) {
                request = request.basic_auth(id, Some(secret));
            }
            self.answer(method, request.send().await).await
        })
        .await?;
        Ok(answer.0)
    }

    async fn answer(
        &self,
        method: &'static str,
        sent: reqwest::Result<reqwest::Response>,
    ) -> Result<(Value, reqwest::header::HeaderMap), Answer> {
        let r =
            sent.map_err(|e| Answer::Failed(SlackError::Unavailable { method, detail: e.without_url().to_string() }))?;
        let status = r.status();
        if status.as_u16() == 429 {
            let wait = r
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse().ok())
                .map_or(Duration::from_secs(1), Duration::from_secs);
            return Err(Answer::RateLimited(wait));
        }
        if status.is_server_error() {
            return Err(Answer::Failed(SlackError::Unavailable { method, detail: format!("HTTP {status}") }));
        }
        if !status.is_success() {
            return Err(Answer::Failed(SlackError::Rejected { method, detail: format!("HTTP {status}") }));
        }
        let headers = r.headers().clone();
        let answer: Value = r
            .json()
            .await
            .map_err(|e| Answer::Failed(SlackError::Unexpected { method, detail: e.without_url().to_string() }))?;
        if answer["ok"] != true {
            let code = answer["error"].as_str().unwrap_or("unknown_error").to_owned();
            return Err(Answer::Failed(SlackError::Api { method, code }));
        }
        Ok((answer, headers))
    }

    /// The most recent messages of a channel, newest first, as JSON.
    pub async fn history(&self, channel: &str, limit: u16) -> Result<Vec<Value>, SlackError> {
        let req = SlackApiConversationsHistoryRequest::new()
            .with_channel(SlackChannelId(channel.to_owned()))
            .with_limit(limit);
        let req = &req;
        let res = self
            .call("conversations.history", || async move { self.session().conversations_history(req).await })
            .await?;
        Ok(res.messages.iter().filter_map(|m| serde_json::to_value(m).ok()).collect())
    }

    /// Answers a slash command or shortcut later, through its response URL
    /// (visible only to the user who asked). No token is sent.
    pub async fn respond(&self, response_url: &str, text: &str) -> Result<(), SlackError> {
        let method = "response_url";
        let url = Url::parse(response_url).map_err(|e| SlackError::Rejected { method, detail: e.to_string() })?;
        if !self.hosts.allows(&url) {
            return Err(SlackError::Rejected { method, detail: "the response URL is not on a Slack host".into() });
        }
        let body = json!({ "response_type": "ephemeral", "replace_original": false, "text": text });
        let r = self
            .http
            .post(url)
            .json(&body)
            .send()
            .await
            .map_err(|e| SlackError::Unavailable { method, detail: e.without_url().to_string() })?;
        match r.status() {
            s if s.is_success() => Ok(()),
            s if s.is_server_error() || s.as_u16() == 429 => {
                Err(SlackError::Unavailable { method, detail: format!("HTTP {s}") })
            }
            s => Err(SlackError::Rejected { method, detail: format!("HTTP {s}") }),
        }
    }
}

/// How one attempt at a call failed, before rate limits are waited out.
enum Answer {
    RateLimited(Duration),
    Failed(SlackError),
}

/// Runs a call, waiting out rate limits (`Retry-After`, at most
/// `MAX_RETRY_AFTER` at a time) within `budget`, and counts each
/// attempt's outcome.
async fn within_rate_limits<T, F, Fut>(method: &'static str, budget: Duration, mut attempt: F) -> Result<T, SlackError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Answer>>,
{
    let deadline = Instant::now() + budget;
    loop {
        match attempt().await {
            Ok(v) => {
                counted(method, "ok".into());
                return Ok(v);
            }
            Err(Answer::RateLimited(wait)) => {
                counted(method, "rate_limited".into());
                let wait = wait.min(MAX_RETRY_AFTER);
                if Instant::now() + wait > deadline {
                    return Err(SlackError::Unavailable { method, detail: "still rate limited".into() });
                }
                tracing::warn!(method, wait = ?wait, "Slack rate limit: waiting");
                metrics::counter!(storytime_pipeline::metrics::SLACK_RATE_LIMITED).increment(wait.as_secs());
                tokio::time::sleep(wait).await;
            }
            Err(Answer::Failed(e)) => {
                counted(method, e.code().unwrap_or("error").to_owned());
                return Err(e);
            }
        }
    }
}

/// Mrkdwn as section blocks (3,000 characters each at most); the first is
/// named `key`. At most 50 blocks, Slack's limit for one message.
fn marked_blocks(text: &str, key: &str) -> Vec<SlackBlock> {
    super::mrkdwn::sections(text, 3000)
        .into_iter()
        .take(50)
        .enumerate()
        .map(|(i, piece)| {
            let block =
                SlackSectionBlock::new().with_text(SlackBlockText::MarkDown(SlackBlockMarkDownText::new(piece)));
            let block = if i == 0 { block.with_block_id(SlackBlockId(key.to_owned())) } else { block };
            SlackBlock::Section(block)
        })
        .collect()
}

/// For calls whose answer is not used: Slack said ok, so an answer of
/// another shape than the model expects is still success.
fn done<T>(result: Result<T, SlackError>) -> Result<(), SlackError> {
    match result {
        Ok(_) => Ok(()),
        Err(SlackError::Unexpected { method, detail }) => {
            tracing::debug!(method, detail, "ignoring the shape of an ok answer");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

fn classify(method: &'static str, e: SlackClientError) -> SlackError {
    match e {
        SlackClientError::ApiError(api) => SlackError::Api { method, code: api.code },
        SlackClientError::HttpError(http) if http.status_code.is_server_error() => {
            SlackError::Unavailable { method, detail: format!("HTTP {}", http.status_code) }
        }
        SlackClientError::HttpError(http) => {
            SlackError::Rejected { method, detail: format!("HTTP {}", http.status_code) }
        }
        SlackClientError::ProtocolError(p) => SlackError::Unexpected { method, detail: p.to_string() },
        other => SlackError::Unavailable { method, detail: other.to_string() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_errors_are_sorted_into_lasting_and_passing() {
        let api = |code: &str| PortError::from(SlackError::Api { method: "m", code: code.into() });
        assert!(!api("not_in_channel").is_retryable());
        assert!(!api("token_revoked").is_retryable());
        assert!(!api("is_archived").is_retryable());
        assert!(api("internal_error").is_retryable());
        assert!(api("ratelimited").is_retryable());
        let gone = PortError::from(SlackError::Unavailable { method: "m", detail: "connection reset".into() });
        assert!(gone.is_retryable());
    }
}
