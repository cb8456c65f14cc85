//! The pipeline's chat port for Slack: the narration is uploaded into the
//! photo's thread so it plays inline, with the text and a link; failures
//! are explained in the thread. Reactions on the photo show the outcome.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};
use storytime_pipeline::ports::{ChatResult, Delivery, Messenger, Progress, Voice};
use storytime_pipeline::{Destination, ErrorKind, PortError};

use super::api::SlackApi;
use super::inbound::PICKED_UP;
use super::installs::Workspaces;
use super::interactions::{CONTROLS_BLOCK, EMAIL, SLOWER, VOICE};
use super::mrkdwn::{escape, quote};

/// Longest page text quoted in the thread.
const QUOTE_CHARS: usize = 2500;

pub struct SlackMessenger {
    workspaces: Arc<Workspaces>,
    /// The voices offered on a result's voice menu.
    voices: Vec<Voice>,
}

impl SlackMessenger {
    pub fn new(workspaces: Arc<Workspaces>, voices: Vec<Voice>) -> Self {
        Self { workspaces, voices }
    }

    /// What a result offers next: its job ID, and buttons to hear it
    /// slower, in another voice, or by email.
    fn controls(&self, job: &str, headline: &str) -> (String, Value) {
        let options: Vec<Value> = self
            .voices
            .iter()
            .take(100)
            .map(|v| json!({ "text": { "type": "plain_text", "text": format!("{} ({})", v.name, v.language.code()) }, "value": v.name }))
            .collect();
        let mut elements = vec![json!({
            "type": "button", "action_id": SLOWER, "value": job, "text": { "type": "plain_text", "text": "Slower" }
        })];
        if !options.is_empty() {
            elements.push(json!({
                "type": "static_select", "action_id": VOICE,
                "placeholder": { "type": "plain_text", "text": "Another voice" }, "options": options
            }));
        }
        elements.push(json!({
            "type": "button", "action_id": EMAIL, "value": job, "text": { "type": "plain_text", "text": "Email me" }
        }));
        let text = format!("{headline} Job `{job}`");
        let blocks = json!([
            { "type": "section", "text": { "type": "mrkdwn", "text": text } },
            { "type": "actions", "block_id": format!("{CONTROLS_BLOCK}{job}"), "elements": elements },
        ]);
        (text, blocks)
    }
}

#[async_trait]
impl Messenger for SlackMessenger {
    async fn deliver(&self, to: &Destination, result: &ChatResult, delivery: &Delivery) -> Result<(), PortError> {
        let Destination::Chat { workspace, channel, thread, message, .. } = to else {
            return Err(PortError::rejected("Slack", "not a chat destination"));
        };
        // A workspace that uninstalled the app has no token: final, so the
        // result goes by email.
        let api = self.workspaces.api(workspace).await?;
        let delivered = async {
            let key = &delivery.key;
            if delivery.repeat && api.posted(channel, thread, key).await? {
                tracing::info!(key, "an earlier attempt delivered this already; not posting it again");
                metrics::counter!(storytime_pipeline::metrics::SLACK_REPEATS_AVOIDED).increment(1);
            } else {
                post(&api, channel, thread, result, delivery).await?;
            }
            // The outcome is delivered; the rest is a courtesy.
            if let Err(e) = self.offer_next(&api, to, result, delivery).await {
                tracing::warn!(error = %e, "could not show what to do next with the result");
            }
            if let Err(e) = api.react(channel, message, outcome_reaction(result)).await {
                tracing::warn!(error = %e, "could not add the outcome reaction");
            }
            if let Err(e) = api.unreact(channel, message, PICKED_UP).await {
                tracing::warn!(error = %e, "could not remove the picked-up reaction");
            }
            Ok(())
        };
        self.unless_token_replaced(&api, delivered.await).await
    }

    async fn progress(&self, to: &Destination, step: Progress) -> Result<(), PortError> {
        let Destination::Chat { workspace, channel, status: Some(ts), .. } = to else { return Ok(()) };
        let api = self.workspaces.api(workspace).await?;
        let shown = api.update(channel, ts, &progress_text(step), None).await.map(drop).map_err(PortError::from);
        self.unless_token_replaced(&api, shown).await
    }
}

