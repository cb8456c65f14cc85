//! Blobs as files under `<data dir>/blobs`, written atomically (temporary
//! file, then rename) so a crash never leaves half a file under a key.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use super::media::MediaSigner;
use crate::domain::{BlobKey, PortError};
use crate::ports::BlobStore;

pub struct FsBlobStore {
    root: PathBuf,
    signer: MediaSigner,
}

impl FsBlobStore {
    pub fn new(root: PathBuf, signer: MediaSigner) -> Self {
        Self { root, signer }
    }

    pub fn signer(&self) -> &MediaSigner {
        &self.signer
    }

    fn path(&self, key: &BlobKey) -> PathBuf {
        // BlobKey only admits `prefix/name` with safe characters.
        self.root.join(key.as_str())
    }
}

fn io_error(what: &BlobKey, e: std::io::Error) -> PortError {
    match e.kind() {
        std::io::ErrorKind::NotFound => PortError::NotFound(what.to_string()),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::Interrupted | std::io::ErrorKind::TimedOut => {
            PortError::unavailable("the blob store", format!("{what}: {e}"))
        }
        _ => PortError::rejected("the blob store", format!("{what}: {e}")),
    }
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn put(&self, key: &BlobKey, bytes: Bytes) -> Result<(), PortError> {
        let path = self.path(key);
        let dir = path.parent().expect("keys have a prefix").to_owned();
        tokio::fs::create_dir_all(&dir).await.map_err(|e| io_error(key, e))?;
        let tmp = dir.join(format!(".{}.{}", key.file_name(), uuid::Uuid::new_v4().simple()));
        tokio::fs::write(&tmp, &bytes).await.map_err(|e| io_error(key, e))?;
        if let Err(e) = tokio::fs::rename(&tmp, &path).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(io_error(key, e));
        }
        Ok(())
    }

    async fn get(&self, key: &BlobKey) -> Result<Bytes, PortError> {
        tokio::fs::read(self.path(key)).await.map(Bytes::from).map_err(|e| io_error(key, e))
    }

    async fn exists(&self, key: &BlobKey) -> Result<bool, PortError> {
        tokio::fs::try_exists(self.path(key)).await.map_err(|e| io_error(key, e))
    }

    async fn link(&self, key: &BlobKey, ttl: Duration, download_name: &str) -> Result<String, PortError> {
        Ok(self.signer.link(key, ttl, download_name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ContentId;

    #[tokio::test]
    async fn blobs_round_trip_and_absent_ones_are_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::new(dir.path().to_owned(), MediaSigner::new(vec![1], "http://h"));
        let key = BlobKey::audio(&ContentId::of(b"k"));
        assert!(!store.exists(&key).await.unwrap());
        assert!(matches!(store.get(&key).await, Err(PortError::NotFound(_))));
        store.put(&key, Bytes::from_static(b"mp3")).await.unwrap();
        assert_eq!(store.get(&key).await.unwrap(), Bytes::from_static(b"mp3"));
        assert!(store.exists(&key).await.unwrap());
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("audio")).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary files remain");
    }
}
