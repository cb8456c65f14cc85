//! CloudFront signed URLs (canned policy): a link to the distribution that
//! expires, signed with the private key of a public key in the
//! distribution's trusted key group. CloudFront checks `Expires`,
//! `Signature` (RSA-SHA1 over the policy, in CloudFront's URL-safe
//! base64) and `Key-Pair-Id`, and refuses a link that is expired or
//! altered.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rsa::RsaPrivateKey;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use sha1::Sha1;

/// Signs links to a CloudFront distribution.
#[derive(Clone)]
pub struct CdnSigner {
    /// `https://<distribution domain>`, without a trailing slash.
    base: String,
    key_pair_id: String,
    key: SigningKey<Sha1>,
}

impl std::fmt::Debug for CdnSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CdnSigner").field("base", &self.base).field("key_pair_id", &self.key_pair_id).finish()
    }
}

impl CdnSigner {
    /// A signer for `base` with the key `key_pair_id` names; `pem` is its
    /// RSA private key (PKCS#1 or PKCS#8).
    pub fn new(base: &str, key_pair_id: &str, pem: &str) -> Result<Self, String> {
        let key = RsaPrivateKey::from_pkcs8_pem(pem)
            .or_else(|_| RsaPrivateKey::from_pkcs1_pem(pem))
            .map_err(|_| "the CloudFront private key is not an RSA private key in PEM form".to_owned())?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            key_pair_id: key_pair_id.to_owned(),
            key: SigningKey::<Sha1>::new(key),
        })
    }

    /// A link to `path` on the distribution that expires after `ttl`.
    pub fn sign(&self, path: &str, ttl: Duration) -> String {
        let expires = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() + ttl.as_secs();
        self.sign_until(path, expires)
    }

    fn sign_until(&self, path: &str, expires: u64) -> String {
        let url = format!("{}/{}", self.base, path.trim_start_matches('/'));
        let policy = canned_policy(&url, expires);
        let signature = self.key.sign(policy.as_bytes()).to_bytes();
        let signature = url_safe(&STANDARD.encode(signature));
        format!("{url}?Expires={expires}&Signature={signature}&Key-Pair-Id={}", self.key_pair_id)
    }
}

/// The canned policy CloudFront rebuilds from the URL and `Expires`: no
/// whitespace, this exact shape.
pub fn canned_policy(url: &str, expires: u64) -> String {
    format!(r#"{{"Statement":[{{"Resource":"{url}","Condition":{{"DateLessThan":{{"AWS:EpochTime":{expires}}}}}}}]}}"#)
}

/// CloudFront's URL-safe base64: `+` → `-`, `=` → `_`, `/` → `~`.
fn url_safe(b64: &str) -> String {
    b64.chars()
        .map(|c| match c {
            '+' => '-',
            '=' => '_',
            '/' => '~',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_and_encoding_are_cloudfronts() {
        assert_eq!(
            canned_policy("https://d111.cloudfront.net/audio/a.mp3", 1_700_000_000),
            r#"{"Statement":[{"Resource":"https://d111.cloudfront.net/audio/a.mp3","Condition":{"DateLessThan":{"AWS:EpochTime":1700000000}}}]}"#
        );
        assert_eq!(url_safe("a+b/c=="), "a-b~c__");
        assert!(CdnSigner::new("https://d1.cloudfront.net", "K1", "not a key").is_err());
    }
}
