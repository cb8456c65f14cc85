//! `/storytime`: help, last, status, voice, speed, email. The answer is immediate
//! and visible only to the user; longer work goes on behind it.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use storytime_pipeline::ports::{Email, PendingEmail, UserPrefs};
use storytime_pipeline::{Destination, JobId, JobStatus, Speed, now_ms};
use subtle::ConstantTimeEq;

use super::SlackApp;
use super::manifest::{COMMAND, SHORTCUT_NAME};
use super::mrkdwn;

/// The fields of a slash command Storytime uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Command {
    pub team_id: String,
    pub channel_id: String,
    pub user_id: String,
    #[serde(default)]
    pub text: String,
    pub response_url: String,
    pub trigger_id: String,
}

pub async fn commands(State(app): State<Arc<SlackApp>>, body: Bytes) -> Response {
    let Ok(command) = serde_urlencoded::from_bytes::<Command>(&body) else {
        return (StatusCode::BAD_REQUEST, "not a slash command").into_response();
    };
    Json(json!({ "response_type": "ephemeral", "text": app.command(command).await })).into_response()
}

pub fn help() -> String {
    format!(
        "*Storytime reads book pages aloud.* Share a photo of a page in a channel I'm in, in a DM, or with an @mention, \
and I'll answer in its thread with the page read aloud.\n\
• `{COMMAND} last`: read the latest photo in this channel\n\
• `{COMMAND} status <id>`: how a reading is going\n\
• `{COMMAND} voice <name>`: your voice (`{COMMAND} voice` lists them)\n\
• `{COMMAND} speed <0.5 to 1.5>`: how fast I read to you (1 is normal, 0.7 slower)\n\
• `{COMMAND} email <address|off>`: also email your stories to you (I'll mail a code to confirm)\n\
• On any message with a photo: ⋯ → *{SHORTCUT_NAME}*"
    )
}

