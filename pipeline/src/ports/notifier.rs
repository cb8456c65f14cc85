use async_trait::async_trait;

use crate::domain::PortError;

/// A plain-text email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    /// `None`: the service's default recipients.
    pub to: Option<String>,
    /// One line, no control characters, under 100 characters.
    pub subject: String,
    pub body: String,
}

/// The email channel: the fallback when chat delivery fails and the
/// channel for users who asked for email.
#[async_trait]
pub trait Notifier: Send + Sync {
    async fn notify(&self, email: &Email) -> Result<(), PortError>;
}
