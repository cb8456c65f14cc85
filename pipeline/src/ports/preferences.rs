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
}

/// Per-user settings, keyed by a front end's user key (e.g.
/// `slack:T123:U456`).
#[async_trait]
pub trait Preferences: Send + Sync {
    /// The user's settings; defaults when none were saved.
    async fn get(&self, user: &str) -> Result<UserPrefs, PortError>;
    async fn set(&self, user: &str, prefs: &UserPrefs) -> Result<(), PortError>;
}
