use std::ops::Range;
use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::AsyncRead;

use crate::domain::{BlobKey, PortError};

/// Which bytes of a blob to read, as an HTTP `Range` header names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// The whole blob.
    All,
    /// From `start` to `end` inclusive (or to the last byte).
    From { start: u64, end: Option<u64> },
    /// The last `n` bytes.
    Last(u64),
}

impl ByteRange {
    /// The bytes this range covers in a blob of `total` bytes, or `None`
    /// when it lies outside the blob.
    pub fn within(self, total: u64) -> Option<Range<u64>> {
        match self {
            Self::All => Some(0..total),
            Self::From { start, end } => {
                let end = end.map_or(total, |e| e.saturating_add(1).min(total));
                (start < end).then_some(start..end)
            }
            Self::Last(n) => (n > 0 && total > 0).then(|| total.saturating_sub(n)..total),
        }
    }
}

/// A blob being read: its size and a stream of the bytes asked for.
pub struct BlobRead {
    /// The whole blob's size in bytes.
    pub total: u64,
    /// The bytes `body` yields; `None` when the range asked for lies
    /// outside the blob (then `body` is empty).
    pub span: Option<Range<u64>>,
    pub body: Pin<Box<dyn AsyncRead + Send>>,
}

impl BlobRead {
    /// A read served from bytes already in memory.
    pub fn from_bytes(bytes: Bytes, range: ByteRange) -> Self {
        let total = bytes.len() as u64;
        let span = range.within(total);
        let part = span.clone().map(|s| bytes.slice(s.start as usize..s.end as usize)).unwrap_or_default();
        Self { total, span, body: Box::pin(std::io::Cursor::new(part)) }
    }
}

/// Stores originals, raw readings and audio by key.
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Writes a blob. Writing the same key again replaces it; keys are
    /// content-addressed, so a replacement holds the same content.
    async fn put(&self, key: &BlobKey, bytes: Bytes) -> Result<(), PortError>;

    /// Reads a blob whole; a `NotFound` error when it is absent.
    async fn get(&self, key: &BlobKey) -> Result<Bytes, PortError>;

    /// Streams part of a blob without holding it in memory; a `NotFound`
    /// error when it is absent. Stores that cannot stream read it whole.
    async fn read(&self, key: &BlobKey, range: ByteRange) -> Result<BlobRead, PortError> {
        Ok(BlobRead::from_bytes(self.get(key).await?, range))
    }

    async fn exists(&self, key: &BlobKey) -> Result<bool, PortError>;

    /// A link anyone holding it can fetch the blob with, valid for `ttl`.
    /// `download_name` is the file name a browser should save it as.
    async fn link(&self, key: &BlobKey, ttl: Duration, download_name: &str) -> Result<String, PortError>;

    /// A link a client can `PUT` the blob's bytes to, valid for `ttl`: how
    /// a photo too large to pass through the API reaches storage.
    async fn upload_link(&self, key: &BlobKey, ttl: Duration) -> Result<String, PortError> {
        let _ = ttl;
        Err(PortError::rejected("the blob store", format!("{key}: this store takes no uploads from clients")))
    }

    /// Removes a blob; removing an absent one is no error.
    async fn delete(&self, key: &BlobKey) -> Result<(), PortError>;
}

#[cfg(test)]
mod tests {
    use super::ByteRange;

    #[test]
    fn ranges_are_bounded_by_the_blob() {
        let from = |start, end| ByteRange::From { start, end };
        assert_eq!(ByteRange::All.within(100), Some(0..100));
        assert_eq!(from(0, Some(9)).within(100), Some(0..10));
        assert_eq!(from(90, None).within(100), Some(90..100));
        assert_eq!(from(50, Some(500)).within(100), Some(50..100));
        assert_eq!(ByteRange::Last(10).within(100), Some(90..100));
        assert_eq!(ByteRange::Last(500).within(100), Some(0..100));
        assert_eq!(from(100, None).within(100), None);
        assert_eq!(from(10, Some(5)).within(100), None);
        assert_eq!(ByteRange::Last(0).within(100), None);
        assert_eq!(ByteRange::Last(5).within(0), None);
        assert_eq!(from(0, Some(u64::MAX)).within(7), Some(0..7));
    }
}
