//! Adapters on AWS, through the official SDK. The SDK's own settings apply:
//! region, the credentials chain, `AWS_ENDPOINT_URL` and
//! `AWS_ENDPOINT_URL_<SERVICE>` (so S3-compatible servers work too).

mod cdn;
mod cloud_reader;
mod config;
mod dynamodb;
mod polly;
mod rekognition;
mod s3;
mod sdk_errors;
mod secrets;
mod sns;
mod sqs;
mod textract;
mod uploads;

pub use cdn::{CdnSigner, canned_policy};
pub use cloud_reader::CloudReader;
pub use config::{http_client, sdk_config};
pub use dynamodb::DynamoJobStore;
pub use polly::PollyNarrator;
pub use rekognition::RekognitionReader;
pub use s3::S3BlobStore;
pub use secrets::{SECRET_SETTINGS, secret_settings};
pub use sns::SnsNotifier;
pub use sqs::SqsQueue;
pub use textract::TextractReader;
pub use uploads::UploadNotifications;
