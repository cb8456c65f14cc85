//! The S3 blob store against moto on loopback.

use std::time::Duration;

use bytes::Bytes;
use storytime_pipeline::adapters::aws::{CdnSigner, S3BlobStore, canned_policy};
use storytime_pipeline::contract;
use storytime_pipeline::ports::BlobStore;
use storytime_pipeline::{BlobKey, ContentId, ErrorKind};
use storytime_tests::moto::Moto;

fn audio_key() -> BlobKey {
    BlobKey::audio(&ContentId::of(b"a narration"))
}

#[tokio::test]
async fn blobs_round_trip_through_a_bucket_and_links_fetch_them() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let store = S3BlobStore::new(&config, "storytime-test", None);
    assert!(store.ensure_bucket().await.unwrap(), "created");
    assert!(!store.ensure_bucket().await.unwrap(), "a second run changes nothing");

    let key = audio_key();
    assert!(!store.exists(&key).await.unwrap());
    assert_eq!(store.get(&key).await.err().map(|e| e.kind()), Some(ErrorKind::NotFound));
    store.put(&key, Bytes::from_static(b"ID3 not really an mp3")).await.unwrap();
    assert!(store.exists(&key).await.unwrap());
    assert_eq!(store.get(&key).await.unwrap(), Bytes::from_static(b"ID3 not really an mp3"));

    let link = store.link(&key, Duration::from_secs(600), "story.mp3").await.unwrap();
    assert!(link.starts_with(&moto.url), "{link}");
    assert!(link.contains("X-Amz-Signature="), "presigned: {link}");
    let fetched = reqwest::get(&link).await.unwrap();
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.headers()["content-type"], "audio/mpeg");
    assert_eq!(fetched.headers()["content-disposition"], "inline; filename=\"story.mp3\"");
    assert_eq!(fetched.bytes().await.unwrap(), Bytes::from_static(b"ID3 not really an mp3"));
}

#[tokio::test]
async fn the_s3_blob_store_keeps_the_contract() {
    let moto = Moto::start();
    let store = S3BlobStore::new(&moto.sdk_config().await, "storytime-contract", None);
    store.ensure_bucket().await.unwrap();
    contract::blob_store(&store).await;
}

#[tokio::test]
async fn links_go_through_the_cdn_signed_and_expiring() {
    use base64::Engine;
    use rsa::pkcs8::DecodePrivateKey;
    use rsa::signature::Verifier;

    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let pem = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/jwt-rsa.pem")).unwrap();
    let signer = CdnSigner::new("https://d111.cloudfront.net/", "K2JCJMDEHXQW5F", &pem).unwrap();
    let store = S3BlobStore::new(&config, "storytime-cdn", Some(signer));
    let key = audio_key();
    let link = store.link(&key, Duration::from_secs(600), "story.mp3").await.unwrap();
    let url = reqwest::Url::parse(&link).unwrap();
    assert_eq!(
        format!("{}://{}{}", url.scheme(), url.host_str().unwrap(), url.path()),
        format!("https://d111.cloudfront.net/{}", key.as_str())
    );
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["Key-Pair-Id"], "K2JCJMDEHXQW5F");
    let expires: u64 = q["Expires"].parse().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!((now + 590..=now + 610).contains(&expires), "expires in the link's TTL: {expires} vs {now}");
    // The signature is CloudFront's: RSA-SHA1 over the canned policy, in
    // its URL-safe base64; it verifies with the public key, and not for
    // another time or path.
    let raw = q["Signature"].replace('-', "+").replace('_', "=").replace('~', "/");
    let signature =
        rsa::pkcs1v15::Signature::try_from(base64::engine::general_purpose::STANDARD.decode(raw).unwrap().as_slice())
            .unwrap();
    let public = rsa::RsaPrivateKey::from_pkcs8_pem(&pem).unwrap().to_public_key();
    let verifier = rsa::pkcs1v15::VerifyingKey::<sha1::Sha1>::new(public);
    let resource = format!("https://d111.cloudfront.net/{}", key.as_str());
    assert!(verifier.verify(canned_policy(&resource, expires).as_bytes(), &signature).is_ok());
    assert!(verifier.verify(canned_policy(&resource, expires + 1).as_bytes(), &signature).is_err());
    assert!(
        verifier
            .verify(canned_policy("https://d111.cloudfront.net/audio/other.mp3", expires).as_bytes(), &signature)
            .is_err()
    );
}

#[tokio::test]
async fn a_missing_bucket_is_a_permanent_failure_that_names_it() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let store = S3BlobStore::new(&config, "no-such-bucket", None);
    let e = store.put(&audio_key(), Bytes::from_static(b"x")).await.expect_err("no bucket to write to");
    assert!(!e.is_retryable(), "a permanent failure: {e:?}");
    assert_eq!(e.kind(), ErrorKind::Missing);
    assert!(e.detail().contains("NoSuchBucket"), "{e}");
}
