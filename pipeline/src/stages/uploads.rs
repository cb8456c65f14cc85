//! Photos too large for an API request go straight to storage. The client
//! asks for an upload ([`Pipeline::expect_upload`]) and gets a link to
//! `PUT` the photo to; when storage has it (an S3 event through the inbound
//! queue, or the local store's own `PUT`), the photo is taken in
//! ([`Pipeline::take_upload`]) exactly as `/upload` takes one. The
//! upload's record says where it stands: waiting, taken (with its job) or
//! refused (with the reason), so a client polls one ID from start to end.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{IntakeError, Pipeline, SubmitRequest, Upload};
use crate::domain::{BlobKey, Destination, ErrorKind, JobId, PortError, Reuse, Speed, now_ms};

/// The inbound source of "a photo arrived in storage" messages.
pub const UPLOAD_SOURCE: &str = "upload";

/// What the client asked for with its upload: what `/upload` takes as
/// headers and form fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UploadRequest {
    pub name: Option<String>,
    pub voice: Option<String>,
    pub speed: Option<Speed>,
    /// The duplication check (`X-Duplication-Check-Required`).
    pub dedup: bool,
    /// Email the result (`X-Notification-Required`).
    pub notify: bool,
    pub owner: String,
}

/// Where an upload stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum UploadState {
    /// The link is out; the photo has not arrived.
    Waiting { request: UploadRequest, timestamp: String, expires_ms: i64 },
    /// The photo was taken in: this is its job (an earlier one when the
    /// same photo was sent before).
    Taken { job: JobId, timestamp: String },
    /// The photo was not accepted, for this reason.
    Refused { reason: String },
}

/// An upload the service now expects.
#[derive(Debug, Clone)]
pub struct ExpectedUpload {
    /// The upload's ID, which `/retrieve` takes until it names a job.
    pub id: String,
    pub timestamp: String,
    /// Where to `PUT` the photo, until `expires_in` has passed.
    pub url: String,
    pub expires_in: Duration,
}

fn record_key(id: &str) -> String {
    format!("upload:{id}")
}

impl Pipeline {
    /// Records an upload and hands out the link its photo goes to.
    pub async fn expect_upload(&self, request: UploadRequest, ttl: Duration) -> Result<ExpectedUpload, PortError> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let key = BlobKey::incoming(&id).map_err(|e| PortError::rejected("uploads", e))?;
        let now = now_ms();
        let timestamp = (now / 1000).to_string();
        let state =
            UploadState::Waiting { request, timestamp: timestamp.clone(), expires_ms: now + ttl.as_millis() as i64 };
        self.put_upload_state(&id, &state).await?;
        let url = self.blobs.upload_link(&key, ttl).await?;
        Ok(ExpectedUpload { id, timestamp, url, expires_in: ttl })
    }

    /// Where the upload `id` stands; `None` for an ID never handed out.
    pub async fn upload_state(&self, id: &str) -> Result<Option<UploadState>, PortError> {
        if BlobKey::incoming(id).is_err() {
            return Ok(None);
        }
        let Some(value) = self.prefs.record(&record_key(id)).await? else { return Ok(None) };
        serde_json::from_str(&value)
            .map(Some)
            .map_err(|e| PortError::rejected("uploads", format!("unreadable upload record: {e}")))
    }

    /// Takes in the photo that arrived for upload `id`, as `/upload` would
    /// have, and removes it from the incoming area. Safe to repeat: a
    /// taken or refused upload answers as it did. A transient failure is
    /// an error worth retrying; a photo that cannot be read is refused.
    pub async fn take_upload(&self, id: &str) -> Result<UploadState, IntakeError> {
        let key = BlobKey::incoming(id).map_err(PortError::not_found)?;
        let Some(state) = self.upload_state(id).await? else {
            // Nobody asked for this upload (or its record is gone).
            self.blobs.delete(&key).await?;
            return Err(PortError::not_found(format!("upload {id}")).into());
        };
        let UploadState::Waiting { request, .. } = state else {
            self.blobs.delete(&key).await?;
            return Ok(state);
        };
        let bytes = self.blobs.get(&key).await?;
        let max = self.config.limits.image.max_bytes;
        let state = if bytes.len() > max {
            UploadState::Refused { reason: format!("the photo has {} bytes; at most {max} are taken", bytes.len()) }
        } else {
            let submitted = self
                .submit(SubmitRequest {
                    pages: vec![Upload { bytes, name: request.name.clone() }],
                    voice: request.voice.clone(),
                    speed: request.speed,
                    reuse: if request.dedup { Reuse::SameJob } else { Reuse::Nothing },
                    destinations: if request.notify { vec![Destination::Email { to: None }] } else { Vec::new() },
                    request_key: Some(record_key(id)),
                    owner: request.owner.clone(),
                })
                .await;
            match submitted {
                Ok(accepted) => UploadState::Taken { job: accepted.job.id, timestamp: accepted.job.timestamp },
                Err(e @ (IntakeError::Busy { .. } | IntakeError::Unavailable(_))) => return Err(e),
                Err(refused) => UploadState::Refused { reason: refused.to_string() },
            }
        };
        self.put_upload_state(id, &state).await?;
        match &state {
            UploadState::Taken { job, .. } => tracing::info!(upload = id, job = %job, "upload taken in"),
            _ => tracing::info!(upload = id, "upload refused"),
        }
        if let Err(e) = self.blobs.delete(&key).await {
            tracing::warn!(upload = id, error = %e, "could not remove the uploaded photo; storage expiry will");
        }
        Ok(state)
    }

    /// [`take_upload`](Self::take_upload) for a queued "photo arrived"
    /// message: what is worth retrying is retried, the rest is logged.
    pub async fn take_upload_message(&self, id: &str) -> Result<(), crate::domain::StageError> {
        match self.take_upload(id).await {
            Ok(_) => Ok(()),
            Err(IntakeError::Unavailable(e)) if e.kind() == ErrorKind::NotFound => {
                tracing::warn!(upload = id, error = %e, "a photo arrived for no upload; removed");
                Ok(())
            }
            Err(IntakeError::Busy { retry_after }) => {
                Err(crate::domain::StageError::retry("uploads", format!("busy; again in {} s", retry_after.as_secs())))
            }
            Err(IntakeError::Unavailable(e)) => Err(e.into()),
            Err(other) => Err(crate::domain::StageError::retry("uploads", other.to_string())),
        }
    }

    /// Ends an upload whose photo could not be taken in after every retry.
    pub async fn give_up_upload(&self, id: &str, reason: &str) -> Result<(), PortError> {
        if let Some(UploadState::Waiting { .. }) = self.upload_state(id).await? {
            let reason = format!("the photo could not be taken in: {reason}");
            self.put_upload_state(id, &UploadState::Refused { reason }).await?;
        }
        Ok(())
    }

    async fn put_upload_state(&self, id: &str, state: &UploadState) -> Result<(), PortError> {
        let value = serde_json::to_string(state).map_err(|e| PortError::rejected("uploads", e))?;
        self.prefs.put_job_record(&record_key(id), &value).await
    }
}
