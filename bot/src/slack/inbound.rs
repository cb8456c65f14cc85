//! The inbound stage for Slack: turns a recorded request into a job.
//! Finds the photos of the message, downloads them with the bot token,
//! reacts to show the photo was picked up, and submits the book with the
//! thread as its destination. Problems the user can act on are explained
//! in the thread; passing ones are retried by the queue.

use async_trait::async_trait;
use serde_json::Value;
use storytime_pipeline::ports::InboundHandler;
use storytime_pipeline::stages::{IntakeError, Retell, SubmitRequest, Upload};
use storytime_pipeline::{Destination, ErrorKind, Failure, JobId, PortError, Reuse, Speed, StageError};

use super::SlackApp;
use super::api::SlackApi;
use super::commands::{help, user_key};
use super::files::FetchError;
use super::interactions::{EMAIL, SLOWER, VOICE};
use super::mrkdwn;

/// Reaction when a photo is picked up.
pub const PICKED_UP: &str = "eyes";
/// Messages `/storytime last` looks through.
const HISTORY: u16 = 20;

/// Image types Slack reports for photos.
const IMAGE_TYPES: &[&str] = &["jpg", "jpeg", "png", "gif", "webp", "bmp", "tiff", "heic"];

/// One message whose photos are to be read.
struct PhotoRequest<'a> {
    team: &'a str,
    channel: &'a str,
    user: Option<&'a str>,
    message: &'a Value,
    key: &'a str,
    /// For requests from a command or shortcut: where to say "no photo".
    response_url: Option<&'a str>,
}

#[async_trait]
impl InboundHandler for SlackApp {
    async fn handle(&self, _source: &str, payload: &str) -> Result<(), StageError> {
        let p: Value = serde_json::from_str(payload)
            .map_err(|e| StageError::Permanent(Failure::internal(format!("unreadable Slack request: {e}"))))?;
        let key = p["key"].as_str().unwrap_or_default();
        let team = p["team"].as_str().unwrap_or("T");
        if let Some(enterprise) = p["enterprise"].as_str() {
            self.workspaces.join_organisation(team, enterprise).await?;
        }
        let api = self.api(team).await.map_err(port)?;
        match self.handle_with(&api, &p, team, key).await {
            // Slack may have refused a bot token replaced since.
            Err(StageError::Permanent(failure)) => {
                self.unless_token_replaced(&api).await?;
                Err(StageError::Permanent(failure))
            }
            handled => handled,
        }
    }
}

impl SlackApp {
    async fn handle_with(&self, api: &SlackApi, p: &Value, team: &str, key: &str) -> Result<(), StageError> {
        match p["kind"].as_str().unwrap_or_default() {
            "message" => {
                let event = &p["event"];
                let channel = event["channel"].as_str().unwrap_or_default();
                let request = PhotoRequest {
                    team,
                    channel,
                    user: event["user"].as_str(),
                    message: event,
                    key,
                    response_url: None,
                };
                self.read_photos(api, request).await
            }
            "help" => {
                let event = &p["event"];
                let (channel, ts) =
                    (event["channel"].as_str().unwrap_or_default(), event["ts"].as_str().unwrap_or_default());
                let thread = event["thread_ts"].as_str().unwrap_or(ts);
                if self.pipeline.jobs.claim(&format!("{key}:help")).await? {
                    api.post(channel, thread, &help()).await.map_err(port)?;
                }
                Ok(())
            }
            "shortcut" => {
                let channel = p["channel"].as_str().unwrap_or_default();
                let request = PhotoRequest {
                    team,
                    channel,
                    user: p["user"].as_str(),
                    message: &p["message"],
                    key,
                    response_url: p["response_url"].as_str(),
                };
                self.read_photos(api, request).await
            }
            "last" => self.read_latest(api, p, team, key).await,
            "action" => self.act(api, p, team, key).await,
            "home" => {
                let user = p["user"].as_str().unwrap_or_default();
                self.publish_home(api, team, user, p["note"].as_str()).await
            }
            other => {
                tracing::warn!(kind = other, "ignoring an unknown Slack request");
                Ok(())
            }
        }
    }

