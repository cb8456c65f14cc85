//! The local email channel: each email becomes an `.eml` file in the
//! outbox folder, ready for any mail client or `sendmail -t` to send.

use std::path::PathBuf;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::domain::{PortError, now_ms};
use crate::ports::{Email, Notifier};

pub struct OutboxNotifier {
    dir: PathBuf,
    from: String,
    default_to: String,
}

impl OutboxNotifier {
    pub fn new(dir: PathBuf, from: String, default_to: String) -> Self {
        Self { dir, from, default_to }
    }

    fn render(&self, email: &Email) -> String {
        let date = jiff::Timestamp::now().strftime("%a, %d %b %Y %H:%M:%S +0000").to_string();
        let to = email.to.as_deref().unwrap_or(&self.default_to);
        let body = email.body.replace("\r\n", "\n").replace('\n', "\r\n");
        format!(
            "From: {}\r\nTo: {}\r\nSubject: {}\r\nDate: {}\r\nMessage-ID: <{}@storytime.local>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{}\r\n",
            header_value(&self.from),
            header_value(to),
            encode_subject(&email.subject),
            date,
            uuid::Uuid::new_v4().simple(),
            body
        )
    }
}

/// Header values are one line: any CR/LF a value smuggles in is dropped.
fn header_value(v: &str) -> String {
    v.chars().filter(|c| !c.is_control()).collect()
}

/// RFC 2047 encoded-word for subjects that are not plain ASCII.
fn encode_subject(subject: &str) -> String {
    let clean = header_value(subject);
    if clean.is_ascii() { clean } else { format!("=?UTF-8?B?{}?=", STANDARD.encode(clean.as_bytes())) }
}

#[async_trait]
impl Notifier for OutboxNotifier {
    async fn notify(&self, email: &Email) -> Result<(), PortError> {
        let fail = |e: std::io::Error| PortError::rejected("the outbox", format!("{}: {e}", self.dir.display()));
        tokio::fs::create_dir_all(&self.dir).await.map_err(fail)?;
        let name = format!("{}-{}", now_ms(), uuid::Uuid::new_v4().simple());
        let tmp = self.dir.join(format!(".{name}.tmp"));
        tokio::fs::write(&tmp, self.render(email)).await.map_err(fail)?;
        tokio::fs::rename(&tmp, self.dir.join(format!("{name}.eml"))).await.map_err(fail)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn emails_are_written_as_eml_files_with_safe_headers() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = OutboxNotifier::new(
            dir.path().join("outbox"),
            "Storytime <st@localhost>".into(),
            "parent@localhost".into(),
        );
        let email =
            Email { to: None, subject: "Your story: 토끼\r\nBcc: evil@x".into(), body: "line 1\nline 2".into() };
        outbox.notify(&email).await.unwrap();
        let files: Vec<_> = std::fs::read_dir(dir.path().join("outbox")).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].extension().unwrap(), "eml");
        let text = std::fs::read_to_string(&files[0]).unwrap();
        assert!(text.contains("To: parent@localhost\r\n"));
        assert!(text.contains("Subject: =?UTF-8?B?"));
        assert!(!text.contains("\r\nBcc:"));
        assert!(text.ends_with("line 1\r\nline 2\r\n"));
    }
}
