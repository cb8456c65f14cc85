//! The API's errors: the one place HTTP statuses are chosen. Every 4xx
//! carries a JSON body saying what was wrong; 5xx details go to the log,
//! not to the client.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use storytime_pipeline::image::ImageRejection;
use storytime_pipeline::links::LinkError;
use storytime_pipeline::stages::IntakeError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Fields merged into the body beside `error` (e.g. the job's id).
    /// Boxed: most errors have none, and a JSON map is large.
    pub extra: Option<Box<Value>>,
    pub retry_after: Option<u32>,
    /// For 401: the `WWW-Authenticate` challenge.
    pub challenge: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), extra: None, retry_after: None, challenge: None }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn unauthorized() -> Self {
        let mut e = Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send a valid API key (or a token from the configured issuer) as `Authorization: Bearer <key>`",
        );
        e.challenge = Some(r#"Bearer realm="storytime""#.into());
        e
    }

    /// 401 for a bearer JWT that failed a check, saying which.
    pub fn invalid_token(reason: impl Into<String>) -> Self {
        let reason = reason.into();
        let mut e = Self::new(StatusCode::UNAUTHORIZED, "invalid_token", reason.clone());
        let description: String = reason.chars().filter(|c| *c != '"' && *c != '\\' && !c.is_control()).collect();
        e.challenge =
            Some(format!(r#"Bearer realm="storytime", error="invalid_token", error_description="{description}""#));
        e
    }

    /// A fault on our side: logged in full, reported to the client briefly.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "request failed");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Storytime could not handle this right now; try again shortly",
        )
        .with_retry_after(5)
    }

    /// 429: the sender has used up a rate limit for now.
    pub fn rate_limited(code: &'static str, what: &str, wait: std::time::Duration) -> Self {
        let seconds = wait.as_secs().max(1);
        Self::new(StatusCode::TOO_MANY_REQUESTS, code, format!("too many {what}; try again in {seconds} seconds"))
            .with_retry_after(seconds.min(u32::MAX as u64) as u32)
    }

    pub fn with_extra(mut self, extra: Value) -> Self {
        self.extra = Some(Box::new(extra));
        self
    }

    pub fn with_retry_after(mut self, seconds: u32) -> Self {
        self.retry_after = Some(seconds);
        self
    }
}

impl From<ImageRejection> for ApiError {
    fn from(r: ImageRejection) -> Self {
        let status = match r {
            ImageRejection::Empty => StatusCode::BAD_REQUEST,
            ImageRejection::TooLarge { .. } | ImageRejection::TooManyPixels { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ImageRejection::Svg | ImageRejection::Heic | ImageRejection::NotAnImage(_) => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            ImageRejection::Truncated(_) | ImageRejection::Damaged(_) | ImageRejection::TooSmall { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
        };
        Self::new(status, r.code(), r.to_string())
    }
}

impl From<IntakeError> for ApiError {
    fn from(e: IntakeError) -> Self {
        match e {
            IntakeError::Rejected { reason, .. } => reason.into(),
            IntakeError::TooManyPages { .. } => {
                Self::new(StatusCode::PAYLOAD_TOO_LARGE, "too_many_pages", e.to_string())
            }
            IntakeError::NoPages => Self::bad_request("empty_body", e.to_string()),
            IntakeError::NotRead => Self::new(StatusCode::CONFLICT, "not_read", e.to_string()),
            IntakeError::Busy { retry_after } => Self::new(StatusCode::SERVICE_UNAVAILABLE, "busy", e.to_string())
                .with_retry_after(retry_after.as_secs() as u32),
            IntakeError::Unavailable(port) => port.into(),
        }
    }
}

impl From<LinkError> for ApiError {
    fn from(e: LinkError) -> Self {
        match e {
            LinkError::Expired => Self::new(StatusCode::GONE, "link_expired", e.to_string()),
            LinkError::Invalid => Self::new(StatusCode::FORBIDDEN, "bad_link", e.to_string()),
        }
    }
}

impl From<storytime_pipeline::PortError> for ApiError {
    fn from(e: storytime_pipeline::PortError) -> Self {
        if e.kind() == storytime_pipeline::ErrorKind::StorageFull {
            tracing::error!(error = %e, "out of space: free some on the data directory's disk");
            return Self::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "storage_full",
                "Storytime's storage is full; nothing was kept. Try again later",
            )
            .with_retry_after(60);
        }
        Self::internal(e)
    }
}

impl From<storytime_pipeline::StageError> for ApiError {
    fn from(e: storytime_pipeline::StageError) -> Self {
        Self::internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": { "code": self.code, "message": self.message } });
        if let (Some(extra), Value::Object(map)) = (self.extra, &mut body)
            && let Value::Object(extra) = *extra
        {
            map.extend(extra);
        }
        let mut response = (self.status, Json(body)).into_response();
        if let Some(s) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if let Some(challenge) = self.challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}
