//! The pipeline's settings as a whole.

use std::path::PathBuf;
use std::time::Duration;

use super::aws::AwsSettings;
use super::backends::Backends;
use super::env::{Env, Secret, SettingsError};
use super::limits::Limits;
use super::workers::WorkerSettings;

#[derive(Debug, Clone)]
pub struct PipelineSettings {
    /// `STORYTIME_DATA_DIR` (default `./.storytime`): where the embedded
    /// default keeps everything.
    pub data_dir: PathBuf,
    /// `STORYTIME_MEDIA_SECRET`: key for signing media links. Unset: a
    /// random key kept in the data directory.
    pub media_secret: Option<Secret>,
    /// `STORYTIME_VOICE`: the default voice when a user has not picked one.
    pub default_voice: Option<String>,
    /// `STORYTIME_EMAIL_TO` (default `storytime-results@localhost`): who the
    /// outbox addresses when a result goes to "the default recipients".
    pub email_to: String,
    /// `STORYTIME_EMAIL_FROM` (default `Storytime <storytime@localhost>`).
    pub email_from: String,
    pub engines: EngineSettings,
    pub limits: Limits,
    pub workers: WorkerSettings,
    /// Which adapter backs each port.
    pub backends: Backends,
    /// Names of the AWS resources the AWS adapters use.
    pub aws: AwsSettings,
}

/// The local engines' programs.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// `STORYTIME_TESSERACT` (default `tesseract`).
    pub tesseract: String,
    /// `STORYTIME_ESPEAK` (default `espeak-ng`).
    pub espeak: String,
    /// `STORYTIME_PIPER`: Piper's program, the `piper` command of the
    /// Python environment it is installed in. Default: `.venv-piper/bin/piper`
    /// (where `scripts/run` installs it) in the working directory or a
    /// folder above the binary, else `piper` on `PATH`.
    pub piper: String,
    /// `STORYTIME_PIPER_MODEL`: the Piper voice model (`.onnx`). Default:
    /// the installed `joe` voice package's.
    pub piper_model: Option<String>,
    /// `STORYTIME_ENGINE_TIMEOUT` (seconds, default 120): longest one call
    /// of `tesseract` or `espeak-ng` may take before it is killed and the
    /// work retried.
    pub timeout: Duration,
}

/// Where `scripts/run` installs Piper, relative to the checkout.
const LOCAL_PIPER: &str = ".venv-piper/bin/piper";

/// Piper's program: `STORYTIME_PIPER`, or the checkout's, or `piper`.
pub(super) fn piper_program(env: &Env) -> String {
    if let Some(program) = env.get("STORYTIME_PIPER") {
        return program;
    }
    let near_binary = std::env::current_exe()
        .ok()
        .into_iter()
        .flat_map(|exe| exe.ancestors().skip(1).map(|dir| dir.join(LOCAL_PIPER)).collect::<Vec<_>>());
    std::env::current_dir()
        .ok()
        .map(|dir| dir.join(LOCAL_PIPER))
        .into_iter()
        .chain(near_binary)
        .find(|p| p.is_file())
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| "piper".into())
}

