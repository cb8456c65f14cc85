//! The pipeline's chat port for Slack: the narration is uploaded into the
//! photo's thread so it plays inline, with the text and a link; failures
//! are explained in the thread. Reactions on the photo show the outcome.

use async_trait::async_trait;
use storytime_pipeline::ports::{ChatResult, Messenger};
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
    async fn deliver(&self, to: &Destination, result: &ChatResult) -> Result<(), PortError> {
        let Destination::Chat { channel, thread, message, .. } = to else {
            return Err(PortError::rejected("Slack", "not a chat destination"));
        };
        let done = match result {
            ChatResult::Narrated { title, text, truncated, audio, file_name, seconds, link } => {
                let mut comment =
                    format!("Here is *{}* read aloud ({:.0} s).\n{}", escape(title), seconds, quote(text, QUOTE_CHARS));
                if *truncated {
                    comment.push_str("\n_The page was long; the narration stops at the length limit._");
                }
                if !link.is_empty() {
                    comment.push_str(&format!("\n<{link}|Download the MP3>"));
                }
                self.api.upload_audio(channel, thread, audio.clone(), file_name, title, &comment).await?;
                "white_check_mark"
            }
            ChatResult::NoText { title } => {
                let text = format!(
                    "I couldn't find any text on *{}*. Try a closer, sharper photo of the page, in good light.",
                    escape(title)
                );
                self.api.post(channel, thread, &text).await?;
                "grey_question"
            }
            ChatResult::Failed { title, reason } => {
                self.api
                    .post(channel, thread, &format!("Sorry, I couldn't read *{}*: {}", escape(title), escape(reason)))
                    .await?;
                "x"
            }
        };
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
