//! Slack request signatures: HMAC-SHA256 over `v0:{timestamp}:{raw body}`
//! with the signing secret, compared in constant time, within five minutes
//! of now (either side). During a secret rotation both the new and the
//! previous secret are accepted.
//!
//! <https://api.slack.com/authentication/verifying-requests-from-slack>

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::CONTENT_LENGTH;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::Arc;
use std::time::Duration;

use storytime_pipeline::memory::MemoryBudget;
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::routes::request::read_body;
use crate::secrets::Credentials;

/// How far a request's timestamp may be from now, in seconds.
pub const MAX_SKEW_SECONDS: i64 = 300;

/// Largest Slack request body read (events and interaction payloads are a
/// few kilobytes).
pub const MAX_BODY: usize = 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the request is not signed")]
    Unsigned,
    #[error("the request timestamp is missing or not a number")]
    BadTimestamp,
    #[error("the request timestamp is more than five minutes from now")]
    Stale,
    #[error("the signature does not match")]
    BadSignature,
}

/// Bytes of Slack bodies held at once before their signature is checked:
/// 300 clients each sending a megabyte of forged events cost at most this,
/// the rest wait a moment or are answered 503 (Slack retries).
pub const UNVERIFIED_BODIES: u64 = 32 * 1024 * 1024;

/// How long a Slack request waits for room to read its body.
const BODY_WAIT: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct Verifier {
    credentials: Arc<Credentials>,
    bodies: MemoryBudget,
}

impl Verifier {
    /// Checks against the signing secrets of `credentials`.
    pub fn new(credentials: Arc<Credentials>) -> Self {
        Self { credentials, bodies: MemoryBudget::new(UNVERIFIED_BODIES) }
    }

    /// Checks what can be checked before the body is read: a signature and
    /// a fresh timestamp are present. Answers both.
    fn check_head<'h>(&self, headers: &'h HeaderMap, now: i64) -> Result<(&'h str, &'h str), Rejection> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
        let signature = header("x-slack-signature").filter(|s| !s.is_empty()).ok_or(Rejection::Unsigned)?;
        let timestamp = header("x-slack-request-timestamp").ok_or(Rejection::Unsigned)?;
        let ts: i64 = timestamp.parse().map_err(|_| Rejection::BadTimestamp)?;
        if now.checked_sub(ts).is_none_or(|skew| skew.abs() > MAX_SKEW_SECONDS) {
            return Err(Rejection::Stale);
        }
        Ok((signature, timestamp))
    }

    /// Checks a request at time `now` (Unix seconds).
    pub fn verify(&self, headers: &HeaderMap, body: &[u8], now: i64) -> Result<(), Rejection> {
        let (signature, timestamp) = self.check_head(headers, now)?;
        let matches = self.credentials.signing_secrets().iter().fold(false, |found, secret| {
            let expected = sign(secret.expose(), timestamp, body);
            found | bool::from(expected.as_bytes().ct_eq(signature.as_bytes()))
        });
        if matches { Ok(()) } else { Err(Rejection::BadSignature) }
    }
}

/// `v0=` and the hex HMAC-SHA256 of `v0:{timestamp}:{body}`.
pub fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

pub fn now_seconds() -> i64 {
    storytime_pipeline::now_ms() / 1000
}

/// Middleware for the Slack routes: reads the raw body (bounded), checks
/// the signature, and only then lets the handler see the request. A request
/// that fails gets 401 and nothing else happens; the log says why, never
/// with the body or a secret.
pub async fn require_signature(State(verifier): State<Verifier>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    // A declared length over the cap is refused before reading a byte.
    let declared = parts.headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", "the request body is too large")
            .into_response();
    }
    let refuse = |why: Rejection| {
        tracing::warn!(path = %parts.uri.path(), reason = %why, "refused a Slack request");
        ApiError::new(StatusCode::UNAUTHORIZED, "bad_signature", "request signature verification failed")
            .into_response()
    };
    // Unsigned or stale requests are refused before a byte of body is read.
    if let Err(why) = verifier.check_head(&parts.headers, now_seconds()) {
        return refuse(why);
    }
    let Some(_room) = verifier.bodies.reserve_within(declared.unwrap_or(MAX_BODY as u64), BODY_WAIT).await else {
        return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", "too many requests are being read; try again")
            .with_retry_after(1)
            .into_response();
    };
    let bytes = match read_body(&parts.headers, body, MAX_BODY).await {
        Ok(bytes) => bytes,
        Err(e) => return e.into_response(),
    };
    if let Err(why) = verifier.verify(&parts.headers, &bytes, now_seconds()) {
        // Signed with a secret rotated since it was read? Read it again.
        let rotated = why == Rejection::BadSignature && verifier.credentials.reread().await;
        if !rotated || verifier.verify(&parts.headers, &bytes, now_seconds()).is_err() {
            return refuse(why);
        }
    }
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

