//! `GET /retrieve`: the result of a job, by the `ETag` and `Timestamp` the
//! upload answered with. 200 when done, 503 with `Retry-After` while the
//! job is in progress (a job that has stalled is re-queued on the way).

use axum::Json;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use storytime_pipeline::stages::UploadState;
use storytime_pipeline::{Job, JobId, JobStatus};

use super::request::authorize;
use super::view::JobView;
use crate::error::ApiError;
use crate::state::AppState;

/// Seconds a client should wait before asking again.
const RETRY_AFTER: u32 = 3;

pub async fn retrieve(State(state): State<AppState>, request: Parts) -> Result<Response, ApiError> {
    authorize(&state, &request).await?;
    let headers = &request.headers;
    let id = header_value(headers, header::ETAG.as_str())?;
    let timestamp = header_value(headers, "timestamp")?;
    let job = find(&state, &id, &timestamp).await?;
    let links = state.pipeline.links(&job).await?;
    let view = JobView::new(&job, &links);
    match job.status {
        JobStatus::Done | JobStatus::NoText => Ok(Json(view.with_results(&job)).into_response()),
        JobStatus::Failed => {
            let failure = job.failure.clone().unwrap_or_else(|| storytime_pipeline::Failure::internal("unknown"));
            let extra = serde_json::to_value(&view).unwrap_or_default();
            Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "job_failed", failure.message)
                .with_extra(merge(extra, json!({ "Reason": failure.code }))))
        }
        JobStatus::Queued | JobStatus::Reading | JobStatus::Narrating => {
            state.pipeline.requeue_if_stalled(&job).await?;
            let mut body = serde_json::to_value(&view).unwrap_or_default();
            if let Some(e) = &job.last_error {
                body = merge(body, json!({ "Message": format!("retrying after a problem: {e}") }));
            }
            let mut response = (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
            response.headers_mut().insert(header::RETRY_AFTER, RETRY_AFTER.into());
            Ok(response)
        }
    }
}

/// Looks a job up by id and timestamp, the original API's composite key.
/// The ID of an upload sent straight to storage (`POST /uploads`) names
/// its job once the photo is taken in; until then the answer says where
/// the upload stands.
pub(super) async fn find(state: &AppState, id: &str, timestamp: &str) -> Result<Job, ApiError> {
    let timestamp = timestamp.trim().trim_matches('"');
    // Quoted as clients echo an `ETag`, as job IDs are taken.
    let upload_id = id.trim().trim_start_matches("W/").trim_matches('"');
    if let Some(upload) = state.pipeline.upload_state(upload_id).await? {
        return match upload {
            UploadState::Waiting { timestamp: t, expires_ms, .. } if t == timestamp => {
                if expires_ms < storytime_pipeline::now_ms() {
                    Err(ApiError::new(
                        StatusCode::GONE,
                        "upload_expired",
                        "no photo arrived before the upload link expired",
                    ))
                } else {
                    let body = json!({ "ID": upload_id, "Timestamp": t, "Status": "waiting_for_upload",
                        "Message": "waiting for the photo to arrive at the upload link" });
                    Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "waiting_for_upload", "waiting for the photo")
                        .with_extra(body)
                        .with_retry_after(RETRY_AFTER))
                }
            }
            UploadState::Taken { job, .. } => match state.pipeline.jobs.get(&job).await? {
                Some(job) => Ok(job),
                None => Err(ApiError::not_found("no_such_job", format!("the job of upload {upload_id} is gone"))),
            },
            UploadState::Refused { reason } => Err(super::uploads::refused(reason)),
            UploadState::Waiting { .. } => {
                Err(ApiError::not_found("no_such_job", format!("there is no job {id} with timestamp {timestamp}")))
            }
        };
    }
    let id = JobId::parse(id).map_err(|e| ApiError::bad_request("bad_id", e))?;
    let job = state.pipeline.jobs.get(&id).await?;
    match job {
        Some(job) if job.timestamp == timestamp => Ok(job),
        _ => Err(ApiError::not_found("no_such_job", format!("there is no job {id} with timestamp {timestamp}"))),
    }
}

fn header_value(headers: &HeaderMap, name: &str) -> Result<String, ApiError> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()).ok_or_else(
        || {
            ApiError::bad_request(
                "missing_header",
                format!("send the `{name}` header with the value /upload answered with (headers ETag and Timestamp)"),
            )
        },
    )
}

fn merge(mut a: serde_json::Value, b: serde_json::Value) -> serde_json::Value {
    if let (Some(a), serde_json::Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}
