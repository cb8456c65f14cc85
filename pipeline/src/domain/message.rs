//! The typed messages that flow between stages. They carry ids, never
//! bytes: the image, the reading and the audio stay in the blob store.
//! A message may also carry a copy of its job as it was when the message
//! was sent, which saves the stage a read of the job store.

use serde::{Deserialize, Serialize};

use super::{Job, JobId};

/// The largest job copy a message carries (as JSON): far under any
/// queue's message limit (SQS takes 256 KiB). A larger job travels by ID.
pub const MAX_SNAPSHOT_BYTES: usize = 32 * 1024;

/// A copy of a job as it was stored when a message was sent. Stages use it
/// instead of reading the job store; every write they make is conditional
/// on the copy's version, so a stale copy costs a re-read, never a lost
/// update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Snapshot(Box<Job>);

impl Snapshot {
    /// A copy of `job`, unless its JSON is larger than [`MAX_SNAPSHOT_BYTES`].
    pub fn of(job: &Job) -> Option<Self> {
        let size = serde_json::to_vec(job).map(|v| v.len()).unwrap_or(usize::MAX);
        (size <= MAX_SNAPSHOT_BYTES).then(|| Self(Box::new(job.clone())))
    }

    pub fn into_job(self) -> Job {
        *self.0
    }
}

/// One unit of work for one stage. Stages are idempotent per message, since
/// every queue delivers at least once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum StageMessage {
    /// Read the text of one page of a job.
    Read {
        job: JobId,
        page: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        snapshot: Option<Snapshot>,
    },
    /// Narrate a job whose pages are all read.
    Narrate {
        job: JobId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        snapshot: Option<Snapshot>,
    },
    /// Deliver a finished (or failed) job to one of its recipients.
    Deliver { job: JobId, recipient: usize },
    /// A request a front end accepted and acknowledged (a Slack event, a
    /// shortcut): recorded here before the acknowledgement so it is never
    /// lost, handled by the front end's inbound handler. `key` identifies
    /// the request; repeats of a key are handled once.
    Inbound { source: String, key: String, payload: String },
}

impl StageMessage {
    /// Read page `page` of the job with this ID.
    pub fn read(job: JobId, page: usize) -> Self {
        Self::Read { job, page, snapshot: None }
    }

    /// Narrate the job with this ID.
    pub fn narrate(job: JobId) -> Self {
        Self::Narrate { job, snapshot: None }
    }

    /// Read page `page` of `job`, carrying a copy of it.
    pub fn read_of(job: &Job, page: usize) -> Self {
        Self::Read { job: job.id.clone(), page, snapshot: Snapshot::of(job) }
    }

    /// Narrate `job`, carrying a copy of it.
    pub fn narrate_of(job: &Job) -> Self {
        Self::Narrate { job: job.id.clone(), snapshot: Snapshot::of(job) }
    }

    pub fn stage(&self) -> Stage {
        match self {
            Self::Read { .. } => Stage::Read,
            Self::Narrate { .. } => Stage::Narrate,
            Self::Deliver { .. } => Stage::Deliver,
            Self::Inbound { .. } => Stage::Inbound,
        }
    }

    /// The job the message is about; inbound requests have none yet.
    pub fn job(&self) -> Option<&JobId> {
        match self {
            Self::Read { job, .. } | Self::Narrate { job, .. } | Self::Deliver { job, .. } => Some(job),
            Self::Inbound { .. } => None,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("stage messages always serialize")
    }

    /// Reads a message as a queue holds it: a stage message, or an S3
    /// event saying a photo arrived in the bucket's `incoming/` area (S3
    /// sends those to the inbound queue), which becomes an inbound request
    /// of the `upload` source. S3's test event becomes one with no upload.
    pub fn from_json(body: &str) -> Result<Self, String> {
        match serde_json::from_str(body) {
            Ok(message) => Ok(message),
            Err(e) => storage_event(body).ok_or_else(|| format!("unreadable stage message: {e}")),
        }
    }
}

/// The upload an S3 event notification is about, as an inbound request.
fn storage_event(body: &str) -> Option<StageMessage> {
    let event: serde_json::Value = serde_json::from_str(body).ok()?;
    let upload = |id: &str| StageMessage::Inbound {
        source: crate::stages::UPLOAD_SOURCE.to_owned(),
        key: format!("upload:{id}"),
        payload: id.to_owned(),
    };
    if event["Event"] == "s3:TestEvent" {
        return Some(upload(""));
    }
    let records = event["Records"].as_array()?;
    let [record] = records.as_slice() else { return None };
    let created = record["eventSource"] == "aws:s3"
        && record["eventName"].as_str().is_some_and(|name| name.starts_with("ObjectCreated:"));
    // Keys come URL-encoded (`/` too, from some emulators).
    let key = url_decode(record["s3"]["object"]["key"].as_str()?)?;
    let id = key.strip_prefix("incoming/")?;
    created.then(|| upload(id))
}

/// Decodes `%XX` escapes and `+` (a space), as S3 event keys are written.
fn url_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'%' => {
                let hex = [bytes.next()?, bytes.next()?];
                out.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
    }
    String::from_utf8(out).ok()
}

