//! Identifiers. Each is a validated newtype so that a string from a request
//! header can never become a file path or a storage key by accident.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A job's id: a UUID v4 in its hyphenated lowercase form, as the original
/// service issued them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct JobId(String);

impl JobId {
    pub fn new() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    /// Accepts a UUID in any case, with or without surrounding quotes (HTTP
    /// clients often echo an `ETag` back quoted).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let trimmed = raw.trim().trim_start_matches("W/").trim_matches('"');
        uuid::Uuid::parse_str(trimmed)
            .map(|u| Self(u.hyphenated().to_string()))
            .map_err(|_| format!("`{}` is not a job id", shorten(raw)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for JobId {
    fn default() -> Self {
        Self::new()
    }
}

impl TryFrom<String> for JobId {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<JobId> for String {
    fn from(id: JobId) -> Self {
        id.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A SHA-256 digest in lowercase hex: the identity of a page's content.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ContentId(String);

impl ContentId {
    pub fn of(bytes: &[u8]) -> Self {
        Self(hex::encode(Sha256::digest(bytes)))
    }

    pub fn from_digest(digest: Sha256) -> Self {
        Self(hex::encode(digest.finalize()))
    }

    /// Combines several ids (and a qualifier such as a voice) into one, for
    /// keys that depend on more than one thing.
    pub fn combine<'a>(parts: impl IntoIterator<Item = &'a str>) -> Self {
        let mut h = Sha256::new();
        for p in parts {
            h.update((p.len() as u64).to_le_bytes());
            h.update(p.as_bytes());
        }
        Self::from_digest(h)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ContentId {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        if value.len() == 64 && value.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(Self(value))
        } else {
            Err(format!("`{}` is not a content id", shorten(&value)))
        }
    }
}

impl From<ContentId> for String {
    fn from(id: ContentId) -> Self {
        id.0
    }
}

impl fmt::Display for ContentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a blob lives in the blob store. The key scheme is owned here and
/// nowhere else: originals, raw readings and audio each have a prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BlobKey(String);

impl BlobKey {
    /// The photo as uploaded, stored once per content.
    pub fn original(content: &ContentId, extension: &str) -> Self {
        Self(format!("originals/{content}.{extension}"))
    }

    /// The text reader's raw answer for one page, kept for inspection.
    pub fn reading(pixels: &ContentId) -> Self {
        Self(format!("readings/{pixels}.json"))
    }

    /// One narration, shared by every job with the same text and voice.
    pub fn audio(narration: &ContentId) -> Self {
        Self(format!("audio/{narration}.mp3"))
    }

    /// The word timings of a narration as WebVTT captions.
    pub fn captions(narration: &ContentId) -> Self {
        Self(format!("audio/{narration}.vtt"))
    }

    /// A photo a client uploads straight to storage, named by the upload's
    /// ID (32 lowercase hex digits); kept until the upload is taken in.
    pub fn incoming(upload: &str) -> Result<Self, String> {
        if upload.len() == 32 && upload.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            Ok(Self(format!("incoming/{upload}")))
        } else {
            Err(format!("`{}` is not an upload ID", shorten(upload)))
        }
    }

    /// The upload ID of an `incoming/` key.
    pub fn upload_id(&self) -> Option<&str> {
        self.0.strip_prefix("incoming/")
    }

    /// Parses a key from outside (a media link path). Only the key shapes
    /// built above are accepted, so a key can never climb out of the store.
    pub fn parse(raw: &str) -> Result<Self, String> {
        Self::try_from(raw.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The file name part, e.g. `3f…9a.mp3`.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// The MIME type implied by the key's extension.
    pub fn content_type(&self) -> &'static str {
        match self.0.rsplit('.').next() {
            Some("mp3") => "audio/mpeg",
            Some("json") => "application/json",
            Some("vtt") => "text/vtt; charset=utf-8",
            Some("jpeg" | "jpg") => "image/jpeg",
            Some("png") => "image/png",
            Some("gif") => "image/gif",
            Some("webp") => "image/webp",
            Some("bmp") => "image/bmp",
            Some("tiff") => "image/tiff",
            Some("heic") => "image/heic",
            _ => "application/octet-stream",
        }
    }
}

impl TryFrom<String> for BlobKey {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        let ok = value.split_once('/').is_some_and(|(prefix, rest)| {
            matches!(prefix, "originals" | "readings" | "audio" | "incoming")
                && !rest.is_empty()
                && rest.len() <= 80
                && !rest.starts_with('.')
                && rest.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.')
        });
        if ok { Ok(Self(value)) } else { Err(format!("`{}` is not a storage key", shorten(&value))) }
    }
}

impl From<BlobKey> for String {
    fn from(k: BlobKey) -> Self {
        k.0
    }
}

impl fmt::Display for BlobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Error messages quote user input; keep them short.
fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(48).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_accept_quoted_and_uppercase_forms() {
        let id = JobId::new();
        let quoted = format!("\"{}\"", id.as_str().to_uppercase());
        assert_eq!(JobId::parse(&quoted).unwrap(), id);
        assert!(JobId::parse("../../etc/passwd").is_err());
    }

    #[test]
    fn blob_keys_refuse_paths_that_leave_the_store() {
        assert!(BlobKey::parse("audio/../../secret").is_err());
        assert!(BlobKey::parse("audio/.hidden").is_err());
        assert!(BlobKey::parse("other/abc.mp3").is_err());
        assert!(BlobKey::parse("audio/").is_err());
        let k = BlobKey::audio(&ContentId::of(b"x"));
        assert_eq!(BlobKey::parse(k.as_str()).unwrap(), k);
        assert_eq!(k.content_type(), "audio/mpeg");
    }

    #[test]
    fn combined_ids_depend_on_boundaries_between_parts() {
        assert_ne!(ContentId::combine(["ab", "c"]), ContentId::combine(["a", "bc"]));
    }
}