#[cfg(test)]
mod tests {
    use proptest::prelude::Strategy;

    use super::*;
    use axum::http::HeaderValue;

    use storytime_pipeline::settings::Secret;

    fn verifier(secrets: &[&str]) -> Verifier {
        Verifier::new(Arc::new(Credentials::fixed(Vec::new(), secrets.iter().map(|s| Secret::new(*s)).collect(), None)))
    }

    fn headers(ts: &str, sig: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-slack-request-timestamp", HeaderValue::from_str(ts).unwrap());
        h.insert("x-slack-signature", HeaderValue::from_str(sig).unwrap());
        h
    }

    /// The example in Slack's documentation.
    const SLACK_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const SLACK_TS: &str = "1531420618";
    const SLACK_BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const SLACK_SIG: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    #[test]
    fn slacks_documented_example_verifies() {
        assert_eq!(sign(SLACK_SECRET, SLACK_TS, SLACK_BODY.as_bytes()), SLACK_SIG);
        let v = verifier(&[SLACK_SECRET]);
        assert_eq!(v.verify(&headers(SLACK_TS, SLACK_SIG), SLACK_BODY.as_bytes(), 1531420618 + 10), Ok(()));
    }

    #[test]
    fn other_known_vectors_verify() {
        assert_eq!(
            sign("fa2c05deeef5a4077494e89f54394de0", "1531420618", b"test-body"),
            "v0=baa91ef62d346e56607bbdd278a8acd570b91226854f15a382f43d33be42f666"
        );
        assert_eq!(
            sign("secret", "1531420618", br#"{"foo":"bar"}"#),
            "v0=bb5bc143e1afa37151ea6887f794287bcfad6113bb7596ffca6ec599ecbdc216"
        );
    }

    #[test]
    fn stale_future_forged_and_unsigned_requests_are_refused() {
        let v = verifier(&[SLACK_SECRET]);
        let t = 1531420618;
        let body = SLACK_BODY.as_bytes();
        assert_eq!(v.verify(&headers(SLACK_TS, SLACK_SIG), body, t + 301), Err(Rejection::Stale));
        assert_eq!(v.verify(&headers(SLACK_TS, SLACK_SIG), body, t - 301), Err(Rejection::Stale));
        assert_eq!(v.verify(&headers(SLACK_TS, SLACK_SIG), b"token=other", t), Err(Rejection::BadSignature));
        let other = verifier(&["another secret"]);
        assert_eq!(other.verify(&headers(SLACK_TS, SLACK_SIG), body, t), Err(Rejection::BadSignature));
        assert_eq!(v.verify(&HeaderMap::new(), body, t), Err(Rejection::Unsigned));
        assert_eq!(v.verify(&headers("soon", SLACK_SIG), body, t), Err(Rejection::BadTimestamp));
    }

    #[test]
    fn both_secrets_work_during_a_rotation() {
        let v = verifier(&["new secret", SLACK_SECRET]);
        assert_eq!(v.verify(&headers(SLACK_TS, SLACK_SIG), SLACK_BODY.as_bytes(), 1531420618), Ok(()));
        let fresh = sign("new secret", SLACK_TS, b"x");
        assert_eq!(v.verify(&headers(SLACK_TS, &fresh), b"x", 1531420618), Ok(()));
    }

    proptest::proptest! {
        /// Any signature and timestamp headers, extreme integers included,
        /// at any time: refused (unless by chance right), never a panic.
        #[test]
        fn any_signature_headers_are_checked_without_panicking(
            ts in proptest::prop_oneof![
                proptest::prelude::any::<i64>().prop_map(|n| n.to_string()),
                "[-+0-9]{0,30}",
                "\\PC{0,30}",
            ],
            sig in "(v0=)?[0-9a-f]{0,70}|\\PC{0,80}",
            now in proptest::prelude::any::<i64>(),
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256),
        ) {
            let v = verifier(&[SLACK_SECRET]);
            let mut h = HeaderMap::new();
            if let (Ok(ts), Ok(sig)) = (HeaderValue::from_str(&ts), HeaderValue::from_str(&sig)) {
                h.insert("x-slack-request-timestamp", ts);
                h.insert("x-slack-signature", sig);
            }
            proptest::prop_assert!(v.verify(&h, &body, now).is_err());
        }
    }
}
