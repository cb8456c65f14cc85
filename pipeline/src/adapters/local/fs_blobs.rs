//! Blobs as files under `<data dir>/blobs`, written atomically (temporary
//! file, then rename) so a crash never leaves half a file under a key, and
//! read as streams so serving a large file costs no memory.

use std::io::SeekFrom;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::domain::{BlobKey, PortError};
use crate::links::MediaLinks;
use crate::ports::{BlobRead, BlobStore, ByteRange};

pub struct FsBlobStore {
    root: PathBuf,
    links: MediaLinks,
}

impl FsBlobStore {
    /// Files under `root`; links to them are signed by `links`.
    pub fn new(root: PathBuf, links: MediaLinks) -> Self {
        Self { root, links }
    }

    fn path(&self, key: &BlobKey) -> PathBuf {
        // BlobKey only admits `prefix/name` with safe characters.
        self.root.join(key.as_str())
    }
}

fn io_error(what: &BlobKey, e: std::io::Error) -> PortError {
    if e.kind() == std::io::ErrorKind::NotFound {
        return PortError::not_found(what.to_string()).with_source(e);
    }
    let kind = PortError::io("the blob store", std::io::Error::from(e.kind())).kind();
    PortError::new(kind, "the blob store", format!("{what}: {e}")).with_source(e)
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn put(&self, key: &BlobKey, bytes: Bytes) -> Result<(), PortError> {
        let path = self.path(key);
        let dir = path.parent().expect("keys have a prefix").to_owned();
        tokio::fs::create_dir_all(&dir).await.map_err(|e| io_error(key, e))?;
        let tmp = dir.join(format!(".{}.{}", key.file_name(), uuid::Uuid::new_v4().simple()));
        // A write cut short (a full disk) leaves nothing behind.
        let written = match tokio::fs::write(&tmp, &bytes).await {
            Ok(()) => tokio::fs::rename(&tmp, &path).await,
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(io_error(key, e));
        }
        Ok(())
    }

    async fn get(&self, key: &BlobKey) -> Result<Bytes, PortError> {
        tokio::fs::read(self.path(key)).await.map(Bytes::from).map_err(|e| io_error(key, e))
    }

    async fn read(&self, key: &BlobKey, range: ByteRange) -> Result<BlobRead, PortError> {
        let mut file = tokio::fs::File::open(self.path(key)).await.map_err(|e| io_error(key, e))?;
        let total = file.metadata().await.map_err(|e| io_error(key, e))?.len();
        let span = range.within(total);
        let Some(bytes) = span.clone() else {
            return Ok(BlobRead { total, span, body: Box::pin(tokio::io::empty()) });
        };
        file.seek(SeekFrom::Start(bytes.start)).await.map_err(|e| io_error(key, e))?;
        Ok(BlobRead { total, span, body: Box::pin(file.take(bytes.end - bytes.start)) })
    }

    async fn exists(&self, key: &BlobKey) -> Result<bool, PortError> {
        tokio::fs::try_exists(self.path(key)).await.map_err(|e| io_error(key, e))
    }

    async fn link(&self, key: &BlobKey, ttl: Duration, download_name: &str) -> Result<String, PortError> {
        Ok(self.links.link(key, ttl, download_name))
    }

    async fn upload_link(&self, key: &BlobKey, ttl: Duration) -> Result<String, PortError> {
        Ok(self.links.upload_link(key, ttl))
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), PortError> {
        match tokio::fs::remove_file(self.path(key)).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_error(key, e)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ContentId;

    #[tokio::test]
    async fn blobs_round_trip_and_absent_ones_are_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::new(dir.path().to_owned(), MediaLinks::new(vec![1], "http://h"));
        crate::contract::blob_store(&store).await;
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("audio")).unwrap().collect();
        assert!(leftovers.is_empty(), "no temporary files remain: {leftovers:?}");
        let key = BlobKey::audio(&ContentId::of(b"absent"));
        assert_eq!(store.read(&key, ByteRange::All).await.err().map(|e| e.kind()), Some(crate::ErrorKind::NotFound));
    }
}
