//! Which adapter backs each port.

use super::env::{Env, SettingsError};
use super::pipeline::piper_program;
use crate::adapters::local::piper_found;

/// The adapter behind each port: `STORYTIME_BACKEND=local|aws` picks a
/// family, and each port's own variable overrides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backends {
    /// `STORYTIME_BLOBS=fs|s3`
    pub blobs: BlobsBackend,
    /// `STORYTIME_QUEUE=sqlite|sqs`
    pub queue: QueueBackend,
    /// `STORYTIME_JOBS=sqlite|dynamodb` (user preferences live beside jobs)
    pub jobs: JobsBackend,
    /// `STORYTIME_READER=tesseract|rekognition|textract`
    pub reader: ReaderBackend,
    /// `STORYTIME_NARRATOR=piper|espeak|polly`: locally Piper when it is
    /// installed, else espeak-ng.
    pub narrator: NarratorBackend,
    /// `STORYTIME_NOTIFIER=outbox|sns`
    pub notifier: NotifierBackend,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobsBackend {
    Fs,
    S3,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueBackend {
    Sqlite,
    Sqs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobsBackend {
    Sqlite,
    DynamoDb,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReaderBackend {
    Tesseract,
    /// Rekognition `DetectText`: sparse picture-book pages (it stops at 100 words).
    Rekognition,
    /// Textract `DetectDocumentText`: dense pages.
    Textract,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NarratorBackend {
    /// Piper for English, espeak-ng for Korean.
    Piper,
    Espeak,
    Polly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifierBackend {
    Outbox,
    Sns,
}

impl Backends {
    pub fn from_env(env: &Env) -> Result<Self, SettingsError> {
        let aws = match env.get("STORYTIME_BACKEND").as_deref() {
            None | Some("local") => false,
            Some("aws") => true,
            Some(other) => {
                return Err(SettingsError::new("STORYTIME_BACKEND", format!("`{other}` is not local or aws")));
            }
        };
        Ok(Self {
            blobs: port(env, "STORYTIME_BLOBS", aws, &[("fs", BlobsBackend::Fs), ("s3", BlobsBackend::S3)])?,
            queue: port(env, "STORYTIME_QUEUE", aws, &[("sqlite", QueueBackend::Sqlite), ("sqs", QueueBackend::Sqs)])?,
            jobs: port(
                env,
                "STORYTIME_JOBS",
                aws,
                &[("sqlite", JobsBackend::Sqlite), ("dynamodb", JobsBackend::DynamoDb)],
            )?,
            reader: port(
                env,
                "STORYTIME_READER",
                aws,
                &[
                    ("tesseract", ReaderBackend::Tesseract),
                    ("rekognition", ReaderBackend::Rekognition),
                    ("textract", ReaderBackend::Textract),
                ],
            )?,
            narrator: env.choose(
                "STORYTIME_NARRATOR",
                match aws {
                    true => NarratorBackend::Polly,
                    false if piper_found(&piper_program(env)) => NarratorBackend::Piper,
                    false => NarratorBackend::Espeak,
                },
                &[
                    ("piper", NarratorBackend::Piper),
                    ("espeak", NarratorBackend::Espeak),
                    ("polly", NarratorBackend::Polly),
                ],
            )?,
            notifier: port(
                env,
                "STORYTIME_NOTIFIER",
                aws,
                &[("outbox", NotifierBackend::Outbox), ("sns", NotifierBackend::Sns)],
            )?,
        })
    }

    /// Whether any port runs on AWS (and the SDK's settings must load).
    pub fn uses_aws(&self) -> bool {
        self.blobs == BlobsBackend::S3
            || self.queue == QueueBackend::Sqs
            || self.jobs == JobsBackend::DynamoDb
            || self.reader != ReaderBackend::Tesseract
            || self.narrator == NarratorBackend::Polly
            || self.notifier == NotifierBackend::Sns
    }

    /// Whether anything lives in the local data directory.
    pub fn uses_data_dir(&self) -> bool {
        self.blobs == BlobsBackend::Fs
            || self.queue == QueueBackend::Sqlite
            || self.jobs == JobsBackend::Sqlite
            || self.notifier == NotifierBackend::Outbox
    }

    /// Whether the local database holds the queues or the jobs.
    pub fn uses_sqlite(&self) -> bool {
        self.queue == QueueBackend::Sqlite || self.jobs == JobsBackend::Sqlite
    }
}

/// One port's adapter: its variable when set, else the family's choice —
/// the first option for `local`, the second for `aws`.
fn port<T: Copy>(env: &Env, name: &str, aws: bool, options: &[(&str, T)]) -> Result<T, SettingsError> {
    env.choose(name, options[usize::from(aws)].1, options)
}
