//! The pipeline's chat port for Slack: the narration is uploaded into the
//! photo's thread so it plays inline, with the text and a link; failures
//! are explained in the thread. Reactions on the photo show the outcome.

use async_trait::async_trait;
use storytime_pipeline::ports::{ChatResult, Delivery, Messenger};
use storytime_pipeline::{Destination, PortError};

use super::api::SlackApi;
use super::inbound::PICKED_UP;
use super::mrkdwn::{escape, quote};

/// Longest page text quoted in the thread.
const QUOTE_CHARS: usize = 2500;

pub struct SlackMessenger {
    api: SlackApi,
}

impl SlackMessenger {
    pub fn new(api: SlackApi) -> Self {
        Self { api }
    }
}

#[async_trait]
impl Messenger for SlackMessenger {
    async fn deliver(&self, to: &Destination, result: &ChatResult, delivery: &Delivery) -> Result<(), PortError> {
        let Destination::Chat { channel, thread, message, .. } = to else {
            return Err(PortError::rejected("Slack", "not a chat destination"));
        };
        let key = &delivery.key;
        let done = outcome_reaction(result);
        if delivery.repeat && self.api.posted(channel, thread, key).await? {
            tracing::info!(key, "an earlier attempt delivered this already; not posting it again");
            metrics::counter!(storytime_pipeline::metrics::SLACK_REPEATS_AVOIDED).increment(1);
        } else {
            self.post(channel, thread, result, key).await?;
        }
        // The outcome is delivered; reactions are a courtesy.
        if let Err(e) = self.api.react(channel, message, done).await {
            tracing::warn!(error = %e, "could not add the outcome reaction");
        }
        if let Err(e) = self.api.unreact(channel, message, PICKED_UP).await {
            tracing::warn!(error = %e, "could not remove the picked-up reaction");
        }
        Ok(())
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

impl SlackMessenger {
    /// Posts the result into the thread, marked with `key`.
    async fn post(&self, channel: &str, thread: &str, result: &ChatResult, key: &str) -> Result<(), PortError> {
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
                self.api.upload_audio(channel, thread, audio.clone(), file_name, title, &comment, key).await?;
            }
            ChatResult::NoText { title } => {
                let text = format!(
                    "I couldn't find any text on *{}*. Try a closer, sharper photo of the page, in good light.",
                    escape(title)
                );
                self.api.post_marked(channel, thread, &text, key).await?;
            }
            ChatResult::Failed { title, reason } => {
                let text = format!("Sorry, I couldn't read *{}*: {}", escape(title), escape(reason));
                self.api.post_marked(channel, thread, &text, key).await?;
            }
        }
        Ok(())
    }
}
