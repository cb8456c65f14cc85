//! `GET /media/...`: stored photos and audio behind signed, expiring links,
//! streamed from the blob store, with byte ranges so audio players can seek.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use storytime_pipeline::ErrorKind;
use storytime_pipeline::links::{LinkError, content_disposition};
use storytime_pipeline::ports::ByteRange;

use crate::error::ApiError;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct LinkQuery {
    pub(super) exp: Option<i64>,
    pub(super) name: Option<String>,
    pub(super) sig: Option<String>,
}

pub async fn media(
    State(state): State<AppState>,
    Path(key): Path<String>,
    Query(q): Query<LinkQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some(links) = &state.media_links else {
        return Err(ApiError::not_found("no_local_media", "media is served from the cloud store in this deployment"));
    };
    let (Some(exp), Some(name), Some(sig)) = (q.exp, q.name, q.sig) else {
        return Err(LinkError::Invalid.into());
    };
    let key = links.verify(&key, exp, &name, &sig)?;
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(range) => parse_range(range),
        None => Some(ByteRange::All),
    };
    let read = match state.blobs.read(&key, range.unwrap_or(ByteRange::All)).await {
        Ok(read) => read,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(ApiError::new(StatusCode::GONE, "gone", "this file is no longer stored"));
        }
        Err(e) => return Err(e.into()),
    };
    let total = read.total;
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(key.content_type()));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=3600"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // A stored photo is downloaded, never shown as a page of this site;
    // audio and captions play in place.
    let disposition = if key.as_str().starts_with("originals/") { "attachment" } else { "inline" };
    if let Ok(v) = HeaderValue::from_str(&content_disposition(disposition, &name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    let (status, span) = match (range, read.span) {
        // A range the header could not say, or one outside the blob.
        (None, _) | (Some(_), None) => {
            h.insert(header::CONTENT_RANGE, HeaderValue::from_str(&format!("bytes */{total}")).expect("digits"));
            return Ok((StatusCode::RANGE_NOT_SATISFIABLE, h).into_response());
        }
        (Some(ByteRange::All), Some(span)) => (StatusCode::OK, span),
        (Some(_), Some(span)) => {
            let content_range = format!("bytes {}-{}/{total}", span.start, span.end - 1);
            h.insert(header::CONTENT_RANGE, HeaderValue::from_str(&content_range).expect("digits"));
            (StatusCode::PARTIAL_CONTENT, span)
        }
    };
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(span.end - span.start));
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(read.body));
    Ok((status, h, body).into_response())
}

/// One `bytes=` range (`a-b`, `a-` or `-n`); `None` for anything else
/// (several ranges, other units, garbage), which is answered 416.
fn parse_range(header: &str) -> Option<ByteRange> {
    let spec = header.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    match (a.trim(), b.trim()) {
        ("", n) => Some(ByteRange::Last(n.parse().ok()?)),
        (s, "") => Some(ByteRange::From { start: s.parse().ok()?, end: None }),
        (s, e) => {
            let (start, end) = (s.parse().ok()?, e.parse().ok()?);
            (start <= end).then_some(ByteRange::From { start, end: Some(end) })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_range;
    use storytime_pipeline::ports::ByteRange;

    #[test]
    fn byte_ranges_are_parsed_and_bounded() {
        let within = |h: &str| parse_range(h).and_then(|r| r.within(100)).map(|s| (s.start, s.end - 1));
        assert_eq!(within("bytes=0-9"), Some((0, 9)));
        assert_eq!(within("bytes=90-"), Some((90, 99)));
        assert_eq!(within("bytes=-10"), Some((90, 99)));
        assert_eq!(within("bytes=50-500"), Some((50, 99)));
        assert_eq!(within("bytes=100-"), None);
        assert_eq!(within("bytes=0-1,5-6"), None);
        assert_eq!(within("items=0-1"), None);
        assert_eq!(parse_range("bytes=3-"), Some(ByteRange::From { start: 3, end: None }));
    }

    proptest::proptest! {
        /// Range headers, including numbers past u64: a range that lies
        /// inside the blob, or none.
        #[test]
        fn any_range_header_is_a_range_or_refused(header in "(bytes=)?[0-9]{0,25}-?[0-9]{0,25}(,[0-9]{0,5}-[0-9]{0,5})?|\\PC{0,64}", total in 0u64..1_000_000) {
            if let Some(ByteRange::From { start, end: Some(end) }) = parse_range(&header) {
                proptest::prop_assert!(start <= end);
            }
            if let Some(span) = parse_range(&header).and_then(|r| r.within(total)) {
                proptest::prop_assert!(span.start < span.end && span.end <= total);
            }
        }
    }
}