impl SlackMessenger {
    /// `outcome` of work done with `api`, unless Slack refused a bot token
    /// that has been replaced since: then an error that has the work tried
    /// again, with the new token, rather than given up on.
    async fn unless_token_replaced(&self, api: &SlackApi, outcome: Result<(), PortError>) -> Result<(), PortError> {
        match outcome {
            Err(e) if e.kind() == ErrorKind::AccessDenied => {
                Err(self.workspaces.replaced_token(api).await.unwrap_or(e))
            }
            outcome => outcome,
        }
    }

    /// Ends the thread's status line with the outcome, and offers what can
    /// be done next with a narration (its own message, under the result).
    async fn offer_next(
        &self,
        api: &SlackApi,
        to: &Destination,
        result: &ChatResult,
        delivery: &Delivery,
    ) -> Result<(), PortError> {
        let Destination::Chat { channel, thread, status, .. } = to else { return Ok(()) };
        let job = &delivery.job;
        let summary = match result {
            ChatResult::Narrated { seconds, .. } => format!("Done: {seconds:.0} s read aloud below."),
            ChatResult::NoText { .. } => "Done: no text found on the page.".to_owned(),
            ChatResult::Failed { .. } => "Could not read the page.".to_owned(),
        };
        if let Some(ts) = status {
            api.update(channel, ts, &summary, None).await?;
        }
        if let ChatResult::Narrated { .. } = result {
            // Its own message, named for the delivery: posted once.
            let key = format!("{}-next", delivery.key);
            if !(delivery.repeat && api.posted(channel, thread, &key).await?) {
                let (text, mut blocks) = self.controls(job, "Hear it again slower, in another voice, or by email.");
                blocks[0]["block_id"] = json!(key);
                api.post_blocks(channel, thread, &text, Some(blocks)).await?;
            }
        }
        Ok(())
    }
}

/// What the status line says while the work goes on.
pub(super) fn progress_text(step: Progress) -> String {
    match step {
        Progress::Reading { page: 1, of: 1 } => "Reading the page…".to_owned(),
        Progress::Reading { page, of } => format!("Reading page {page} of {of}…"),
        Progress::Narrating => "Narrating…".to_owned(),
    }
}

/// The reaction left on the photo once its result is in the thread.
fn outcome_reaction(result: &ChatResult) -> &'static str {
    match result {
        ChatResult::Narrated { .. } => "white_check_mark",
        ChatResult::NoText { .. } => "grey_question",
        ChatResult::Failed { .. } => "x",
    }
}

/// Posts the result into the thread, marked with the delivery's key, with
/// the job's ID (for `/storytime status`).
async fn post(
    api: &SlackApi,
    channel: &str,
    thread: &str,
    result: &ChatResult,
    delivery: &Delivery,
) -> Result<(), PortError> {
    let (key, job) = (&delivery.key, &delivery.job);
    match result {
        ChatResult::Narrated { title, text, truncated, audio, file_name, seconds, link } => {
            let mut comment =
                format!("Here is *{}* read aloud ({:.0} s).\n{}", escape(title), seconds, quote(text, QUOTE_CHARS));
            if *truncated {
                comment.push_str("\n_The page was long; the narration stops at the length limit._");
            }
            if !link.is_empty() {
                comment.push_str(&format!("\n<{link}|Download the MP3>"));
            }
            comment.push_str(&format!("\nJob `{job}`"));
            api.upload_audio(channel, thread, audio.clone(), file_name, title, &comment, key).await?;
        }
        ChatResult::NoText { title } => {
            let text = format!(
                "I couldn't find any text on *{}*. Try a closer, sharper photo of the page, in good light.\nJob `{job}`",
                escape(title)
            );
            api.post_marked(channel, thread, &text, key).await?;
        }
        ChatResult::Failed { title, reason } => {
            let text = format!("Sorry, I couldn't read *{}*: {}\nJob `{job}`", escape(title), escape(reason));
            api.post_marked(channel, thread, &text, key).await?;
        }
    }
    Ok(())
}
