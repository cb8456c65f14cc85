//! Signing requests the way Slack does, written here independently of the
//! app's verifier so a test can catch a mistake in either.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// `X-Slack-Signature` for a body sent at `timestamp` (Unix seconds).
pub fn slack_signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("v0:{timestamp}:{body}").as_bytes());
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs() as i64
}
