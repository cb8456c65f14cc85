//! The App Home: opening Storytime's Home tab shows the user's recent books
//! with their audio, and their settings (voice, speed, email) as controls
//! that save as soon as they change.

use serde_json::{Value, json};
use storytime_pipeline::ports::UserPrefs;
use storytime_pipeline::{JobId, JobStatus, PortError, Speed};

use super::SlackApp;
use super::api::SlackApi;
use super::commands::user_key;
use super::mrkdwn;

/// Books listed on the Home tab.
const RECENT: usize = 10;
/// Action IDs of the Home tab's controls.
pub const HOME_VOICE: &str = "storytime_home_voice";
pub const HOME_SPEED: &str = "storytime_home_speed";
pub const HOME_EMAIL: &str = "storytime_home_email";
/// The voice option that leaves the choice to the page's language.
const AUTO_VOICE: &str = "auto";
/// The speeds offered.
const SPEEDS: &[&str] = &["0.5", "0.6", "0.7", "0.8", "0.9", "1", "1.1", "1.25", "1.5"];

fn recent_key(team: &str, user: &str) -> String {
    format!("slack-recent:{team}:{user}")
}

fn plain(text: &str) -> Value {
    // Slack's limit for option and header texts.
    let text: String = text.chars().take(75).collect();
    json!({ "type": "plain_text", "text": text })
}

fn option(text: &str, value: &str) -> Value {
    json!({ "text": plain(text), "value": value })
}

impl SlackApp {
    /// Remembers a book the user asked for, newest first.
    pub(super) async fn remember(&self, team: &str, user: &str, job: &JobId) -> Result<(), PortError> {
        let key = recent_key(team, user);
        let mut ids = self.recent(team, user).await?;
        ids.retain(|id| id != job.as_str());
        ids.insert(0, job.as_str().to_owned());
        ids.truncate(RECENT);
        self.pipeline.prefs.put_record(&key, &serde_json::to_string(&ids).unwrap_or_default()).await
    }

    async fn recent(&self, team: &str, user: &str) -> Result<Vec<String>, PortError> {
        let stored = self.pipeline.prefs.record(&recent_key(team, user)).await?;
        Ok(stored.and_then(|s| serde_json::from_str(&s).ok()).unwrap_or_default())
    }

    /// Draws the user's Home tab (`views.publish`); `note` is shown at the
    /// top (the answer to a change just made).
    pub(super) async fn publish_home(
        &self,
        api: &SlackApi,
        team: &str,
        user: &str,
        note: Option<&str>,
    ) -> Result<(), storytime_pipeline::StageError> {
        let prefs = self.pipeline.prefs.get(&user_key(team, user)).await?;
        let mut blocks = vec![
            json!({ "type": "header", "text": plain("Storytime") }),
            json!({ "type": "section", "text": { "type": "mrkdwn", "text":
                "Share a photo of a book page in a channel I'm in, or send it to me in the *Messages* tab, \
                 and I'll answer with the page read aloud." } }),
        ];
        if let Some(note) = note {
            blocks.push(json!({ "type": "context", "elements": [{ "type": "mrkdwn", "text": note }] }));
        }
        blocks.push(json!({ "type": "divider" }));
        blocks.push(json!({ "type": "header", "text": plain("Your settings") }));
        blocks.extend(self.settings_blocks(&prefs));
        blocks.push(json!({ "type": "divider" }));
        blocks.push(json!({ "type": "header", "text": plain("Your recent books") }));
        blocks.extend(self.book_blocks(team, user).await?);
        let view = json!({ "type": "home", "blocks": blocks });
        api.raw("views.publish", &json!({ "user_id": user, "view": view })).await.map_err(PortError::from)?;
        Ok(())
    }

