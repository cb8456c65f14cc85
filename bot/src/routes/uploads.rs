//! `POST /uploads`: a link to send a photo straight to storage, for photos
//! larger than an API request may carry (API Gateway takes about 6 MB with
//! Lambda, about 4.4 MB of photo once base64-encoded). The client `PUT`s
//! the photo to `UploadURL` (a presigned S3 link on AWS; this server's own
//! `/media/incoming/...` on one machine) and polls `/retrieve` with the
//! `ETag` and `Timestamp` answered here, like after `/upload`.
//!
//! `PUT /media/incoming/<id>` is that upload link on one machine: it keeps
//! the photo and takes it in at once, answering as `/upload` does.

use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use storytime_pipeline::links::LinkError;
use storytime_pipeline::stages::{IntakeError, UploadRequest, UploadState};

use super::media::LinkQuery;
use super::request::read_body;
use super::upload::{Uploader, filename, header_text, uploader, voice_and_speed};
use super::view::JobView;
use crate::error::ApiError;
use crate::state::AppState;

/// How long an upload link works.
pub const UPLOAD_LINK_TTL: Duration = Duration::from_secs(15 * 60);

pub async fn expect(State(state): State<AppState>, request: Parts) -> Result<Response, ApiError> {
    let Uploader { caller, notify, dedup } = uploader(&state, &request).await?;
    let headers = &request.headers;
    let voice = headers.get("x-voice").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (voice, speed) = voice_and_speed(voice, header_text(headers, "x-speed"))?;
    let name = headers.get(header::CONTENT_DISPOSITION).and_then(|v| filename(v.as_bytes()));
    let wanted = UploadRequest { name, voice, speed, dedup, notify, owner: caller.0 };
    let upload = state.pipeline.expect_upload(wanted, UPLOAD_LINK_TTL).await?;
    let body = json!({
        "ID": upload.id,
        "Timestamp": upload.timestamp,
        "Status": "waiting_for_upload",
        "UploadURL": upload.url,
        "Method": "PUT",
        "ExpiresIn": upload.expires_in.as_secs(),
        "MaxBytes": state.pipeline.config.limits.image.max_bytes,
    });
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    let h = response.headers_mut();
    h.insert(header::ETAG, HeaderValue::from_str(&upload.id).expect("hex digits are valid header values"));
    h.insert("timestamp", HeaderValue::from_str(&upload.timestamp).expect("digits are valid header values"));
    Ok(response)
}

/// `PUT /media/incoming/<id>`: the local store's upload link.
pub async fn receive(
    State(state): State<AppState>,
    Path(key): Path<String>,
    Query(link): Query<LinkQuery>,
    request: Parts,
    body: Body,
) -> Result<Response, ApiError> {
    let Some(links) = &state.media_links else {
        return Err(ApiError::not_found("no_local_media", "photos are uploaded to the cloud store in this deployment"));
    };
    let (Some(exp), Some(sig)) = (link.exp, link.sig) else { return Err(LinkError::Invalid.into()) };
    let key = links.verify_upload(&key, exp, &sig)?;
    let Some(id) = key.upload_id() else { return Err(LinkError::Invalid.into()) };
    let max = state.pipeline.config.limits.image.max_bytes;
    let bytes = read_body(&request.headers, body, max).await?;
    state.blobs.put(&key, bytes).await?;
    match state.pipeline.take_upload(id).await {
        Ok(UploadState::Taken { job, timestamp }) => {
            let Some(job) = state.pipeline.jobs.get(&job).await? else {
                return Err(ApiError::internal(format!("job {job} of upload {id} is gone")));
            };
            let links = state.pipeline.links(&job).await?;
            let mut response = Json(JobView::new(&job, &links)).into_response();
            let h = response.headers_mut();
            h.insert(header::ETAG, HeaderValue::from_str(job.id.as_str()).expect("uuids are valid header values"));
            h.insert("timestamp", HeaderValue::from_str(&timestamp).expect("digits are valid header values"));
            Ok(response)
        }
        Ok(UploadState::Refused { reason }) => Err(refused(reason)),
        Ok(UploadState::Waiting { .. }) => Err(ApiError::internal(format!("upload {id} was not taken in"))),
        Err(IntakeError::Unavailable(e)) if e.kind() == storytime_pipeline::ErrorKind::NotFound => {
            Err(ApiError::not_found("no_such_upload", "this upload link was never handed out, or has been used up"))
        }
        Err(e) => Err(e.into()),
    }
}

/// An upload whose photo was not accepted.
pub(super) fn refused(reason: String) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "upload_refused", reason)
}