impl SlackApp {
    /// Runs a subcommand and returns the answer for the user.
    pub(super) async fn command(&self, c: Command) -> String {
        let text = c.text.trim();
        let (sub, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
        let rest = rest.trim();
        let user = user_key(&c.team_id, &c.user_id);
        if let Err(wait) = self.pipeline.rates.commands.check(&user) {
            return format!("That's a lot of commands in a minute; try again in {} seconds.", wait.as_secs().max(1));
        }
        let result = match sub.to_ascii_lowercase().as_str() {
            "last" => self.last(&c).await,
            "status" => self.status(&c.team_id, rest).await,
            "voice" => self.voice(&user, rest).await,
            "speed" => self.speed(&user, rest).await,
            "email" => self.email(&user, rest).await,
            _ => Ok(help()),
        };
        result.unwrap_or_else(|e| {
            tracing::error!(error = %e, "slash command failed");
            "Sorry, something went wrong on my side. Please try again in a minute.".into()
        })
    }

    async fn last(&self, c: &Command) -> Result<String, storytime_pipeline::PortError> {
        let key = format!("slack:{}:{}:last:{}", c.team_id, c.channel_id, c.trigger_id);
        let payload = json!({
            "kind": "last", "key": key, "team": c.team_id, "channel": c.channel_id,
            "user": c.user_id, "response_url": c.response_url,
        });
        self.record(key, payload).await?;
        Ok("Looking for the latest photo in this channel… I'll answer in its thread.".into())
    }

    /// How a job is going, for a job this workspace asked for: another
    /// workspace's (or the REST API's) jobs are answered as unknown.
    async fn status(&self, team: &str, id: &str) -> Result<String, storytime_pipeline::PortError> {
        let Ok(id) = JobId::parse(id) else {
            return Ok(format!("Give me the id of a reading: `{COMMAND} status 1b4e28ba-2fa1-11d2-883f-0016d3cca427`"));
        };
        let ours = |job: &storytime_pipeline::Job| {
            job.recipients
                .iter()
                .any(|r| matches!(&r.destination, Destination::Chat { workspace, .. } if workspace.as_str() == team))
        };
        let Some(job) = self.pipeline.jobs.get(&id).await?.filter(ours) else {
            return Ok(format!("I don't know a reading `{id}`."));
        };
        Ok(match job.status {
            JobStatus::Done => {
                let audio = job.audio.as_ref();
                format!(
                    "`{id}` is done: {:.0} s of audio in the voice {}.",
                    audio.map(|a| a.seconds).unwrap_or_default(),
                    audio.map(|a| a.voice.as_str()).unwrap_or("?")
                )
            }
            JobStatus::NoText => format!("`{id}` is done, but there was no text on the page."),
            JobStatus::Failed => {
                let reason = job.failure.map(|f| f.message).unwrap_or_else(|| "unknown reason".into());
                format!("`{id}` failed: {}", mrkdwn::escape(&reason))
            }
            other => {
                let retry = job.last_error.map(|e| format!(" (retrying: {})", mrkdwn::escape(&e))).unwrap_or_default();
                format!("`{id}` is {}{retry}.", other.as_str().replace('_', " "))
            }
        })
    }

    async fn voice(&self, user: &str, name: &str) -> Result<String, storytime_pipeline::PortError> {
        let voices = self.pipeline.narrator.voices();
        let list =
            voices.iter().map(|v| format!("`{}` ({})", v.name, v.language.code())).collect::<Vec<_>>().join(", ");
        if name.is_empty() {
            let current = self.pipeline.prefs.get(user).await?.voice;
            let current = current.map(|v| format!("Your voice is `{v}`. ")).unwrap_or_default();
            return Ok(format!("{current}Voices: {list}. Pick one with `{COMMAND} voice <name>`."));
        }
        let Some(voice) = voices.iter().find(|v| v.name.eq_ignore_ascii_case(name)) else {
            return Ok(format!("I don't have a voice called {}. Voices: {list}.", mrkdwn::code(name)));
        };
        let mut prefs = self.pipeline.prefs.get(user).await?;
        prefs.voice = Some(voice.name.clone());
        self.pipeline.prefs.set(user, &prefs).await?;
        Ok(format!(
            "From now on I'll read your pages with the voice `{}` (when the page is in its language).",
            voice.name
        ))
    }

    async fn speed(&self, user: &str, arg: &str) -> Result<String, storytime_pipeline::PortError> {
        let mut prefs = self.pipeline.prefs.get(user).await?;
        if arg.is_empty() {
            let current = prefs.speed.unwrap_or_default();
            return Ok(format!(
                "I read to you at speed {current}. Change it with `{COMMAND} speed 0.7` (slower) up to 1.5 (faster)."
            ));
        }
        let speed: Speed = match arg.parse() {
            Ok(speed) => speed,
            Err(e) => return Ok(format!("{} Try `{COMMAND} speed 0.8`.", mrkdwn::escape(&e))),
        };
        prefs.speed = Some(speed).filter(|s| !s.is_normal());
        self.pipeline.prefs.set(user, &prefs).await?;
        Ok(if speed.is_normal() {
            "From now on I'll read your pages at the voice's own pace.".into()
        } else {
            format!("From now on I'll read your pages at speed {speed}.")
        })
    }

    pub(super) async fn email(&self, user: &str, arg: &str) -> Result<String, storytime_pipeline::PortError> {
        let mut prefs: UserPrefs = self.pipeline.prefs.get(user).await?;
        if arg.eq_ignore_ascii_case("off") {
            prefs.email = None;
            prefs.pending_email = None;
            self.pipeline.prefs.set(user, &prefs).await?;
            return Ok("Email is off: your stories come only to Slack.".into());
        }
        let (word, rest) = arg.split_once(char::is_whitespace).unwrap_or((arg, ""));
        if word.eq_ignore_ascii_case("confirm") {
            return self.confirm_email(user, prefs, rest.trim()).await;
        }
        // Slack shows addresses as <mailto:a@b.c|a@b.c>.
        let address = arg.trim_start_matches('<').trim_end_matches('>').split('|').next_back().unwrap_or("").trim();
        let address = address.trim_start_matches("mailto:");
        if !is_email(address) {
            let now = prefs.email.map(|e| format!(" Stories are emailed to {}.", mrkdwn::name(&e))).unwrap_or_default();
            return Ok(format!("Use `{COMMAND} email you@example.com`, or `{COMMAND} email off`.{now}"));
        }
        if prefs.email.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(address)) {
            return Ok(format!("Your stories already go to {}.", mrkdwn::name(address)));
        }
        // A code goes to the address first: results are mailed only to an
        // address its owner confirmed, and codes are rate limited per user
        // and per address.
        if let Err(wait) = self.pipeline.rates.mail(user, address) {
            return Ok(format!(
                "I've sent several codes already; try again in {} minutes.",
                wait.as_secs().div_ceil(60).max(1)
            ));
        }
        let code = format!("{:06}", uuid::Uuid::new_v4().as_u128() % 1_000_000);
        let email = Email {
            to: Some(address.to_owned()),
            subject: "Your Storytime confirmation code".into(),
            body: format!(
                "Someone asked Storytime, in Slack, to email read-aloud stories to this address.\n\n\
                 If it was you, type this in Slack within 30 minutes:\n\n    {COMMAND} email confirm {code}\n\n\
                 If it was not you, ignore this email: nothing will be sent here."
            ),
        };
        self.pipeline.notifier.notify(&email).await?;
        prefs.pending_email = Some(PendingEmail {
            address: address.to_owned(),
            code_digest: code_digest(user, &code),
            expires_ms: now_ms() + CODE_TTL_MS,
            tries: 0,
        });
        self.pipeline.prefs.set(user, &prefs).await?;
        Ok(format!(
            "I've emailed a code to {}. Type `{COMMAND} email confirm <code>` here, and I'll also email your stories \
             there (and send them there if I can't reach you in Slack).",
            mrkdwn::name(address)
        ))
    }

