//! The blob store contract.

use bytes::Bytes;
use tokio::io::AsyncReadExt;

use crate::domain::{BlobKey, ContentId, ErrorKind};
use crate::ports::{BlobRead, BlobStore, ByteRange};

async fn drain(read: BlobRead) -> Vec<u8> {
    let mut out = Vec::new();
    let mut body = read.body;
    body.read_to_end(&mut out).await.expect("the blob streams");
    out
}

/// Runs every blob-store check; the keys are unique to these checks.
pub async fn blob_store(store: &dyn BlobStore) {
    let key = BlobKey::audio(&ContentId::of(b"the blob store contract"));
    let absent = BlobKey::audio(&ContentId::of(b"never written"));

    // Absent blobs are not found, whichever way they are asked for.
    assert!(!store.exists(&absent).await.unwrap());
    assert_eq!(store.get(&absent).await.map_err(|e| e.kind()).err(), Some(ErrorKind::NotFound));
    assert_eq!(store.read(&absent, ByteRange::All).await.err().map(|e| e.kind()), Some(ErrorKind::NotFound));

    // Written blobs come back whole, and writing again replaces them.
    let content = Bytes::from_static(b"0123456789abcdefghij");
    store.put(&key, Bytes::from_static(b"an earlier copy")).await.unwrap();
    store.put(&key, content.clone()).await.unwrap();
    assert!(store.exists(&key).await.unwrap());
    assert_eq!(store.get(&key).await.unwrap(), content);

    // Reads stream the range asked for and tell the whole size.
    let whole = store.read(&key, ByteRange::All).await.unwrap();
    assert_eq!((whole.total, whole.span.clone()), (20, Some(0..20)));
    assert_eq!(drain(whole).await, content.as_ref());
    let part = store.read(&key, ByteRange::From { start: 5, end: Some(9) }).await.unwrap();
    assert_eq!(part.span, Some(5..10));
    assert_eq!(drain(part).await, b"56789");
    assert_eq!(drain(store.read(&key, ByteRange::Last(3)).await.unwrap()).await, b"hij");
    let outside = store.read(&key, ByteRange::From { start: 20, end: None }).await.unwrap();
    assert_eq!((outside.total, outside.span.clone()), (20, None));
    assert!(drain(outside).await.is_empty());

    // A link names the blob for whoever holds it.
    let link = store.link(&key, std::time::Duration::from_secs(60), "story.mp3").await.unwrap();
    assert!(link.starts_with("http"), "{link}");

    // Deleting removes the blob; deleting it again is no error.
    store.delete(&key).await.unwrap();
    assert!(!store.exists(&key).await.unwrap());
    store.delete(&key).await.unwrap();
}