    /// `/storytime last`: the newest message with a photo in the channel.
    async fn read_latest(&self, api: &SlackApi, p: &Value, team: &str, key: &str) -> Result<(), StageError> {
        let channel = p["channel"].as_str().unwrap_or_default();
        let response_url = p["response_url"].as_str();
        let history = match api.history(channel, HISTORY).await {
            Ok(h) => h,
            Err(e) if e.code() == Some("not_in_channel") || e.code() == Some("channel_not_found") => {
                self.tell(response_url, "I can't see this channel's messages. Invite me first: `/invite @Storytime`.")
                    .await;
                return Ok(());
            }
            Err(e) if e.code() == Some("missing_scope") => {
                let text = "Here I only see photos shared with an @mention. Mention me with the photo, or use \
                            the Read aloud shortcut on its message.";
                self.tell(response_url, text).await;
                return Ok(());
            }
            Err(e) => return Err(port(e)),
        };
        let Some(message) = history.iter().find(|m| m["files"].as_array().is_some_and(|f| f.iter().any(is_image)))
        else {
            self.tell(response_url, &format!("I found no photo in the last {HISTORY} messages here.")).await;
            return Ok(());
        };
        let request = PhotoRequest { team, channel, user: p["user"].as_str(), message, key, response_url };
        self.read_photos(api, request).await
    }

    async fn read_photos(&self, api: &SlackApi, r: PhotoRequest<'_>) -> Result<(), StageError> {
        let ts = r.message["ts"].as_str().unwrap_or_default();
        let thread = r.message["thread_ts"].as_str().unwrap_or(ts);
        let files: Vec<Value> = r.message["files"].as_array().cloned().unwrap_or_default();
        let mut photos = Vec::new();
        let mut others = Vec::new();
        for file in files {
            let file = self.complete(api, file).await?;
            if is_image(&file) { photos.push(file) } else { others.push(file) }
        }
        if photos.is_empty() {
            if others.is_empty() {
                self.tell(r.response_url, "That message has no photo to read.").await;
            } else if self.pipeline.jobs.claim(&format!("{}:not-photos", r.key)).await? {
                let names = others.iter().map(|f| mrkdwn::code(name(f))).collect::<Vec<_>>().join(", ");
                let text = format!(
                    "I can only read photos of book pages (JPEG, PNG, WebP…), and {names} {} not a photo.",
                    if others.len() == 1 { "is" } else { "are" }
                );
                self.say(api, r.channel, thread, &text).await?;
            }
            return Ok(());
        }
        if let Err(e) = api.react(r.channel, ts, PICKED_UP).await {
            tracing::warn!(error = %e, "could not add the picked-up reaction");
        }
        let sender = format!("slack:{}:{}", r.team, r.user.unwrap_or_default());
        if let Err(wait) = self.pipeline.rates.uploads.check(&sender) {
            let text = format!(
                "You've sent me a lot of photos in the last minute; send this one again in {} seconds.",
                wait.as_secs().max(1)
            );
            return self.refuse(api, r.channel, ts, thread, &text).await;
        }
        let max_pages = self.pipeline.config.limits.max_pages;
        if photos.len() > max_pages {
            let text = format!("A book holds at most {max_pages} pages; I'll read the first {max_pages}.");
            self.say(api, r.channel, thread, &text).await?;
            photos.truncate(max_pages);
        }

        let mut pages = Vec::with_capacity(photos.len());
        for photo in &photos {
            let url =
                photo["url_private_download"].as_str().or_else(|| photo["url_private"].as_str()).unwrap_or_default();
            match self.files.download(url, api.bearer()).await {
                Ok(bytes) => pages.push(Upload { bytes, name: Some(name(photo).to_owned()) }),
                Err(e) if e.is_retryable() => return Err(StageError::retry("the photo download", e)),
                Err(e) => {
                    let hint = match e {
                        FetchError::LoginPage => {
                            " Reinstall the app from `manifest.yml` so it has the `files:read` scope."
                        }
                        _ => "",
                    };
                    return self
                        .refuse(
                            api,
                            r.channel,
                            ts,
                            thread,
                            &format!("I couldn't download {}: {e}.{hint}", mrkdwn::code(name(photo))),
                        )
                        .await;
                }
            }
        }

        let status = self.status_line(api, r.key, r.channel, thread, "Picked up your photo…").await?;
        let prefs = match r.user {
            Some(user) => self.pipeline.prefs.get(&user_key(r.team, user)).await?,
            None => Default::default(),
        };
        let mut destinations = vec![Destination::Chat {
            workspace: r.team.to_owned(),
            channel: r.channel.to_owned(),
            thread: thread.to_owned(),
            message: ts.to_owned(),
            user: r.user.map(str::to_owned),
            fallback_email: prefs.email.clone(),
            status: status.clone(),
        }];
        if let Some(email) = &prefs.email {
            destinations.push(Destination::Email { to: Some(email.clone()) });
        }
        let submitted = self
            .pipeline
            .submit(SubmitRequest {
                pages,
                voice: prefs.voice,
                speed: prefs.speed,
                reuse: Reuse::Results,
                destinations,
                request_key: Some(r.key.to_owned()),
                owner: sender,
            })
            .await;
        match submitted {
            Ok(accepted) => {
                tracing::info!(job = %accepted.job.id, channel = r.channel, new = accepted.created, "Slack photo submitted");
                if let Some(user) = r.user
                    && let Err(e) = self.remember(r.team, user, &accepted.job.id).await
                {
                    tracing::warn!(error = %e, "could not add the book to the user's recent books");
                }
                Ok(())
            }
            Err(IntakeError::Unavailable(e)) => Err(e.into()),
            Err(e @ IntakeError::Busy { .. }) => Err(StageError::retry("reading the photo", e.to_string())),
            Err(IntakeError::Rejected { page, reason }) => {
                let photo = photos.get(page).map(|p| mrkdwn::code(name(p))).unwrap_or_else(|| "the photo".into());
                let text = format!("I couldn't read {photo}: {reason}.");
                self.refuse_in_status(api, r.channel, ts, thread, status.as_deref(), &text).await
            }
            Err(e) => {
                let text = format!("I couldn't read this: {e}.");
                self.refuse_in_status(api, r.channel, ts, thread, status.as_deref(), &text).await
            }
        }
    }

