//! `POST /bulk` (and `GET` with a body, as the original had): the state of
//! several jobs at once, and the finished ones' links sent as one email.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use storytime_pipeline::JobStatus;
use storytime_pipeline::ports::Email;

use super::request::{authorize, read_body};
use super::view::JobView;
use crate::error::ApiError;
use crate::state::AppState;

const MAX_ITEMS: usize = 100;

#[derive(Deserialize)]
struct Key {
    #[serde(rename = "Id", alias = "ID", alias = "id")]
    id: String,
    #[serde(rename = "Timestamp", alias = "timestamp")]
    timestamp: String,
}

pub async fn bulk(State(state): State<AppState>, request: Parts, body: Body) -> Result<Response, ApiError> {
    let caller = authorize(&state, &request).await?;
    let headers = &request.headers;
    let bytes = read_body(headers, body, 64 * 1024).await?;
    let keys: Vec<Key> = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request(
            "bad_json",
            format!("send a JSON array like [{{\"Id\": \"…\", \"Timestamp\": \"…\"}}] ({e})"),
        )
    })?;
    if keys.is_empty() {
        return Err(ApiError::bad_request("empty_list", "the list of jobs is empty"));
    }
    if keys.len() > MAX_ITEMS {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_items",
            format!("at most {MAX_ITEMS} jobs per request"),
        ));
    }

    let mut items = Vec::with_capacity(keys.len());
    let mut summary = String::new();
    for key in &keys {
        match super::retrieve::find(&state, &key.id, &key.timestamp).await {
            Ok(job) => {
                let links = state.pipeline.links(&job).await?;
                if job.status == JobStatus::Done {
                    summary.push_str(&format!(
                        "Original Image: {} url: {}\nMP3 url: {}\n\n",
                        job.name,
                        links.original,
                        links.audio.as_deref().unwrap_or_default()
                    ));
                }
                items.push(serde_json::to_value(JobView::new(&job, &links)).unwrap_or_default());
            }
            Err(e) if e.status == StatusCode::NOT_FOUND || e.status == StatusCode::BAD_REQUEST => {
                items.push(json!({ "ID": key.id, "Timestamp": key.timestamp, "Status": "not_found" }));
            }
            Err(e) => return Err(e),
        }
    }
    if summary.is_empty() {
        return Err(ApiError::not_found("nothing_ready", "none of these jobs has finished narration yet")
            .with_extra(json!({ "Items": items })));
    }
    // The email goes to the configured recipients: at most so many an hour,
    // however many times this is asked.
    state.pipeline.rates.mail(&caller.0, "default recipients").map_err(|wait| {
        ApiError::rate_limited("mail_rate_limited", "emails", wait).with_extra(json!({ "Items": items }))
    })?;
    let email = Email { to: None, subject: "Get your voice stories".into(), body: summary.clone() };
    state.pipeline.notifier.notify(&email).await?;
    Ok(Json(json!({ "Items": items, "Message": summary, "Notified": true })).into_response())
}