impl PipelineSettings {
    pub fn from_env(env: &Env) -> Result<Self, SettingsError> {
        Ok(Self {
            data_dir: env.get("STORYTIME_DATA_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".storytime")),
            media_secret: env.get("STORYTIME_MEDIA_SECRET").map(Secret::new),
            default_voice: env.get("STORYTIME_VOICE"),
            email_to: env.get("STORYTIME_EMAIL_TO").unwrap_or_else(|| "storytime-results@localhost".into()),
            email_from: env.get("STORYTIME_EMAIL_FROM").unwrap_or_else(|| "Storytime <storytime@localhost>".into()),
            engines: EngineSettings {
                tesseract: env.get("STORYTIME_TESSERACT").unwrap_or_else(|| "tesseract".into()),
                espeak: env.get("STORYTIME_ESPEAK").unwrap_or_else(|| "espeak-ng".into()),
                piper: piper_program(env),
                piper_model: env.get("STORYTIME_PIPER_MODEL"),
                timeout: env.seconds("STORYTIME_ENGINE_TIMEOUT", 120)?,
            },
            limits: Limits::from_env(env)?,
            workers: WorkerSettings::from_env(env)?,
            backends: Backends::from_env(env)?,
            aws: AwsSettings::from_env(env)?,
        })
    }

    /// Settings from a list of variables (tests).
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Result<Self, SettingsError> {
        Self::from_env(&Env::new(|name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())))
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("storytime.sqlite")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::settings::{BlobsBackend, JobsBackend, NarratorBackend, NotifierBackend, QueueBackend, ReaderBackend};

    fn from(pairs: &[(&str, &str)]) -> Result<PipelineSettings, SettingsError> {
        PipelineSettings::from_pairs(pairs)
    }

    #[test]
    fn defaults_describe_the_embedded_service() {
        let s = from(&[]).unwrap();
        assert_eq!(s.data_dir, PathBuf::from(".storytime"));
        assert_eq!(s.workers.stall_after, Duration::from_secs(60));
        assert_eq!(s.workers.retry_base, Duration::from_millis(2000));
        assert_eq!(s.limits.max_pages, 20);
    }

    #[test]
    fn bad_values_name_their_variable() {
        let e = from(&[("STORYTIME_MAX_ATTEMPTS", "0")]).unwrap_err();
        assert_eq!(e.name, "STORYTIME_MAX_ATTEMPTS");
        let e = from(&[("STORYTIME_RETRY_BASE_MS", "soon")]).unwrap_err();
        assert_eq!(e.name, "STORYTIME_RETRY_BASE_MS");
        let e = from(&[("STORYTIME_CDN_URL", "d111.cloudfront.net")]).unwrap_err();
        assert_eq!(e.name, "STORYTIME_CDN_URL");
        let e = from(&[("STORYTIME_CDN_URL", "https://d111.cloudfront.net")]).unwrap_err();
        assert_eq!(e.name, "STORYTIME_CDN_KEY_ID", "links through a CDN are signed");
        let e =
            from(&[("STORYTIME_CDN_URL", "https://d111.cloudfront.net"), ("STORYTIME_CDN_KEY_ID", "K1")]).unwrap_err();
        assert_eq!(e.name, "STORYTIME_CDN_PRIVATE_KEY");
        let e = from(&[("STORYTIME_MAX_PAGES", "0")]).unwrap_err();
        assert_eq!(e.name, "STORYTIME_MAX_*");
    }

    #[test]
    fn the_local_narrator_is_piper_when_piper_is_installed() {
        let missing = from(&[("STORYTIME_PIPER", "/nonexistent/piper")]).unwrap();
        assert_eq!(missing.backends.narrator, NarratorBackend::Espeak);
        let found = from(&[("STORYTIME_PIPER", "/bin/sh")]).unwrap();
        assert_eq!((found.backends.narrator, found.engines.piper.as_str()), (NarratorBackend::Piper, "/bin/sh"));
        let chosen = from(&[("STORYTIME_PIPER", "/bin/sh"), ("STORYTIME_NARRATOR", "espeak")]).unwrap();
        assert_eq!(chosen.backends.narrator, NarratorBackend::Espeak);
    }

    #[test]
    fn the_backend_picks_a_family_and_each_port_can_differ() {
        let local = from(&[]).unwrap().backends;
        assert_eq!(local.queue, QueueBackend::Sqlite);
        assert!(!local.uses_aws());
        let aws = from(&[("STORYTIME_BACKEND", "aws")]).unwrap();
        let b = aws.backends;
        assert_eq!(
            (b.blobs, b.queue, b.jobs, b.reader, b.narrator, b.notifier),
            (
                BlobsBackend::S3,
                QueueBackend::Sqs,
                JobsBackend::DynamoDb,
                ReaderBackend::Rekognition,
                NarratorBackend::Polly,
                NotifierBackend::Sns
            )
        );
        assert!(!b.uses_data_dir());
        assert_eq!(aws.aws.bucket, "storytime-media");
        assert_eq!(aws.aws.table, "storytime-jobs");
        let mixed =
            from(&[("STORYTIME_BACKEND", "aws"), ("STORYTIME_READER", "Tesseract"), ("STORYTIME_NARRATOR", "espeak")])
                .unwrap()
                .backends;
        assert_eq!(
            (mixed.reader, mixed.narrator, mixed.queue),
            (ReaderBackend::Tesseract, NarratorBackend::Espeak, QueueBackend::Sqs)
        );
        assert_eq!(from(&[("STORYTIME_QUEUE", "kafka")]).unwrap_err().name, "STORYTIME_QUEUE");
        assert_eq!(from(&[("STORYTIME_BACKEND", "gcp")]).unwrap_err().name, "STORYTIME_BACKEND");
    }
}