    /// A file object from an event may be a stub (Slack Connect) or not yet
    /// processed (no URL or type until Slack's scan ends): ask `files.info`,
    /// a few times if needed.
    async fn complete(&self, api: &SlackApi, file: Value) -> Result<Value, StageError> {
        let ready = |f: &Value| {
            f["mimetype"].as_str().is_some_and(|m| !m.is_empty())
                && (f["url_private_download"].is_string() || f["url_private"].is_string())
        };
        if ready(&file) {
            return Ok(file);
        }
        let Some(id) = file["id"].as_str() else {
            return Ok(file);
        };
        for delay_ms in [0u64, 500, 1000, 2000] {
            tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
            let info = api.file_info(id).await.map_err(port)?;
            let info = serde_json::to_value(info).unwrap_or_default();
            if ready(&info) {
                return Ok(info);
            }
        }
        Err(StageError::retry(format!("Slack file {id}"), "Slack has not finished processing it"))
    }

    /// Posts the thread's status line for request `key`, once: a repeated
    /// request goes without one. Not being able to post it is no reason to
    /// stop.
    async fn status_line(
        &self,
        api: &SlackApi,
        key: &str,
        channel: &str,
        thread: &str,
        text: &str,
    ) -> Result<Option<String>, StageError> {
        if !self.pipeline.jobs.claim(&format!("{key}:status")).await? {
            return Ok(None);
        }
        match api.post_blocks(channel, thread, text, None).await {
            Ok(ts) if !ts.is_empty() => Ok(Some(ts)),
            Ok(_) => Ok(None),
            Err(e) => {
                tracing::warn!(error = %e, "could not post the status line");
                Ok(None)
            }
        }
    }

