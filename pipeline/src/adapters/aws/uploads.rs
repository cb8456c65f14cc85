//! Photos uploaded straight to the bucket (`POST /uploads`) are noticed
//! through S3 event notifications: every object created under `incoming/`
//! is announced on the inbound queue, whose policy lets the bucket send.
//! `storytime init` sets this up for a long-running deployment; the SAM
//! template declares the same for Lambda.

use aws_sdk_s3::types::{
    Event, FilterRule, FilterRuleName, NotificationConfiguration, NotificationConfigurationFilter, QueueConfiguration,
    S3KeyFilter,
};
use aws_sdk_sqs::types::QueueAttributeName;

use super::sdk_errors::classify;
use crate::domain::{PortError, Stage};
use crate::setup::{Ensured, Finding, Setup};

const WHAT: &str = "the upload notifications";
const PREFIX: &str = "incoming/";

pub struct UploadNotifications {
    s3: aws_sdk_s3::Client,
    sqs: aws_sdk_sqs::Client,
    bucket: String,
    queue: String,
}

impl UploadNotifications {
    /// Notifications from `bucket` to the inbound queue of `queue_prefix`.
    pub fn new(config: &aws_config::SdkConfig, bucket: &str, queue: &super::SqsQueue) -> Self {
        Self {
            s3: aws_sdk_s3::Client::new(config),
            sqs: aws_sdk_sqs::Client::new(config),
            bucket: bucket.to_owned(),
            queue: queue.name(Stage::Inbound, false),
        }
    }

    /// The inbound queue's URL and ARN.
    async fn queue(&self) -> Result<(String, String), PortError> {
        let url = self.sqs.get_queue_url().queue_name(&self.queue).send().await.map_err(|e| classify(WHAT, e))?;
        let url = url.queue_url.ok_or_else(|| PortError::rejected(WHAT, format!("{} has no URL", self.queue)))?;
        let arn = super::sqs::queue_arn(&self.sqs, &url, &self.queue).await?;
        Ok((url, arn))
    }

    /// Whether the bucket announces new `incoming/` objects on `queue_arn`.
    async fn configured(&self, queue_arn: &str) -> Result<bool, PortError> {
        let out = match self.s3.get_bucket_notification_configuration().bucket(&self.bucket).send().await {
            Ok(out) => out,
            // An answer without an error code that the SDK cannot read:
            // S3 emulators (moto) answer a bucket without notifications
            // with an empty document under another root element.
            Err(e) if e.as_service_error().is_some_and(|s| s.meta().code().is_none()) => return Ok(false),
            Err(e) => return Err(classify(WHAT, e)),
        };
        Ok(out.queue_configurations().iter().any(|q| {
            let prefix = q
                .filter()
                .and_then(|f| f.key())
                .map(|k| k.filter_rules())
                .unwrap_or_default()
                .iter()
                .any(|r| r.name() == Some(&FilterRuleName::Prefix) && r.value() == Some(PREFIX));
            q.queue_arn() == queue_arn && prefix
        }))
    }
}

fn build_error(e: impl std::fmt::Display) -> PortError {
    PortError::rejected(WHAT, e)
}

#[async_trait::async_trait]
impl Setup for UploadNotifications {
    async fn ensure(&self) -> Result<Vec<Ensured>, PortError> {
        let (url, arn) = self.queue().await?;
        let what = format!("{} {PREFIX}* to {}", self.bucket, self.queue);
        if self.configured(&arn).await? {
            return Ok(vec![Ensured::new(false, "upload notifications", what)]);
        }
        // The partition (aws, aws-cn, …) is the queue's.
        let partition = arn.split(':').nth(1).unwrap_or("aws");
        let policy = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "BucketAnnouncesUploads",
                "Effect": "Allow",
                "Principal": { "Service": "s3.amazonaws.com" },
                "Action": "sqs:SendMessage",
                "Resource": arn,
                "Condition": { "ArnEquals": { "aws:SourceArn": format!("arn:{partition}:s3:::{}", self.bucket) } }
            }]
        });
        self.sqs
            .set_queue_attributes()
            .queue_url(&url)
            .attributes(QueueAttributeName::Policy, policy.to_string())
            .send()
            .await
            .map_err(|e| classify(WHAT, e))?;
        let rule = FilterRule::builder().name(FilterRuleName::Prefix).value(PREFIX).build();
        let filter =
            NotificationConfigurationFilter::builder().key(S3KeyFilter::builder().filter_rules(rule).build()).build();
        let queue = QueueConfiguration::builder()
            .id("storytime-uploads")
            .queue_arn(arn)
            .events(Event::S3ObjectCreated)
            .filter(filter)
            .build()
            .map_err(build_error)?;
        self.s3
            .put_bucket_notification_configuration()
            .bucket(&self.bucket)
            .notification_configuration(NotificationConfiguration::builder().queue_configurations(queue).build())
            .send()
            .await
            .map_err(|e| classify(WHAT, e))?;
        Ok(vec![Ensured::new(true, "upload notifications", what)])
    }

    async fn check(&self) -> Vec<Finding> {
        let what = format!("bucket {} announcing {PREFIX}* on {}", self.bucket, self.queue);
        let result = match self.queue().await {
            Ok((_, arn)) => match self.configured(&arn).await {
                Ok(true) => Ok(()),
                Ok(false) => Err(PortError::not_found(format!(
                    "no notification for {PREFIX}* to {}: photos sent to /uploads links would wait forever",
                    self.queue
                ))),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        vec![Finding::of("s3", what, result, "s3:GetBucketNotification on the bucket")]
    }
}
