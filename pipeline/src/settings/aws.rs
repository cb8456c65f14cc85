//! The names of the AWS resources the AWS adapters use.

use std::time::Duration;

use super::env::{Env, Secret, SettingsError};

/// AWS resource names; each defaults to `storytime-…`. Region, credentials
/// and endpoints come from the SDK's standard settings (`AWS_REGION`,
/// `AWS_PROFILE`, `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsSettings {
    /// `STORYTIME_S3_BUCKET` (default `storytime-media`).
    pub bucket: String,
    /// `STORYTIME_SQS_PREFIX` (default `storytime-`): queue `<prefix><stage>`
    /// with its dead-letter queue `<prefix><stage>-dlq`.
    pub queue_prefix: String,
    /// `STORYTIME_DYNAMODB_TABLE` (default `storytime-jobs`).
    pub table: String,
    /// `STORYTIME_SNS_TOPIC` (default `storytime-results`): a topic name,
    /// or a full topic ARN.
    pub topic: String,
    /// `STORYTIME_SNS_SUBSCRIBE`: an address `storytime init` subscribes to
    /// the topic for the default recipients' mail.
    pub subscribe: Option<String>,
    /// `STORYTIME_CDN_URL`: a CloudFront domain in front of the bucket; media
    /// links go through it instead of presigned S3 links, signed with
    /// `STORYTIME_CDN_PRIVATE_KEY` (RSA, PEM) as the public key
    /// `STORYTIME_CDN_KEY_ID` of the distribution's trusted key group.
    pub cdn_url: Option<String>,
    pub cdn_key_id: Option<String>,
    pub cdn_private_key: Option<Secret>,
    /// `STORYTIME_POLLY_ENGINE` (default `neural`).
    pub polly_engine: String,
    /// `STORYTIME_JOB_TTL_DAYS` (default 30): DynamoDB removes job records
    /// this long after their last update.
    pub record_ttl: Duration,
}

impl AwsSettings {
    pub fn from_env(env: &Env) -> Result<Self, SettingsError> {
        let or = |name: &str, default: &str| env.get(name).unwrap_or_else(|| default.to_owned());
        let cdn_url = env.get("STORYTIME_CDN_URL");
        if cdn_url.as_ref().is_some_and(|u| !u.starts_with("https://") && !u.starts_with("http://")) {
            return Err(SettingsError::new("STORYTIME_CDN_URL", "must start with https:// (or http://)"));
        }
        let (cdn_key_id, cdn_private_key) = (env.get("STORYTIME_CDN_KEY_ID"), env.get("STORYTIME_CDN_PRIVATE_KEY"));
        if cdn_url.is_some() {
            let why = "is needed with STORYTIME_CDN_URL: links through CloudFront are signed so that they expire";
            if cdn_key_id.is_none() {
                return Err(SettingsError::new("STORYTIME_CDN_KEY_ID", why));
            }
            if cdn_private_key.is_none() {
                return Err(SettingsError::new("STORYTIME_CDN_PRIVATE_KEY", why));
            }
        }
        let polly_engine = or("STORYTIME_POLLY_ENGINE", "neural");
        if !["standard", "neural", "long-form", "generative"].contains(&polly_engine.as_str()) {
            return Err(SettingsError::new(
                "STORYTIME_POLLY_ENGINE",
                "must be standard, neural, long-form or generative",
            ));
        }
        Ok(Self {
            bucket: or("STORYTIME_S3_BUCKET", "storytime-media"),
            queue_prefix: or("STORYTIME_SQS_PREFIX", "storytime-"),
            table: or("STORYTIME_DYNAMODB_TABLE", "storytime-jobs"),
            topic: or("STORYTIME_SNS_TOPIC", "storytime-results"),
            subscribe: env.get("STORYTIME_SNS_SUBSCRIBE"),
            cdn_url: cdn_url.map(|u| u.trim_end_matches('/').to_owned()),
            cdn_key_id,
            cdn_private_key: cdn_private_key.map(Secret::new),
            polly_engine,
            record_ttl: Duration::from_secs(env.parse::<u64>("STORYTIME_JOB_TTL_DAYS", 30)? * 24 * 3600),
        })
    }
}
