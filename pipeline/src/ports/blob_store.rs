use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::domain::{BlobKey, PortError};

/// Stores originals, raw readings and audio by key.
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Writes a blob. Writing the same key again replaces it; keys are
    /// content-addressed, so a replacement holds the same content.
    async fn put(&self, key: &BlobKey, bytes: Bytes) -> Result<(), PortError>;

    /// Reads a blob; `PortError::NotFound` when it is absent.
    async fn get(&self, key: &BlobKey) -> Result<Bytes, PortError>;

    async fn exists(&self, key: &BlobKey) -> Result<bool, PortError>;

    /// A link anyone holding it can fetch the blob with, valid for `ttl`.
    /// `download_name` is the file name a browser should save it as.
    async fn link(&self, key: &BlobKey, ttl: Duration, download_name: &str) -> Result<String, PortError>;
}