/// The stages that run behind a queue (intake runs in the front end).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Inbound,
    Read,
    Narrate,
    Deliver,
}

impl Stage {
    pub const ALL: [Stage; 4] = [Stage::Inbound, Stage::Read, Stage::Narrate, Stage::Deliver];

    pub fn name(self) -> &'static str {
        match self {
            Self::Inbound => "inbound",
            Self::Read => "read",
            Self::Narrate => "narrate",
            Self::Deliver => "deliver",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.name() == s)
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_through_their_wire_form() {
        let m = StageMessage::Deliver { job: JobId::new(), recipient: 2 };
        let wire = m.to_json();
        assert!(wire.contains("\"type\":\"Deliver\""));
        assert_eq!(StageMessage::from_json(&wire).unwrap(), m);
        assert!(StageMessage::from_json("{\"type\":\"Burn\"}").is_err());
    }

    #[test]
    fn an_s3_event_for_an_incoming_photo_is_an_upload_request() {
        let event = r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"eu-west-1",
            "eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"media"},
            "object":{"key":"incoming/0123456789abcdef0123456789abcdef","size":7340032}}}]}"#;
        let StageMessage::Inbound { source, key, payload } = StageMessage::from_json(event).unwrap() else {
            panic!("not an inbound request");
        };
        assert_eq!((source.as_str(), key.as_str()), ("upload", "upload:0123456789abcdef0123456789abcdef"));
        assert_eq!(payload, "0123456789abcdef0123456789abcdef");
        let test = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"media"}"#;
        assert!(
            matches!(StageMessage::from_json(test), Ok(StageMessage::Inbound { payload, .. }) if payload.is_empty())
        );
        let encoded = event.replace("incoming/", "incoming%2F");
        assert_eq!(StageMessage::from_json(&encoded), StageMessage::from_json(event));
        // Anything else in the bucket, or any other event, is not one.
        assert!(StageMessage::from_json(&event.replace("incoming/", "audio/")).is_err());
        assert!(StageMessage::from_json(&event.replace("ObjectCreated:Put", "ObjectRemoved:Delete")).is_err());
    }

    #[test]
    fn a_message_carries_a_copy_of_a_small_job_only() {
        let job = Job::new(Vec::new(), "a.png".into(), None, crate::domain::Reuse::SameJob, 0);
        let wire = StageMessage::narrate_of(&job).to_json();
        let Ok(StageMessage::Narrate { snapshot: Some(copy), .. }) = StageMessage::from_json(&wire) else {
            panic!("no copy in {wire}");
        };
        assert_eq!(copy.into_job(), job);
        // Messages sent without a copy (and before copies existed) still read.
        let bare = format!("{{\"type\":\"Read\",\"job\":\"{}\",\"page\":1}}", job.id);
        assert_eq!(StageMessage::from_json(&bare).unwrap(), StageMessage::read(job.id.clone(), 1));

        let mut big = job.clone();
        big.text = Some("word ".repeat(MAX_SNAPSHOT_BYTES / 5));
        assert_eq!(StageMessage::narrate_of(&big), StageMessage::narrate(job.id.clone()));
        assert!(StageMessage::narrate_of(&big).to_json().len() < 100);
    }
}