    /// A click on a result's buttons: the book narrated again (slower, or
    /// in another voice) into the same thread, or emailed; from the stored
    /// reading, without downloading or reading the photo again.
    async fn act(&self, api: &SlackApi, p: &Value, team: &str, key: &str) -> Result<(), StageError> {
        let text = |k: &str| p[k].as_str().unwrap_or_default();
        let (channel, thread, user, action) = (text("channel"), text("thread"), text("user"), text("action"));
        let response_url = p["response_url"].as_str();
        // Only a book this workspace asked for.
        let ours = |job: &storytime_pipeline::Job| {
            job.recipients
                .iter()
                .any(|r| matches!(&r.destination, Destination::Chat { workspace, .. } if workspace == team))
        };
        let source = match JobId::parse(text("job")) {
            Ok(id) => self.pipeline.jobs.get(&id).await?.filter(ours),
            Err(_) => None,
        };
        let Some(source) = source else {
            self.tell(response_url, "I don't know that book any more; share the photo again.").await;
            return Ok(());
        };
        // The answer goes into the thread the book was answered in, when
        // the click came from that channel.
        let thread = source
            .recipients
            .iter()
            .find_map(|r| match &r.destination {
                Destination::Chat { workspace, channel: c, thread, .. } if workspace == team && c == channel => {
                    Some(thread.as_str())
                }
                _ => None,
            })
            .unwrap_or(thread);
        let sender = user_key(team, user);
        let prefs = self.pipeline.prefs.get(&sender).await?;
        let (mut voice, mut speed, mut destinations) = (None, source.speed, Vec::new());
        let status_text = match action {
            SLOWER => {
                let now = source.speed.unwrap_or_default();
                let slower = Speed::try_from(now.factor() * 0.75).unwrap_or(Speed::SLOWEST);
                if slower >= now {
                    self.tell(response_url, "That's already as slow as I read.").await;
                    return Ok(());
                }
                speed = Some(slower);
                format!("Reading it again, slower (speed {slower})…")
            }
            VOICE => {
                let chosen = text("voice");
                let Some(v) = self.pipeline.narrator.voices().into_iter().find(|v| v.name == chosen) else {
                    self.tell(response_url, "I don't have that voice; pick another.").await;
                    return Ok(());
                };
                let line = format!("Reading it again with the voice {}…", mrkdwn::escape(&v.name));
                voice = Some(v.name);
                line
            }
            EMAIL => {
                let Some(address) = prefs.email.clone() else {
                    let hint = "Tell me your address first: `/storytime email you@example.com` \
                                (I'll mail you a code to confirm it).";
                    self.tell(response_url, hint).await;
                    return Ok(());
                };
                if let Err(wait) = self.pipeline.rates.mail(&sender, &address) {
                    let minutes = wait.as_secs().div_ceil(60).max(1);
                    self.tell(
                        response_url,
                        &format!("I've emailed you a lot already; try again in {minutes} minutes."),
                    )
                    .await;
                    return Ok(());
                }
                destinations.push(Destination::Email { to: Some(address.clone()) });
                self.tell(response_url, &format!("Emailing it to {}.", mrkdwn::name(&address))).await;
                String::new()
            }
            _ => return Ok(()),
        };
        if !status_text.is_empty() {
            let status = self.status_line(api, key, channel, thread, &status_text).await?;
            destinations.push(Destination::Chat {
                workspace: team.to_owned(),
                channel: channel.to_owned(),
                thread: thread.to_owned(),
                message: thread.to_owned(),
                user: Some(user.to_owned()),
                fallback_email: prefs.email.clone(),
                status,
            });
        }
        let retell = Retell {
            source: source.id.clone(),
            voice,
            speed,
            destinations,
            request_key: Some(key.to_owned()),
            owner: sender,
        };
        match self.pipeline.retell(retell).await {
            Ok(accepted) => {
                tracing::info!(job = %accepted.job.id, from = %source.id, action, "Slack result retold");
                if let Err(e) = self.remember(team, user, &accepted.job.id).await {
                    tracing::warn!(error = %e, "could not add the book to the user's recent books");
                }
                Ok(())
            }
            Err(IntakeError::NotRead) => {
                self.tell(response_url, "That book is still being read; try again when it's done.").await;
                Ok(())
            }
            Err(IntakeError::Unavailable(e)) => Err(e.into()),
            Err(e) => {
                self.tell(response_url, &format!("I couldn't do that: {e}.")).await;
                Ok(())
            }
        }
    }

