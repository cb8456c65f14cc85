//! Email through an SNS topic: each result is published once; the topic's
//! email subscriptions deliver it. The addressee travels as the message
//! attribute `to` (`default` for the service's own recipients), and every
//! subscription filters on it, so each address gets only its own mail.
//!
//! A user's own address is subscribed the first time mail is sent to it.
//! SNS asks the address to confirm and delivers nothing to it before then,
//! so mail published before the confirmation (usually the first result)
//! does not reach it; direct mail to unconfirmed addresses would need SES.

use async_trait::async_trait;
use aws_sdk_sns::Client;
use aws_sdk_sns::types::MessageAttributeValue;
use std::collections::HashSet;
use std::sync::Mutex;

use tokio::sync::OnceCell;

use super::sdk_errors::classify;
use crate::domain::PortError;
use crate::ports::{Email, Notifier};
use crate::setup::{Ensured, Finding, Setup};

const WHAT: &str = "the SNS topic";
/// SNS's limits: a subject under 100 characters, a message of 256 KiB.
const MAX_SUBJECT: usize = 99;
const MAX_MESSAGE: usize = 256 * 1024;

pub struct SnsNotifier {
    client: Client,
    /// A topic name or ARN, as configured.
    topic: String,
    arn: OnceCell<String>,
    /// An address `storytime init` subscribes for the default recipients.
    subscribe: Option<String>,
    /// Addresses known to be subscribed (or just subscribed by us).
    subscribed: Mutex<HashSet<String>>,
}

impl SnsNotifier {
    pub fn new(config: &aws_config::SdkConfig, topic: impl Into<String>) -> Self {
        let topic = topic.into();
        let arn = OnceCell::new();
        if topic.starts_with("arn:") {
            let _ = arn.set(topic.clone());
        }
        Self { client: Client::new(config), topic, arn, subscribe: None, subscribed: Mutex::default() }
    }

    /// The address `storytime init` subscribes to the topic for mail to
    /// the default recipients.
    pub fn subscribing(mut self, address: Option<String>) -> Self {
        self.subscribe = address;
        self
    }

    /// The topic's ARN, found by name among the account's topics.
    pub async fn arn(&self) -> Result<&str, PortError> {
        let arn = self
            .arn
            .get_or_try_init(|| async {
                let suffix = format!(":{}", self.topic);
                let mut next = None;
                loop {
                    let out =
                        self.client.list_topics().set_next_token(next).send().await.map_err(|e| classify(WHAT, e))?;
                    if let Some(arn) = out.topics().iter().filter_map(|t| t.topic_arn()).find(|a| a.ends_with(&suffix))
                    {
                        return Ok(arn.to_owned());
                    }
                    next = out.next_token;
                    if next.is_none() {
                        return Err(PortError::rejected(
                            WHAT,
                            format!("topic {} does not exist (run `storytime init`)", self.topic),
                        ));
                    }
                }
            })
            .await?;
        Ok(arn)
    }

    /// Subscribes `address` for mail sent to it, unless it already is.
    async fn ensure_subscribed(&self, arn: &str, address: &str) -> Result<(), PortError> {
        let key = address.to_ascii_lowercase();
        if self.subscribed.lock().expect("not poisoned").contains(&key) {
            return Ok(());
        }
        let mut next = None;
        loop {
            let out = self
                .client
                .list_subscriptions_by_topic()
                .topic_arn(arn)
                .set_next_token(next)
                .send()
                .await
                .map_err(|e| classify(WHAT, e))?;
            let mut known = self.subscribed.lock().expect("not poisoned");
            known.extend(out.subscriptions().iter().filter_map(|s| s.endpoint()).map(str::to_ascii_lowercase));
            if known.contains(&key) {
                return Ok(());
            }
            drop(known);
            next = out.next_token;
            if next.is_none() {
                break;
            }
        }
        let policy = serde_json::json!({ "to": [address] }).to_string();
        self.client
            .subscribe()
            .topic_arn(arn)
            .protocol("email")
            .endpoint(address)
            .attributes("FilterPolicy", policy)
            .send()
            .await
            .map_err(|e| classify(WHAT, e))?;
        tracing::info!("subscribed a new address to the email topic; it must confirm before mail arrives");
        self.subscribed.lock().expect("not poisoned").insert(key);
        Ok(())
    }

