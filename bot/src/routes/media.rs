//! `GET /media/...`: stored photos and audio behind signed, expiring links,
//! with byte ranges so audio players can seek.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use storytime_pipeline::PortError;
use storytime_pipeline::adapters::local::LinkError;

use crate::error::ApiError;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct LinkQuery {
    exp: Option<i64>,
    name: Option<String>,
    sig: Option<String>,
}

pub async fn media(
    State(state): State<AppState>,
    Path(key): Path<String>,
    Query(q): Query<LinkQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some(store) = &state.media else {
        return Err(ApiError::not_found("no_local_media", "media is served from the cloud store in this deployment"));
    };
    let (Some(exp), Some(name), Some(sig)) = (q.exp, q.name, q.sig) else {
        return Err(link_error(LinkError::Invalid));
    };
    let key = store.signer().verify(&key, exp, &name, &sig).map_err(link_error)?;
    let bytes = match storytime_pipeline::ports::BlobStore::get(store.as_ref(), &key).await {
        Ok(b) => b,
        Err(PortError::NotFound(_)) => {
            return Err(ApiError::new(StatusCode::GONE, "gone", "this file is no longer stored"));
        }
        Err(e) => return Err(e.into()),
    };
    let total = bytes.len() as u64;
    let mut response_headers = HeaderMap::new();
    response_headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(key.content_type()));
    response_headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=3600"));
    if let Ok(v) = HeaderValue::from_str(&content_disposition(&name)) {
        response_headers.insert(header::CONTENT_DISPOSITION, v);
    }
    match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(range) => match parse_range(range, total) {
            Some((start, end)) => {
                response_headers.insert(
                    header::CONTENT_RANGE,
                    HeaderValue::from_str(&format!("bytes {start}-{end}/{total}")).expect("digits"),
                );
                let part = bytes.slice(start as usize..=end as usize);
                Ok((StatusCode::PARTIAL_CONTENT, response_headers, Body::from(part)).into_response())
            }
            None => {
                response_headers
                    .insert(header::CONTENT_RANGE, HeaderValue::from_str(&format!("bytes */{total}")).expect("digits"));
                Ok((StatusCode::RANGE_NOT_SATISFIABLE, response_headers).into_response())
            }
        },
        None => Ok((StatusCode::OK, response_headers, Body::from(bytes)).into_response()),
    }
}

fn link_error(e: LinkError) -> ApiError {
    match e {
        LinkError::Expired => ApiError::new(StatusCode::GONE, "link_expired", e.to_string()),
        LinkError::Invalid => ApiError::new(StatusCode::FORBIDDEN, "bad_link", e.to_string()),
    }
}

/// `inline` with an ASCII fallback name and the UTF-8 original (RFC 6266).
fn content_disposition(name: &str) -> String {
    let ascii: String =
        name.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' }).collect();
    format!(
        "inline; filename=\"{ascii}\"; filename*=UTF-8''{}",
        storytime_pipeline::adapters::local::percent_encode(name)
    )
}

/// One `bytes=` range (`a-b`, `a-` or `-n`) within `total`.
fn parse_range(header: &str, total: u64) -> Option<(u64, u64)> {
    let spec = header.trim().strip_prefix("bytes=")?;
    if spec.contains(',') || total == 0 {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            (total.saturating_sub(n), total - 1)
        }
        (s, "") => (s.parse().ok()?, total - 1),
        (s, e) => (s.parse().ok()?, e.parse::<u64>().ok()?.min(total - 1)),
    };
    (start <= end && start < total).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn byte_ranges_are_parsed_and_bounded() {
        assert_eq!(parse_range("bytes=0-9", 100), Some((0, 9)));
        assert_eq!(parse_range("bytes=90-", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=-10", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=50-500", 100), Some((50, 99)));
        assert_eq!(parse_range("bytes=100-", 100), None);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
    }
}
