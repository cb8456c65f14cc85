//! Blobs in an S3 bucket: originals, raw readings and audio under their
//! keys. Links go through a CloudFront domain when one is configured
//! (`STORYTIME_CDN_URL`; the bucket stays private behind origin access
//! control), signed so that they expire; otherwise they are presigned S3
//! GET links with the same expiry.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;

use super::cdn::CdnSigner;
use super::sdk_errors::classify;
use crate::domain::{BlobKey, ErrorKind, PortError};
use crate::ports::BlobStore;
use crate::setup::{Ensured, Finding, Setup};

const WHAT: &str = "the S3 bucket";

pub struct S3BlobStore {
    client: Client,
    bucket: String,
    cdn: Option<CdnSigner>,
}

impl S3BlobStore {
    /// A store on `bucket`. With an endpoint of its own (an S3-compatible
    /// server, moto) addressing is path-style, as such servers expect.
    pub fn new(config: &aws_config::SdkConfig, bucket: impl Into<String>, cdn: Option<CdnSigner>) -> Self {
        let custom_endpoint = config.endpoint_url().is_some() || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
        let s3 = aws_sdk_s3::config::Builder::from(config).force_path_style(custom_endpoint).build();
        Self { client: Client::from_conf(s3), bucket: bucket.into(), cdn }
    }

    /// Whether the bucket exists and this role may use it.
    pub async fn check(&self) -> Result<(), PortError> {
        match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Err(PortError::new(
                ErrorKind::Missing,
                WHAT,
                format!("bucket {} does not exist (run `storytime init`)", self.bucket),
            )),
            Err(e) => Err(classify(WHAT, e)),
        }
    }

    /// Creates the bucket if it is missing (for `storytime init`; running
    /// it again changes nothing). Returns whether it was created.
    pub async fn ensure_bucket(&self) -> Result<bool, PortError> {
        match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => return Ok(false),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => {}
            Err(e) => return Err(classify(WHAT, e)),
        }
        match self.client.create_bucket().bucket(&self.bucket).send().await {
            Ok(_) => Ok(true),
            // Someone else created it in between.
            Err(e) if e.as_service_error().is_some_and(|s| s.is_bucket_already_owned_by_you()) => Ok(false),
            Err(e) => Err(classify(WHAT, e)),
        }
    }
}

/// The media type a browser or Slack should see for a key.
fn content_type(key: &BlobKey) -> &'static str {
    match key.file_name().rsplit_once('.').map(|(_, ext)| ext) {
        Some("mp3") => "audio/mpeg",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("webp") => "image/webp",
        Some("gif") => "image/gif",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put(&self, key: &BlobKey, bytes: Bytes) -> Result<(), PortError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .content_type(content_type(key))
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| classify(WHAT, e))?;
        Ok(())
    }

    async fn get(&self, key: &BlobKey) -> Result<Bytes, PortError> {
        let object = match self.client.get_object().bucket(&self.bucket).key(key.as_str()).send().await {
            Ok(object) => object,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                return Err(PortError::not_found(key.to_string()));
            }
            Err(e) => return Err(classify(WHAT, e)),
        };
        let body = object.body.collect().await.map_err(|e| PortError::unavailable(WHAT, format!("{key}: {e}")))?;
        Ok(body.into_bytes())
    }

    /// A presigned `PutObject`: the client sends the photo to S3 itself.
    async fn upload_link(&self, key: &BlobKey, ttl: Duration) -> Result<String, PortError> {
        let presigning = PresigningConfig::expires_in(ttl).map_err(|e| PortError::rejected(WHAT, e))?;
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .presigned(presigning)
            .await
            .map_err(|e| classify(WHAT, e))?;
        Ok(request.uri().to_owned())
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), PortError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .send()
            .await
            .map_err(|e| classify(WHAT, e))?;
        Ok(())
    }

    async fn exists(&self, key: &BlobKey) -> Result<bool, PortError> {
        match self.client.head_object().bucket(&self.bucket).key(key.as_str()).send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(false),
            Err(e) => Err(classify(WHAT, e)),
        }
    }

    async fn link(&self, key: &BlobKey, ttl: Duration, download_name: &str) -> Result<String, PortError> {
        if let Some(cdn) = &self.cdn {
            return Ok(cdn.sign(key.as_str(), ttl));
        }
        let presigning = PresigningConfig::expires_in(ttl).map_err(|e| PortError::rejected(WHAT, e))?;
        let disposition = format!("inline; filename=\"{}\"", download_name.replace(['"', '\\'], "_"));
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .response_content_disposition(disposition)
            .presigned(presigning)
            .await
            .map_err(|e| classify(WHAT, e))?;
        Ok(request.uri().to_owned())
    }
}

#[async_trait]
impl Setup for S3BlobStore {
    async fn ensure(&self) -> Result<Vec<Ensured>, PortError> {
        Ok(vec![Ensured::new(self.ensure_bucket().await?, "bucket", &self.bucket)])
    }

    async fn check(&self) -> Vec<Finding> {
        let resource = format!("bucket {}", self.bucket);
        vec![Finding::of("s3", resource, self.check().await, "s3:ListBucket on the bucket")]
    }
}