    /// [`Self::refuse`], saying it in the status line when there is one.
    async fn refuse_in_status(
        &self,
        api: &SlackApi,
        channel: &str,
        ts: &str,
        thread: &str,
        status: Option<&str>,
        text: &str,
    ) -> Result<(), StageError> {
        match status {
            Some(status) if api.update(channel, status, text, None).await.is_ok() => {
                let _ = api.react(channel, ts, "x").await;
                let _ = api.unreact(channel, ts, PICKED_UP).await;
                Ok(())
            }
            _ => self.refuse(api, channel, ts, thread, text).await,
        }
    }

    /// Explains in the thread why a photo can't be read, and marks it.
    async fn refuse(
        &self,
        api: &SlackApi,
        channel: &str,
        ts: &str,
        thread: &str,
        text: &str,
    ) -> Result<(), StageError> {
        self.say(api, channel, thread, text).await?;
        let _ = api.react(channel, ts, "x").await;
        let _ = api.unreact(channel, ts, PICKED_UP).await;
        Ok(())
    }

    /// After Slack refused work done with `api`: a retry, when its bot
    /// token has been replaced since (the work is tried again with the new
    /// one).
    async fn unless_token_replaced(&self, api: &SlackApi) -> Result<(), StageError> {
        match self.workspaces.replaced_token(api).await {
            Some(replaced) => Err(StageError::Retry(replaced)),
            None => Ok(()),
        }
    }

    async fn say(&self, api: &SlackApi, channel: &str, thread: &str, text: &str) -> Result<(), StageError> {
        match api.post(channel, thread, text).await {
            Ok(()) => Ok(()),
            Err(e) => {
                let e = PortError::from(e);
                if e.is_retryable() {
                    Err(e.into())
                } else {
                    if e.kind() == ErrorKind::AccessDenied {
                        self.unless_token_replaced(api).await?;
                    }
                    // Nowhere to say it: the log is the trace.
                    tracing::warn!(error = %e, channel, "could not post in the thread");
                    Ok(())
                }
            }
        }
    }

    /// An answer only the requesting user sees, when there is a response URL.
    async fn tell(&self, response_url: Option<&str>, text: &str) {
        if let Some(url) = response_url
            && let Err(e) = self.workspaces.bare().respond(url, text).await
        {
            tracing::warn!(error = %e, "could not answer through the response URL");
        }
    }
}

fn port(e: super::api::SlackError) -> StageError {
    PortError::from(e).into()
}

fn is_image(file: &Value) -> bool {
    let mime = file["mimetype"].as_str().unwrap_or_default().to_ascii_lowercase();
    let kind = file["filetype"].as_str().unwrap_or_default().to_ascii_lowercase();
    (mime.starts_with("image/") && mime != "image/svg+xml") || IMAGE_TYPES.contains(&kind.as_str())
}

fn name(file: &Value) -> &str {
    file["name"].as_str().or_else(|| file["title"].as_str()).unwrap_or("photo")
}

#[cfg(test)]
mod tests {
    use super::is_image;
    use serde_json::json;

    #[test]
    fn photos_are_told_from_other_files() {
        assert!(is_image(&json!({ "mimetype": "image/jpeg" })));
        assert!(is_image(&json!({ "filetype": "png" })));
        assert!(!is_image(&json!({ "mimetype": "image/svg+xml", "filetype": "svg" })));
        assert!(!is_image(&json!({ "mimetype": "application/pdf", "filetype": "pdf" })));
    }
}
