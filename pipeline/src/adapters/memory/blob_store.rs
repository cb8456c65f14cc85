use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::domain::{BlobKey, PortError};
use crate::ports::BlobStore;

/// Blobs in a map; links are `memory://` addresses naming the key.
#[derive(Default)]
pub struct InMemoryBlobStore {
    blobs: Mutex<HashMap<BlobKey, Bytes>>,
}

impl InMemoryBlobStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// The keys stored so far.
    pub fn keys(&self) -> Vec<BlobKey> {
        let mut keys: Vec<BlobKey> = self.blobs.lock().expect("blobs lock").keys().cloned().collect();
        keys.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        keys
    }
}

#[async_trait]
impl BlobStore for InMemoryBlobStore {
    async fn put(&self, key: &BlobKey, bytes: Bytes) -> Result<(), PortError> {
        self.blobs.lock().expect("blobs lock").insert(key.clone(), bytes);
        Ok(())
    }

    async fn get(&self, key: &BlobKey) -> Result<Bytes, PortError> {
        self.blobs.lock().expect("blobs lock").get(key).cloned().ok_or_else(|| PortError::not_found(key.to_string()))
    }

    async fn exists(&self, key: &BlobKey) -> Result<bool, PortError> {
        Ok(self.blobs.lock().expect("blobs lock").contains_key(key))
    }

    async fn link(&self, key: &BlobKey, ttl: Duration, download_name: &str) -> Result<String, PortError> {
        let name = crate::links::percent_encode(download_name);
        Ok(format!("http://memory.invalid/{key}?ttl={}&name={name}", ttl.as_secs()))
    }

    async fn upload_link(&self, key: &BlobKey, ttl: Duration) -> Result<String, PortError> {
        Ok(format!("http://memory.invalid/{key}?ttl={}&put", ttl.as_secs()))
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), PortError> {
        self.blobs.lock().expect("blobs lock").remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_in_memory_blob_store_keeps_the_contract() {
        crate::contract::blob_store(&InMemoryBlobStore::new()).await;
    }
}
