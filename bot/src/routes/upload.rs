//! `POST /upload`: the original API's upload, one page per request, the
//! photo as the raw body; or a form (`multipart/form-data`, as the web
//! page and `curl -F page=@photo.jpeg` send) with one or more pages in
//! reading order and, optionally, `voice` and `speed` fields.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use storytime_pipeline::stages::{SubmitRequest, Upload};
use storytime_pipeline::{Destination, Reuse, Speed};

use super::form;
use super::request::{authorize, flag, read_body};
use super::view::JobView;
use crate::error::ApiError;
use crate::state::AppState;

/// The most one form upload may carry: 100 MiB, about twenty phone photos.
const MAX_FORM_BYTES: usize = 100 * 1024 * 1024;

/// The photos of one book `/upload` takes in one request: every page at
/// its limit, within what one request may hold.
pub(crate) fn book_bytes(limits: &storytime_pipeline::settings::Limits) -> usize {
    limits.image.max_bytes.saturating_mul(limits.max_pages).min(MAX_FORM_BYTES - 64 * 1024)
}

pub async fn upload(State(state): State<AppState>, request: Parts, body: Body) -> Result<Response, ApiError> {
    let Uploader { caller, notify, dedup } = uploader(&state, &request).await?;
    let headers = &request.headers;
    let mut voice = headers.get("x-voice").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let mut speed = header_text(headers, "x-speed");
    let limits = state.pipeline.config.limits;
    let boundary = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).and_then(form::boundary);
    let pages = match boundary {
        None => {
            let name = headers.get(header::CONTENT_DISPOSITION).and_then(|v| filename(v.as_bytes()));
            vec![Upload { bytes: read_body(headers, body, limits.image.max_bytes).await?, name }]
        }
        Some(boundary) => {
            // Every page at its limit and room for the form's own lines, but
            // never more than MAX_FORM_BYTES held at once for one request.
            let limit = book_bytes(&limits).saturating_add(64 * 1024).min(MAX_FORM_BYTES);
            let body = read_body(headers, body, limit).await?;
            let parts = form::parse(&body, &boundary).map_err(|e| ApiError::bad_request("bad_form", e))?;
            let mut pages = Vec::new();
            for part in parts {
                match (part.filename, part.name.as_str()) {
                    (Some(name), _) => pages.push(Upload { bytes: part.body, name: Some(name) }),
                    (None, "voice") => voice = Some(String::from_utf8_lossy(&part.body).into_owned()),
                    (None, "speed") => speed = Some(String::from_utf8_lossy(&part.body).into_owned()),
                    (None, _) => {}
                }
            }
            if pages.iter().any(|p| p.bytes.len() > limits.image.max_bytes) {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    format!("a page is larger than {} bytes", limits.image.max_bytes),
                ));
            }
            pages
        }
    };
    let (voice, speed) = voice_and_speed(voice, speed)?;

    let accepted = state
        .pipeline
        .submit(SubmitRequest {
            pages,
            voice,
            speed,
            reuse: if dedup { Reuse::SameJob } else { Reuse::Nothing },
            destinations: if notify { vec![Destination::Email { to: None }] } else { Vec::new() },
            request_key: None,
            owner: caller.0,
        })
        .await?;
    let job = accepted.job;
    let links = state.pipeline.links(&job).await?;
    let mut view = JobView::new(&job, &links);
    view.need_noti = Some(notify);
    view.need_dup_chk = Some(dedup);
    view.duplicate = Some(!accepted.created);
    let mut response = Json(view).into_response();
    let h = response.headers_mut();
    h.insert(header::ETAG, HeaderValue::from_str(job.id.as_str()).expect("uuids are valid header values"));
    h.insert("timestamp", HeaderValue::from_str(&job.timestamp).expect("digits are valid header values"));
    Ok(response)
}

/// Who is uploading, within their upload rate, and the original API's
/// flags: email the result, check for duplicates.
pub(super) struct Uploader {
    pub caller: super::request::Caller,
    pub notify: bool,
    pub dedup: bool,
}

pub(super) async fn uploader(state: &AppState, request: &Parts) -> Result<Uploader, ApiError> {
    let caller = authorize(state, request).await?;
    state
        .pipeline
        .rates
        .uploads
        .check(&caller.0)
        .map_err(|wait| ApiError::rate_limited("rate_limited", "uploads", wait))?;
    let notify = flag(&request.headers, "x-notification-required", true)?;
    let dedup = flag(&request.headers, "x-duplication-check-required", true)?;
    Ok(Uploader { caller, notify, dedup })
}

/// A header's value as text (`?` when it is not text, which no field takes).
pub(super) fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).map(|v| v.to_str().unwrap_or("?").to_owned())
}

/// The voice and speed asked for, blank ones left out.
pub(super) fn voice_and_speed(
    voice: Option<String>,
    speed: Option<String>,
) -> Result<(Option<String>, Option<Speed>), ApiError> {
    let voice = voice.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let speed = match speed.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(s.parse::<Speed>().map_err(|e| ApiError::bad_request("bad_speed", format!("speed: {e}")))?),
    };
    Ok((voice, speed))
}

/// The file name from a `Content-Disposition` header: `filename*` (RFC
/// 5987, UTF-8) when present, else `filename`, quoted or not.
pub(super) fn filename(raw: &[u8]) -> Option<String> {
    let value = String::from_utf8_lossy(raw);
    let params: Vec<(String, String)> = form::split_quoted(&value)
        .into_iter()
        .filter_map(|p| p.split_once('=').map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned())))
        .collect();
    if let Some((_, v)) = params.iter().find(|(k, _)| k == "filename*") {
        let encoded = v.splitn(3, '\'').nth(2).unwrap_or(v);
        if let Some(decoded) = percent_decode(encoded) {
            return Some(decoded);
        }
    }
    params.iter().find(|(k, _)| k == "filename").map(|(_, v)| form::unquote(v)).filter(|v| !v.is_empty())
}

fn percent_decode(s: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(s.len());
    let mut it = s.bytes();
    while let Some(b) = it.next() {
        if b == b'%' {
            let hi = (it.next()? as char).to_digit(16)?;
            let lo = (it.next()? as char).to_digit(16)?;
            bytes.push((hi * 16 + lo) as u8);
        } else {
            bytes.push(b);
        }
    }
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::filename;

    #[test]
    fn file_names_come_from_every_common_form_of_the_header() {
        assert_eq!(
            filename(b"form-data; name=\"sample1\"; filename=\"sample1.jpeg\"").as_deref(),
            Some("sample1.jpeg")
        );
        assert_eq!(filename(b"attachment; filename=page.png").as_deref(), Some("page.png"));
        assert_eq!(filename(b"attachment; filename=\"a;b.png\"").as_deref(), Some("a;b.png"));
        assert_eq!(
            filename(b"attachment; filename=\"x.png\"; filename*=UTF-8''%ED%86%A0%EB%81%BC.png").as_deref(),
            Some("토끼.png")
        );
        assert_eq!(filename(b"inline"), None);
    }

    proptest::proptest! {
        /// Any Content-Disposition value: a name or none, never a panic.
        #[test]
        fn any_content_disposition_yields_a_name_or_none(raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let _ = filename(&raw);
        }

        #[test]
        fn any_percent_escapes_are_decoded_or_refused(raw in "attachment; filename\\*=UTF-8''[%0-9A-Za-z]{0,40}") {
            let _ = filename(raw.as_bytes());
        }
    }
}