    async fn confirm_email(
        &self,
        user: &str,
        mut prefs: UserPrefs,
        code: &str,
    ) -> Result<String, storytime_pipeline::PortError> {
        let Some(mut pending) = prefs.pending_email.take() else {
            return Ok(format!("There is no address waiting: start with `{COMMAND} email you@example.com`."));
        };
        if pending.expires_ms < now_ms() || pending.tries >= MAX_CODE_TRIES {
            self.pipeline.prefs.set(user, &prefs).await?;
            return Ok(format!("That code has expired; ask for a new one with `{COMMAND} email <address>`."));
        }
        let given = code_digest(user, code.trim());
        if !bool::from(given.as_bytes().ct_eq(pending.code_digest.as_bytes())) {
            pending.tries += 1;
            let left = MAX_CODE_TRIES - pending.tries;
            prefs.pending_email = Some(pending);
            self.pipeline.prefs.set(user, &prefs).await?;
            return Ok(format!("That is not the code I sent ({left} tries left)."));
        }
        let address = pending.address;
        prefs.email = Some(address.clone());
        self.pipeline.prefs.set(user, &prefs).await?;
        Ok(format!(
            "Confirmed: I'll also email your stories to {}, and send them there if I can't reach you in Slack.",
            mrkdwn::name(&address)
        ))
    }
}

/// How long a mailed code stays good, and how many wrong ones void it.
const CODE_TTL_MS: i64 = 30 * 60 * 1000;
const MAX_CODE_TRIES: u32 = 5;

fn code_digest(user: &str, code: &str) -> String {
    hex::encode(Sha256::digest(format!("{user}:{code}").as_bytes()))
}

pub(super) fn user_key(team: &str, user: &str) -> String {
    format!("slack:{team}:{user}")
}

/// A plausible address: one `@`, something before it, a dot after it, no
/// spaces or control characters.
fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && s.matches('@').count() == 1
        && s.len() <= 254
        && s.chars().all(|c| !c.is_whitespace() && !c.is_control() && c != '<' && c != '>' && c != ',')
}

#[cfg(test)]
mod tests {
    use super::is_email;

    #[test]
    fn email_addresses_are_checked() {
        assert!(is_email("parent@example.com"));
        assert!(!is_email("parent@localhost"));
        assert!(!is_email("a b@example.com"));
        assert!(!is_email("a@b@example.com"));
        assert!(!is_email("@example.com"));
        assert!(!is_email("x@example.com\r\nBcc: y@z.com"));
    }
}
