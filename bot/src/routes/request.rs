//! What the REST handlers share: the API key check, bounded body reads and
//! true/false headers.

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use storytime_pipeline::settings::Secret;

use crate::error::ApiError;
use crate::state::AppState;

/// Who sent a REST request: the API key it presented (by a digest, never
/// the key itself), or its address when the API is open. Uploads join only
/// the same caller's earlier job, and rate limits count per caller.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Caller(pub String);

/// Checks the bearer token when API keys or a JWT issuer are configured,
/// and says who the caller is: an API key, or a JWT that passes every
/// check of [`crate::jwt`].
pub(crate) async fn authorize(state: &AppState, request: &Parts) -> Result<Caller, ApiError> {
    match check(state, request).await {
        // A key rotated since it was read? Read the keys again.
        Err(refused) if refused.status == StatusCode::UNAUTHORIZED => match state.credentials.reread().await {
            true => check(state, request).await,
            false => Err(refused),
        },
        checked => checked,
    }
}

async fn check(state: &AppState, request: &Parts) -> Result<Caller, ApiError> {
    let api_keys = state.credentials.api_keys();
    if api_keys.is_empty() && state.jwt.is_none() {
        same_site(&request.headers, state.public_host.as_deref())?;
        let peer = request.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        return Ok(Caller(peer.map_or_else(|| "open".to_owned(), |ip| format!("addr:{ip}"))));
    }
    let digest = |s: &str| hex::encode(Sha256::digest(s.as_bytes()))[..16].to_owned();
    match (bearer(&request.headers, api_keys.iter()), &state.jwt) {
        (Ok(key), _) => Ok(Caller(format!("key:{}", digest(key)))),
        (Err(e), None) => Err(e),
        (Err(_), Some(jwt)) => {
            let token = presented(&request.headers).ok_or_else(ApiError::unauthorized)?;
            match jwt.verify(token).await {
                Ok(subject) => Ok(Caller(format!("jwt:{}", digest(&subject)))),
                Err(crate::jwt::JwtError::KeysUnavailable(e)) => Err(ApiError::internal(format!("JWT keys: {e}"))),
                Err(e) => Err(ApiError::invalid_token(e.to_string())),
            }
        }
    }
}

/// The token of an `Authorization: Bearer` header.
fn presented(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// An open API on a private machine is reachable by any web page its user
/// visits: a page on another site may post to it (a form needs no CORS
/// preflight), and a name the attacker controls may be pointed at
/// 127.0.0.1 (DNS rebinding). So requests must name this server by its
/// public host (when there is one to check), an IP address or
/// `localhost`, and a browser's cross-site requests (by `Origin` or
/// `Sec-Fetch-Site`) are refused.
pub(crate) fn same_site(headers: &HeaderMap, public_host: Option<&str>) -> Result<(), ApiError> {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).map(str::to_ascii_lowercase);
    if let (Some(host), Some(public_host)) = (&host, public_host) {
        let name = host_name(host);
        let literal = name.trim_start_matches('[').trim_end_matches(']').parse::<std::net::IpAddr>().is_ok();
        if !(literal || name == "localhost" || name == public_host) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "bad_host",
                format!(
                    "this server answers to {public_host}, an IP address or localhost; \
                     set STORYTIME_PUBLIC_URL to the address you use"
                ),
            ));
        }
    }
    let cross_site = || ApiError::new(StatusCode::FORBIDDEN, "cross_site", "requests from other web sites are refused");
    if headers.get("sec-fetch-site").is_some_and(|v| v.as_bytes() == b"cross-site") {
        return Err(cross_site());
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("null").to_ascii_lowercase();
        let origin_host = origin.split_once("://").map(|(_, rest)| rest.trim_end_matches('/'));
        if origin_host.is_none() || origin_host != host.as_deref() {
            return Err(cross_site());
        }
    }
    Ok(())
}

/// The host of a URL, lowercase, without port or user.
pub fn host_of(url: &str) -> String {
    url::Url::parse(url).ok().and_then(|u| u.host_str().map(str::to_ascii_lowercase)).unwrap_or_default()
}

/// `name` of a `name:port` or `[v6]:port` Host header.
fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_once(']').map_or(host, |(v6, _)| &host[..v6.len() + 1]);
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

/// Requires `Authorization: Bearer <one of keys>`, compared in constant
/// time; answers the key presented.
pub(crate) fn bearer<'h, 'k>(
    headers: &'h HeaderMap,
    keys: impl IntoIterator<Item = &'k Secret>,
) -> Result<&'h str, ApiError> {
    let presented = presented(headers).ok_or_else(ApiError::unauthorized)?;
    let ok =
        keys.into_iter().fold(false, |acc, key| acc | bool::from(key.expose().as_bytes().ct_eq(presented.as_bytes())));
    if ok { Ok(presented) } else { Err(ApiError::unauthorized()) }
}

/// How much of a body declared over the limit is still read, and thrown
/// away, so that a client that is still sending gets the 413 answer rather
/// than a broken connection. A larger one is refused unread.
const DRAIN_AT_MOST: u64 = 64 * 1024 * 1024;

/// Reads a request body up to `limit` bytes; more is a 413 with a JSON
/// error, and the rest of the body is not kept.
pub(crate) async fn read_body(
    headers: &HeaderMap,
    body: axum::body::Body,
    limit: usize,
) -> Result<bytes::Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the body is larger than the limit of {limit} bytes"),
        )
    };
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if let Some(declared) = declared.filter(|n| *n > limit as u64) {
        if declared <= DRAIN_AT_MOST {
            let mut body = body;
            while let Some(Ok(_)) = http_body_util::BodyExt::frame(&mut body).await {}
        }
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let is_limit = std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        let too_slow = caused_by::<crate::listener::TooSlow>(&e);
        if is_limit {
            too_large()
        } else if too_slow {
            ApiError::new(StatusCode::REQUEST_TIMEOUT, "too_slow", e.to_string())
        } else {
            ApiError::bad_request("unreadable_body", format!("the body could not be read: {e}"))
        }
    })
}

/// Whether `T` is somewhere in the chain of causes of `e`.
fn caused_by<T: std::error::Error + 'static>(e: &(dyn std::error::Error + 'static)) -> bool {
    std::iter::successors(Some(e), |e| e.source()).any(|e| e.is::<T>())
}

/// Reads a true/false header; absent means `default`.
pub(crate) fn flag(headers: &HeaderMap, name: &str, default: bool) -> Result<bool, ApiError> {
    let Some(v) = headers.get(name) else {
        return Ok(default);
    };
    match v.to_str().unwrap_or("").trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        other => Err(ApiError::bad_request("bad_header", format!("{name} must be true or false, not `{other}`"))),
    }
}
