//! The composition root: settings in, a pipeline of adapters out. The only
//! place that decides which adapter backs which port.

use std::path::Path;
use std::sync::Arc;

use crate::adapters::aws::{AwsReader, DynamoJobStore, PollyNarrator, S3BlobStore, SnsNotifier, SqsQueue};
use crate::adapters::local::{
    Db, EspeakNarrator, FsBlobStore, MediaSigner, OutboxNotifier, SqliteJobStore, SqlitePreferences, SqliteQueue,
    TesseractReader,
};
use crate::domain::PortError;
use crate::ports::{BlobStore, JobStore, Narrator, Notifier, Preferences, Queue, TextReader};
use crate::settings::{
    BlobsBackend, JobsBackend, NarratorBackend, NotifierBackend, QueueBackend, ReaderBackend, Settings,
};
use crate::stages::{Pipeline, PipelineConfig};

/// A wired pipeline, plus the local blob store when the front end must
/// serve `/media/...` itself.
pub struct Wired {
    pub pipeline: Arc<Pipeline>,
    pub media: Option<Arc<FsBlobStore>>,
}

/// The AWS SDK's settings, from the standard chain (environment, profile,
/// instance or task role) with the retry policy Storytime wants: throttling
/// and server errors are retried up to five times with backoff.
pub async fn aws_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(5))
        .load()
        .await
}

/// Opens what the configured backends need and wires the pipeline. The
/// local parts (data directory, database) are created when missing; AWS
/// resources must exist already (`storytime init` creates them).
pub async fn build(settings: &Settings) -> Result<Wired, PortError> {
    let aws = if settings.backends.uses_aws() { Some(aws_config().await) } else { None };
    build_with(settings, aws).await
}

/// [`build`] with the AWS SDK settings given (tests point them at moto).
pub async fn build_with(settings: &Settings, aws: Option<aws_config::SdkConfig>) -> Result<Wired, PortError> {
    let backends = settings.backends;
    if backends.uses_aws() && aws.is_none() {
        return Err(PortError::rejected("the AWS settings", "a port runs on AWS but no AWS settings were given"));
    }
    let aws = aws.as_ref();
    let sdk = || aws.expect("loaded when a port uses AWS");
    let data = &settings.data_dir;
    if backends.uses_data_dir() {
        let setup = |what: &str, e: std::io::Error| PortError::rejected(what, format!("{}: {e}", data.display()));
        std::fs::create_dir_all(data).map_err(|e| setup("the data directory", e))?;
    }
    let db = if backends.queue == QueueBackend::Sqlite || backends.jobs == JobsBackend::Sqlite {
        Some(Db::open(&settings.database_path())?)
    } else {
        None
    };
    let db = || db.clone().expect("opened when a port uses SQLite");

    let mut media = None;
    let blobs: Arc<dyn BlobStore> = match backends.blobs {
        BlobsBackend::Fs => {
            let signer = MediaSigner::new(media_secret(settings)?, &settings.public_url());
            let fs = Arc::new(FsBlobStore::new(data.join("blobs"), signer));
            media = Some(fs.clone());
            fs
        }
        BlobsBackend::S3 => Arc::new(S3BlobStore::new(sdk(), &settings.aws.bucket, settings.aws.cdn_url.clone())),
    };
    let queue: Arc<dyn Queue> = match backends.queue {
        QueueBackend::Sqlite => Arc::new(SqliteQueue::new(db())),
        QueueBackend::Sqs => Arc::new(SqsQueue::new(sdk(), &settings.aws.queue_prefix)),
    };
    let (jobs, prefs): (Arc<dyn JobStore>, Arc<dyn Preferences>) = match backends.jobs {
        JobsBackend::Sqlite => (Arc::new(SqliteJobStore::new(db())), Arc::new(SqlitePreferences::new(db()))),
        JobsBackend::DynamoDb => {
            let store = Arc::new(dynamo(sdk(), settings));
            (store.clone(), store)
        }
    };
    let notifier: Arc<dyn Notifier> = match backends.notifier {
        NotifierBackend::Outbox => {
            Arc::new(OutboxNotifier::new(data.join("outbox"), settings.email_from.clone(), settings.email_to.clone()))
        }
        NotifierBackend::Sns => Arc::new(SnsNotifier::new(sdk(), &settings.aws.topic)),
    };
    let pipeline = Pipeline {
        blobs,
        queue,
        jobs,
        prefs,
        reader: text_reader(settings, aws),
        narrator: narrator(settings, aws),
        notifier,
        config: config(settings),
        front_end: Default::default(),
    };
    Ok(Wired { pipeline: Arc::new(pipeline), media })
}

