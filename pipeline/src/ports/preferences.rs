use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::domain::{PortError, Speed};

/// One user's settings, kept across restarts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserPrefs {
    /// The voice to narrate with, when it speaks the page's language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice: Option<String>,
    /// How fast to read; unset is the voice's own pace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed: Option<Speed>,
    /// Results are also emailed here, and chat failures fall back to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// An address waiting for its owner to type the code mailed to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_email: Option<PendingEmail>,
}

/// An address to confirm: results go there only once the code mailed to it
/// comes back, so nobody can have Storytime mail someone else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingEmail {
    pub address: String,
    /// SHA-256 (hex) of the user key and the code; the code itself is not
    /// kept.
    pub code_digest: String,
    pub expires_ms: i64,
    /// Wrong codes typed so far; after a few the code is void.
    #[serde(default)]
    pub tries: u32,
}

/// Per-user settings, keyed by a front end's user key (e.g.
/// `slack:T123:U456`), and a front end's per-workspace records (a Slack
/// workspace's installation), kept for good: no expiry.
#[async_trait]
pub trait Preferences: Send + Sync {
    /// The user's settings; defaults when none were saved.
    async fn get(&self, user: &str) -> Result<UserPrefs, PortError>;
    async fn set(&self, user: &str, prefs: &UserPrefs) -> Result<(), PortError>;

    /// The record stored under `key`, if any.
    async fn record(&self, key: &str) -> Result<Option<String>, PortError>;
    /// Stores `value` under `key`, replacing what was there.
    async fn put_record(&self, key: &str, value: &str) -> Result<(), PortError>;
    /// [`Preferences::put_record`] for a record about one job (an
    /// upload's state), kept as long as the job records are: where job
    /// records expire, it expires with them.
    async fn put_job_record(&self, key: &str, value: &str) -> Result<(), PortError> {
        self.put_record(key, value).await
    }
    /// Removes the record under `key`; removing a missing one is no error.
    async fn delete_record(&self, key: &str) -> Result<(), PortError>;
}