    fn settings_blocks(&self, prefs: &UserPrefs) -> Vec<Value> {
        let mut voices = vec![option("Chosen for the page's language", AUTO_VOICE)];
        voices.extend(
            self.pipeline
                .narrator
                .voices()
                .iter()
                .take(99)
                .map(|v| option(&format!("{} ({})", v.name, v.language.code()), &v.name)),
        );
        let voice_value = prefs.voice.as_deref().unwrap_or(AUTO_VOICE);
        let voice_initial = voices.iter().find(|o| o["value"] == voice_value).cloned();
        let speeds: Vec<Value> = SPEEDS
            .iter()
            .map(|s| option(&if *s == "1" { "1 (normal)".to_owned() } else { (*s).to_owned() }, s))
            .collect();
        let speed_value = prefs.speed.unwrap_or_default().to_string();
        let speed_initial = speeds.iter().find(|o| o["value"] == speed_value.as_str()).cloned();
        let mut voice = json!({ "type": "static_select", "action_id": HOME_VOICE, "options": voices });
        if let Some(initial) = voice_initial {
            voice["initial_option"] = initial;
        }
        let mut speed = json!({ "type": "static_select", "action_id": HOME_SPEED, "options": speeds });
        if let Some(initial) = speed_initial {
            speed["initial_option"] = initial;
        }
        let mut email = json!({
            "type": "plain_text_input", "action_id": HOME_EMAIL,
            "placeholder": plain("you@example.com"),
            "dispatch_action_config": { "trigger_actions_on": ["on_enter_pressed"] },
        });
        if let Some(address) = &prefs.email {
            email["initial_value"] = json!(address);
        }
        let email_state = match (&prefs.email, &prefs.pending_email) {
            (_, Some(pending)) => format!(
                "A code went to {}: type `/storytime email confirm <code>` to confirm it.",
                mrkdwn::name(&pending.address)
            ),
            (Some(address), None) => format!("Your stories are also emailed to {}.", mrkdwn::name(address)),
            (None, None) => "Type an address and press Enter to also get your stories by email.".to_owned(),
        };
        vec![
            json!({ "type": "section", "block_id": HOME_VOICE, "text": { "type": "mrkdwn", "text": "*Voice*" }, "accessory": voice }),
            json!({ "type": "section", "block_id": HOME_SPEED, "text": { "type": "mrkdwn", "text": "*Speed*" }, "accessory": speed }),
            json!({ "type": "input", "block_id": HOME_EMAIL, "dispatch_action": true, "optional": true,
                    "label": plain("Email"), "element": email }),
            json!({ "type": "context", "elements": [{ "type": "mrkdwn", "text": email_state }] }),
        ]
    }

    async fn book_blocks(&self, team: &str, user: &str) -> Result<Vec<Value>, PortError> {
        let mut blocks = Vec::new();
        for id in self.recent(team, user).await? {
            let Ok(id) = JobId::parse(&id) else { continue };
            let Some(job) = self.pipeline.jobs.get(&id).await? else { continue };
            let title = mrkdwn::escape(&job.name);
            let line = match job.status {
                JobStatus::Done => {
                    let links = self.pipeline.links(&job).await?;
                    let seconds = job.audio.as_ref().map(|a| a.seconds).unwrap_or_default();
                    match links.audio {
                        Some(audio) => format!("*{title}*: {seconds:.0} s, <{audio}|listen>"),
                        None => format!("*{title}*: {seconds:.0} s"),
                    }
                }
                JobStatus::NoText => format!("*{title}*: no text found on the page"),
                JobStatus::Failed => format!("*{title}*: could not be read"),
                other => format!("*{title}*: {}…", other.as_str().replace('_', " ")),
            };
            blocks.push(json!({ "type": "section", "text": { "type": "mrkdwn", "text": line } }));
            blocks.push(json!({ "type": "context", "elements": [{ "type": "mrkdwn", "text": format!("`{id}`") }] }));
        }
        if blocks.is_empty() {
            blocks.push(json!({ "type": "section", "text": { "type": "mrkdwn", "text":
                "No books yet. Share a photo of a page and it will show here." } }));
        }
        Ok(blocks)
    }

    /// Saves a change made on the Home tab; the answer for the user.
    pub(super) async fn home_action(&self, team: &str, user: &str, action: &Value) -> Result<String, PortError> {
        let key = user_key(team, user);
        let selected = action["selected_option"]["value"].as_str().unwrap_or_default();
        match action["action_id"].as_str().unwrap_or_default() {
            HOME_VOICE => {
                let mut prefs = self.pipeline.prefs.get(&key).await?;
                if selected == AUTO_VOICE {
                    prefs.voice = None;
                } else if let Some(v) = self.pipeline.narrator.voices().iter().find(|v| v.name == selected) {
                    prefs.voice = Some(v.name.clone());
                } else {
                    return Ok("I don't have that voice any more; pick another.".into());
                }
                self.pipeline.prefs.set(&key, &prefs).await?;
                Ok("Saved your voice.".into())
            }
            HOME_SPEED => {
                let Ok(speed) = selected.parse::<Speed>() else { return Ok("Pick a speed from the list.".into()) };
                let mut prefs = self.pipeline.prefs.get(&key).await?;
                prefs.speed = Some(speed).filter(|s| !s.is_normal());
                self.pipeline.prefs.set(&key, &prefs).await?;
                Ok(format!("Saved: I'll read to you at speed {speed}."))
            }
            HOME_EMAIL => {
                let address = action["value"].as_str().unwrap_or_default().trim();
                let arg = if address.is_empty() { "off" } else { address };
                // The same confirmation as `/storytime email`: a code first.
                self.email(&key, arg).await
            }
            _ => Ok(String::new()),
        }
    }
}
