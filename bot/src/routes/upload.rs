//! `POST /upload`: the original API's upload, one page per request, the
//! photo as the raw body.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use storytime_pipeline::stages::{SubmitRequest, Upload};
use storytime_pipeline::{Destination, Reuse};

use super::request::{authorize, flag, read_body};
use super::view::JobView;
use crate::error::ApiError;
use crate::state::AppState;

pub async fn upload(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let notify = flag(&headers, "x-notification-required", true)?;
    let dedup = flag(&headers, "x-duplication-check-required", true)?;
    let voice =
        headers.get("x-voice").and_then(|v| v.to_str().ok()).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let name = headers.get(header::CONTENT_DISPOSITION).and_then(|v| filename(v.as_bytes()));
    let limit = state.pipeline.config.limits.image.max_bytes;
    let bytes = read_body(&headers, body, limit).await?;

    let accepted = state
        .pipeline
        .submit(SubmitRequest {
            pages: vec![Upload { bytes, name }],
            voice,
            reuse: if dedup { Reuse::SameJob } else { Reuse::Nothing },
            destinations: if notify { vec![Destination::Email { to: None }] } else { Vec::new() },
            request_key: None,
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

/// The file name from a `Content-Disposition` header: `filename*` (RFC
/// 5987, UTF-8) when present, else `filename`, quoted or not.
fn filename(raw: &[u8]) -> Option<String> {
    let value = String::from_utf8_lossy(raw);
    let params: Vec<(String, String)> = split_params(&value)
        .into_iter()
        .filter_map(|p| p.split_once('=').map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned())))
        .collect();
    if let Some((_, v)) = params.iter().find(|(k, _)| k == "filename*") {
        let encoded = v.splitn(3, '\'').nth(2).unwrap_or(v);
        if let Some(decoded) = percent_decode(encoded) {
            return Some(decoded);
        }
    }
    params.iter().find(|(k, _)| k == "filename").map(|(_, v)| unquote(v)).filter(|v| !v.is_empty())
}

/// Splits on `;` outside double quotes.
fn split_params(value: &str) -> Vec<String> {
    let (mut out, mut cur, mut quoted, mut escaped) = (Vec::new(), String::new(), false, false);
    for c in value.chars() {
        match c {
            _ if escaped => {
                cur.push(c);
                escaped = false;
            }
            '\\' if quoted => {
                cur.push(c);
                escaped = true;
            }
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ';' if !quoted => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    match v.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(inner) => inner.replace("\\\"", "\"").replace("\\\\", "\\"),
        None => v.to_owned(),
    }
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
}
