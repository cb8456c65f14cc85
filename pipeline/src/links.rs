//! Media links: signed, expiring links to blobs that Storytime serves
//! itself at `/media/...` (the embedded default has no CDN), and the
//! encoding of names in them.
//!
//! A link carries its expiry, the download name and an HMAC-SHA256 over
//! both and the key; anything edited in the link breaks the signature. The
//! blob store that keeps files locally hands these links out; the front
//! end checks them before streaming the blob.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::domain::{BlobKey, now_ms};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("this link has expired; ask for the result again to get a fresh link")]
    Expired,
    #[error("this link is not valid")]
    Invalid,
}

/// Makes and checks media links with one secret.
#[derive(Clone)]
pub struct MediaLinks {
    secret: Vec<u8>,
    base_url: String,
}

impl std::fmt::Debug for MediaLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaLinks").field("base_url", &self.base_url).finish_non_exhaustive()
    }
}

impl MediaLinks {
    /// The secret signs links; `base_url` is where `/media/...` is served.
    pub fn new(secret: Vec<u8>, base_url: &str) -> Self {
        Self { secret, base_url: base_url.trim_end_matches('/').to_owned() }
    }

    /// A link to `key` that works for `ttl`, saved as `name`.
    pub fn link(&self, key: &BlobKey, ttl: Duration, name: &str) -> String {
        let expires = now_ms() / 1000 + ttl.as_secs() as i64;
        let sig = self.signature(key.as_str(), expires, name);
        format!("{}/media/{}?exp={expires}&name={}&sig={sig}", self.base_url, key, percent_encode(name))
    }

    /// Checks a link's parts; `name` is as decoded from the query.
    pub fn verify(&self, key: &str, expires: i64, name: &str, sig: &str) -> Result<BlobKey, LinkError> {
        let expected = self.signature(key, expires, name);
        if !bool::from(expected.as_bytes().ct_eq(sig.as_bytes())) {
            return Err(LinkError::Invalid);
        }
        if expires < now_ms() / 1000 {
            return Err(LinkError::Expired);
        }
        BlobKey::parse(key).map_err(|_| LinkError::Invalid)
    }

    /// A link a client can `PUT` the blob's bytes to, for `ttl`; a
    /// download link never passes for one (the signed text differs).
    pub fn upload_link(&self, key: &BlobKey, ttl: Duration) -> String {
        let expires = now_ms() / 1000 + ttl.as_secs() as i64;
        let sig = self.sign(&format!("PUT\n{key}\n{expires}"));
        format!("{}/media/{}?exp={expires}&sig={sig}", self.base_url, key)
    }

    /// Checks an upload link's parts.
    pub fn verify_upload(&self, key: &str, expires: i64, sig: &str) -> Result<BlobKey, LinkError> {
        let expected = self.sign(&format!("PUT\n{key}\n{expires}"));
        if !bool::from(expected.as_bytes().ct_eq(sig.as_bytes())) {
            return Err(LinkError::Invalid);
        }
        if expires < now_ms() / 1000 {
            return Err(LinkError::Expired);
        }
        BlobKey::parse(key).map_err(|_| LinkError::Invalid)
    }

    fn signature(&self, key: &str, expires: i64, name: &str) -> String {
        self.sign(&format!("{key}\n{expires}\n{name}"))
    }

    fn sign(&self, text: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes any key length");
        mac.update(text.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }
}

/// A `Content-Disposition` value with an ASCII fallback name and the UTF-8
/// original (RFC 6266): `inline` to play or show in place, `attachment`
/// to save.
pub fn content_disposition(disposition: &str, name: &str) -> String {
    let ascii: String =
        name.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' }).collect();
    format!("{disposition}; filename=\"{ascii}\"; filename*=UTF-8''{}", percent_encode(name))
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ContentId;

    fn parts(link: &str) -> (String, i64, String, String) {
        let (path, query) = link.split_once('?').unwrap();
        let key = path.split_once("/media/").unwrap().1.to_owned();
        let q: std::collections::HashMap<_, _> = query.split('&').filter_map(|kv| kv.split_once('=')).collect();
        (key, q["exp"].parse().unwrap(), q["name"].replace("%20", " "), q["sig"].to_owned())
    }

    #[test]
    fn a_link_verifies_until_edited_or_expired() {
        let signer = MediaLinks::new(b"secret".to_vec(), "http://127.0.0.1:8080/");
        let key = BlobKey::audio(&ContentId::of(b"a"));
        let link = signer.link(&key, Duration::from_secs(60), "page 1.mp3");
        assert!(link.starts_with("http://127.0.0.1:8080/media/audio/"));
        let (k, exp, name, sig) = parts(&link);
        assert_eq!(signer.verify(&k, exp, &name, &sig).unwrap(), key);
        assert_eq!(signer.verify(&k, exp + 1, &name, &sig), Err(LinkError::Invalid));
        assert_eq!(signer.verify(&k, exp, "other.mp3", &sig), Err(LinkError::Invalid));
        let other = MediaLinks::new(b"other".to_vec(), "http://x");
        assert_eq!(other.verify(&k, exp, &name, &sig), Err(LinkError::Invalid));

        let old = signer.link(&key, Duration::ZERO, "a.mp3");
        let (k, exp, name, sig) = parts(&old);
        let expired = signer.signature(&k, exp - 10, &name);
        assert_eq!(signer.verify(&k, exp - 10, &name, &expired), Err(LinkError::Expired));
        assert!(signer.verify(&k, exp, &name, &sig).is_ok());
    }

    #[test]
    fn an_upload_link_verifies_until_edited_or_expired_and_never_as_a_download() {
        let signer = MediaLinks::new(b"secret".to_vec(), "http://127.0.0.1:8080");
        let key = BlobKey::incoming("0123456789abcdef0123456789abcdef").unwrap();
        let link = signer.upload_link(&key, Duration::from_secs(60));
        let (path, query) = link.split_once('?').unwrap();
        assert_eq!(path, "http://127.0.0.1:8080/media/incoming/0123456789abcdef0123456789abcdef");
        let q: std::collections::HashMap<_, _> = query.split('&').filter_map(|kv| kv.split_once('=')).collect();
        let exp: i64 = q["exp"].parse().unwrap();
        assert_eq!(signer.verify_upload(key.as_str(), exp, q["sig"]).unwrap(), key);
        assert_eq!(signer.verify_upload(key.as_str(), exp + 1, q["sig"]), Err(LinkError::Invalid));
        assert_eq!(signer.verify(key.as_str(), exp, "", q["sig"]), Err(LinkError::Invalid));
        let download = signer.link(&key, Duration::from_secs(60), "x");
        let (_, exp, _, sig) = parts(&download);
        assert_eq!(signer.verify_upload(key.as_str(), exp, &sig), Err(LinkError::Invalid));
        let old = signer.sign(&format!("PUT\n{key}\n{}", exp - 100));
        assert_eq!(signer.verify_upload(key.as_str(), exp - 100, &old), Err(LinkError::Expired));
    }

    #[test]
    fn download_names_are_encoded_for_any_browser() {
        assert_eq!(
            content_disposition("attachment", "토끼 \"1\".png"),
            "attachment; filename=\"__ _1_.png\"; filename*=UTF-8''%ED%86%A0%EB%81%BC%20%221%22.png"
        );
    }
}