    /// Creates the topic when missing (idempotent) and, when `subscribe` is
    /// given, subscribes that address for the default recipients' mail.
    pub async fn ensure_topic(&self, subscribe: Option<&str>) -> Result<String, PortError> {
        let name = self.topic.rsplit(':').next().unwrap_or(&self.topic);
        let out = self.client.create_topic().name(name).send().await.map_err(|e| classify(WHAT, e))?;
        let arn = out.topic_arn.ok_or_else(|| PortError::rejected(WHAT, "created without an ARN"))?;
        if let Some(address) = subscribe {
            self.client
                .subscribe()
                .topic_arn(&arn)
                .protocol("email")
                .endpoint(address)
                .attributes("FilterPolicy", r#"{"to":["default"]}"#)
                .send()
                .await
                .map_err(|e| classify(WHAT, e))?;
        }
        Ok(arn)
    }
}

/// A subject SNS accepts: one line, no control characters, under 100.
fn clean_subject(subject: &str) -> String {
    let one_line: String = subject.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let trimmed = one_line.trim();
    if trimmed.chars().count() <= MAX_SUBJECT {
        return trimmed.to_owned();
    }
    let mut cut: String = trimmed.chars().take(MAX_SUBJECT - 1).collect();
    cut.push('…');
    cut
}

/// The message within SNS's size limit, cut at a character boundary.
fn clamp_message(body: &str) -> &str {
    if body.len() <= MAX_MESSAGE {
        return body;
    }
    let mut end = MAX_MESSAGE;
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    &body[..end]
}

#[async_trait]
impl Notifier for SnsNotifier {
    async fn notify(&self, email: &Email) -> Result<(), PortError> {
        let arn = self.arn().await?;
        if let Some(address) = &email.to {
            self.ensure_subscribed(arn, address).await?;
        }
        let to = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(email.to.as_deref().unwrap_or("default"))
            .build()
            .map_err(|e| PortError::rejected(WHAT, e))?;
        self.client
            .publish()
            .topic_arn(arn)
            .subject(clean_subject(&email.subject))
            .message(clamp_message(&email.body))
            .message_attributes("to", to)
            .send()
            .await
            .map_err(|e| classify(WHAT, e))?;
        Ok(())
    }
}

#[async_trait]
impl Setup for SnsNotifier {
    async fn ensure(&self) -> Result<Vec<Ensured>, PortError> {
        let arn = self.ensure_topic(self.subscribe.as_deref()).await?;
        let mut done = vec![Ensured::ready("topic", arn)];
        if let Some(address) = &self.subscribe {
            done.push(Ensured::ready("mail to", format!("{address} (it must confirm from the email AWS sends)")));
        }
        Ok(done)
    }

    async fn check(&self) -> Vec<Finding> {
        let resource = format!("topic {}", self.topic);
        let permission = "sns:ListTopics, or set STORYTIME_SNS_TOPIC to the topic's ARN";
        vec![Finding::of("sns", resource, self.arn().await.map(drop), permission)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_one_short_line() {
        assert_eq!(clean_subject("Your story\r\nis ready"), "Your story  is ready");
        let long = clean_subject(&"é".repeat(150));
        assert_eq!(long.chars().count(), MAX_SUBJECT);
        assert!(long.ends_with('…'));
    }

    #[test]
    fn messages_are_cut_at_a_character_boundary() {
        let body = "한".repeat(MAX_MESSAGE);
        let cut = clamp_message(&body);
        assert!(cut.len() <= MAX_MESSAGE && cut.len() > MAX_MESSAGE - 3);
        assert_eq!(clamp_message("short"), "short");
    }
}