pub fn dynamo(sdk: &aws_config::SdkConfig, settings: &Settings) -> DynamoJobStore {
    DynamoJobStore::new(sdk, &settings.aws.table, settings.aws.record_ttl)
}

/// The configured text reader. The AWS readers keep Tesseract for Korean
/// pages and for telling how a page lies.
pub fn text_reader(settings: &Settings, aws: Option<&aws_config::SdkConfig>) -> Arc<dyn TextReader> {
    let tesseract: Arc<dyn TextReader> = Arc::new(TesseractReader::new(&settings.tesseract));
    match (settings.backends.reader, aws) {
        (ReaderBackend::Rekognition, Some(sdk)) => Arc::new(AwsReader::rekognition(sdk, tesseract)),
        (ReaderBackend::Textract, Some(sdk)) => Arc::new(AwsReader::textract(sdk, tesseract)),
        _ => tesseract,
    }
}

/// The configured narrator.
pub fn narrator(settings: &Settings, aws: Option<&aws_config::SdkConfig>) -> Arc<dyn Narrator> {
    match (settings.backends.narrator, aws) {
        (NarratorBackend::Polly, Some(sdk)) => Arc::new(PollyNarrator::new(sdk, &settings.aws.polly_engine)),
        _ => Arc::new(EspeakNarrator::new(&settings.espeak)),
    }
}

pub fn config(settings: &Settings) -> PipelineConfig {
    PipelineConfig {
        limits: settings.limits,
        max_pages: settings.max_pages,
        max_text_chars: settings.max_text_chars,
        link_ttl: settings.link_ttl,
        stall_after: settings.workers.stall_after,
        default_voice: settings.default_voice.clone(),
    }
}

/// The media-link key: from `STORYTIME_MEDIA_SECRET`, or a random one made
/// on first start and kept (readable by the owner only) in the data dir, so
/// links stay valid across restarts.
fn media_secret(settings: &Settings) -> Result<Vec<u8>, PortError> {
    if let Some(s) = &settings.media_secret {
        return Ok(s.expose().as_bytes().to_vec());
    }
    let path = settings.data_dir.join("media.key");
    read_or_create_secret(&path)
}

fn read_or_create_secret(path: &Path) -> Result<Vec<u8>, PortError> {
    let fail = |e: std::io::Error| PortError::rejected("the media key", format!("{}: {e}", path.display()));
    match std::fs::read_to_string(path) {
        Ok(hex_key) => hex::decode(hex_key.trim()).map_err(|e| PortError::rejected("the media key", e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 32];
            getrandom::fill(&mut key).map_err(|e| PortError::rejected("the media key", e))?;
            let tmp = path.with_extension("tmp");
            write_private(&tmp, hex::encode(key).as_bytes()).map_err(fail)?;
            // Another process may have won the race: keep whichever landed.
            match std::fs::hard_link(&tmp, path) {
                Ok(()) | Err(_) => {
                    let _ = std::fs::remove_file(&tmp);
                }
            }
            read_or_create_secret(path)
        }
        Err(e) => Err(fail(e)),
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    f.write_all(bytes)
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_media_key_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("media.key");
        let a = read_or_create_secret(&path).unwrap();
        let b = read_or_create_secret(&path).unwrap();
        assert_eq!(a.len(), 32);
        assert_eq!(a, b);
    }
}
