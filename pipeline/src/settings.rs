//! Configuration, read once from the environment. This is the only place
//! that reads `STORYTIME_*` variables; everything else receives its part.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::image::ImageLimits;

/// A setting that could not be used, named so the operator can fix it.
#[derive(Debug, thiserror::Error)]
#[error("{name}: {problem}")]
pub struct SettingsError {
    pub name: String,
    pub problem: String,
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// `STORYTIME_DATA_DIR`: where the embedded default keeps everything.
    pub data_dir: PathBuf,
    /// `STORYTIME_LISTEN`: the HTTP address of `storytime serve`.
    pub listen: SocketAddr,
    /// `STORYTIME_PUBLIC_URL`: the base of links Storytime hands out.
    /// Unset: `http://` and the listening address.
    pub public_url: Option<String>,
    /// `STORYTIME_API_KEYS`: bearer tokens the REST API accepts (comma
    /// separated). Empty: the API is open, fine on loopback only.
    pub api_keys: Vec<Secret>,
    /// `STORYTIME_MEDIA_SECRET`: key for signing media links. Unset: a
    /// random key kept in the data directory.
    pub media_secret: Option<Secret>,
    /// The Slack app, when `SLACK_SIGNING_SECRET` and `SLACK_BOT_TOKEN` are set.
    pub slack: Option<SlackSettings>,
    /// `STORYTIME_LINK_TTL`: how long media links stay valid.
    pub link_ttl: Duration,
    pub limits: ImageLimits,
    /// `STORYTIME_MAX_PAGES`: pages per book.
    pub max_pages: usize,
    /// `STORYTIME_MAX_TEXT_CHARS`: text narrated per book; longer text is
    /// cut at a sentence end.
    pub max_text_chars: usize,
    /// `STORYTIME_VOICE`: the default voice when a user has not picked one.
    pub default_voice: Option<String>,
    /// `STORYTIME_EMAIL_TO`: who the outbox addresses when a result goes to
    /// "the default recipients".
    pub email_to: String,
    /// `STORYTIME_EMAIL_FROM`
    pub email_from: String,
    /// `STORYTIME_TESSERACT`, `STORYTIME_ESPEAK`: engine programs.
    pub tesseract: String,
    pub espeak: String,
    pub workers: WorkerSettings,
    /// Which adapter backs each port.
    pub backends: Backends,
    /// Names of the AWS resources the AWS adapters use.
    pub aws: AwsSettings,
}

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
    /// `STORYTIME_NARRATOR=espeak|polly`
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
    Espeak,
    Polly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifierBackend {
    Outbox,
    Sns,
}

impl Backends {
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
}

/// AWS resource names; each defaults to `storytime-…`. Region, credentials
/// and endpoints come from the SDK's standard settings (`AWS_REGION`,
/// `AWS_PROFILE`, `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsSettings {
    /// `STORYTIME_S3_BUCKET` (default `storytime-media`).
    pub bucket: String,
    /// `STORYTIME_SQS_PREFIX` (default `storytime-`): queue `<prefix><stage>`
    /// with its dead-letter queue `<prefix><stage>-dlq`.
    pub queue_prefix: String,
    /// `STORYTIME_DYNAMODB_TABLE` (default `storytime-jobs`).
    pub table: String,
    /// `STORYTIME_SNS_TOPIC` (default `storytime-results`): a topic name,
    /// or a full topic ARN.
    pub topic: String,
    /// `STORYTIME_SNS_SUBSCRIBE`: an address `storytime init` subscribes to
    /// the topic for the default recipients' mail.
    pub subscribe: Option<String>,
    /// `STORYTIME_CDN_URL`: a CloudFront domain in front of the bucket; media
    /// links go through it instead of presigned S3 links.
    pub cdn_url: Option<String>,
    /// `STORYTIME_POLLY_ENGINE` (default `neural`).
    pub polly_engine: String,
    /// `STORYTIME_JOB_TTL_DAYS` (default 30): DynamoDB removes job records
    /// this long after their last update.
    pub record_ttl: Duration,
}

/// A value that must never reach a log: `Debug` shows it redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The Slack app's credentials and endpoints.
#[derive(Debug, Clone)]
pub struct SlackSettings {
    /// `SLACK_SIGNING_SECRET`, and `SLACK_SIGNING_SECRET_PREVIOUS` while a
    /// rotation is under way: requests signed with either are accepted.
    pub signing_secrets: Vec<Secret>,
    /// `SLACK_BOT_TOKEN` (`xoxb-…`).
    pub bot_token: Secret,
    /// `SLACK_APP_TOKEN` (`xapp-…`): when set, Socket Mode is used.
    pub app_token: Option<Secret>,
    /// `SLACK_API_URL`: the Web API base, `https://slack.com/api` unless a
    /// test or proxy points it elsewhere.
    pub api_url: String,
}

impl SlackSettings {
    pub const DEFAULT_API_URL: &'static str = "https://slack.com/api";
}

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// `STORYTIME_READ_WORKERS` (default: one per core), `..._NARRATE_...`,
    /// `..._DELIVER_...`, `..._INBOUND_...`: concurrent handlers per stage.
    pub read: usize,
    pub inbound: usize,
    pub narrate: usize,
    pub deliver: usize,
    /// `STORYTIME_MAX_ATTEMPTS`: receives before a message is dead-lettered.
    pub max_attempts: u32,
    /// `STORYTIME_VISIBILITY_TIMEOUT`: how long a received message stays
    /// hidden; a running handler extends it.
    pub visibility: Duration,
    /// `STORYTIME_RETRY_BASE`: first retry delay; doubles per attempt.
    pub retry_base: Duration,
    /// `STORYTIME_STALL_AFTER`: a job with no progress for this long is
    /// re-queued (the original API's 60 s).
    pub stall_after: Duration,
}

impl Settings {
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
    }

    /// Builds settings from any source of variables (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let listen: SocketAddr = parse(&get, "STORYTIME_LISTEN", "127.0.0.1:8080".parse().expect("valid"))?;
        let public_url = get("STORYTIME_PUBLIC_URL");
        if public_url.as_ref().is_some_and(|u| !(u.starts_with("http://") || u.starts_with("https://"))) {
            return Err(err("STORYTIME_PUBLIC_URL", "must start with http:// or https://"));
        }
        let limits = ImageLimits {
            max_bytes: parse(&get, "STORYTIME_MAX_UPLOAD_BYTES", ImageLimits::default().max_bytes)?,
            max_pixels: parse::<u64>(&get, "STORYTIME_MAX_MEGAPIXELS", 50)? * 1_000_000,
            min_side: ImageLimits::default().min_side,
        };
        Ok(Self {
            data_dir: get("STORYTIME_DATA_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".storytime")),
            listen,
            public_url: public_url.map(|u| u.trim_end_matches('/').to_owned()),
            api_keys: get("STORYTIME_API_KEYS")
                .map(|v| v.split(',').map(str::trim).filter(|k| !k.is_empty()).map(Secret::new).collect())
                .unwrap_or_default(),
            media_secret: get("STORYTIME_MEDIA_SECRET").map(Secret::new),
            slack: slack(&get)?,
            link_ttl: seconds(&get, "STORYTIME_LINK_TTL", 7 * 24 * 3600)?,
            limits,
            max_pages: parse(&get, "STORYTIME_MAX_PAGES", 20)?,
            max_text_chars: parse(&get, "STORYTIME_MAX_TEXT_CHARS", 20_000)?,
            default_voice: get("STORYTIME_VOICE"),
            email_to: get("STORYTIME_EMAIL_TO").unwrap_or_else(|| "storytime-results@localhost".into()),
            email_from: get("STORYTIME_EMAIL_FROM").unwrap_or_else(|| "Storytime <storytime@localhost>".into()),
            tesseract: get("STORYTIME_TESSERACT").unwrap_or_else(|| "tesseract".into()),
            espeak: get("STORYTIME_ESPEAK").unwrap_or_else(|| "espeak-ng".into()),
            workers: WorkerSettings {
                read: parse(&get, "STORYTIME_READ_WORKERS", cores.max(1))?,
                inbound: parse(&get, "STORYTIME_INBOUND_WORKERS", 4)?,
                narrate: parse(&get, "STORYTIME_NARRATE_WORKERS", 1)?,
                deliver: parse(&get, "STORYTIME_DELIVER_WORKERS", 4)?,
                max_attempts: parse(&get, "STORYTIME_MAX_ATTEMPTS", 5)?,
                visibility: seconds(&get, "STORYTIME_VISIBILITY_TIMEOUT", 30)?,
                retry_base: Duration::from_millis(parse(&get, "STORYTIME_RETRY_BASE_MS", 2000)?),
                stall_after: seconds(&get, "STORYTIME_STALL_AFTER", 60)?,
            },
            backends: backends(&get)?,
            aws: AwsSettings {
                bucket: get("STORYTIME_S3_BUCKET").unwrap_or_else(|| "storytime-media".into()),
                queue_prefix: get("STORYTIME_SQS_PREFIX").unwrap_or_else(|| "storytime-".into()),
                table: get("STORYTIME_DYNAMODB_TABLE").unwrap_or_else(|| "storytime-jobs".into()),
                topic: get("STORYTIME_SNS_TOPIC").unwrap_or_else(|| "storytime-results".into()),
                subscribe: get("STORYTIME_SNS_SUBSCRIBE"),
                cdn_url: get("STORYTIME_CDN_URL").map(|u| u.trim_end_matches('/').to_owned()),
                polly_engine: get("STORYTIME_POLLY_ENGINE").unwrap_or_else(|| "neural".into()),
                record_ttl: Duration::from_secs(parse::<u64>(&get, "STORYTIME_JOB_TTL_DAYS", 30)? * 24 * 3600),
            },
        })
        .and_then(Self::validate)
    }

    fn validate(self) -> Result<Self, SettingsError> {
        if self.workers.max_attempts == 0 {
            return Err(err("STORYTIME_MAX_ATTEMPTS", "must be at least 1"));
        }
        if self.workers.visibility < Duration::from_secs(2) {
            return Err(err("STORYTIME_VISIBILITY_TIMEOUT", "must be at least 2 seconds"));
        }
        if self.aws.cdn_url.as_ref().is_some_and(|u| !u.starts_with("https://") && !u.starts_with("http://")) {
            return Err(err("STORYTIME_CDN_URL", "must start with https:// (or http://)"));
        }
        if !["standard", "neural", "long-form", "generative"].contains(&self.aws.polly_engine.as_str()) {
            return Err(err("STORYTIME_POLLY_ENGINE", "must be standard, neural, long-form or generative"));
        }
        if self.max_pages == 0 || self.limits.max_bytes == 0 || self.max_text_chars == 0 {
            return Err(err("STORYTIME_MAX_*", "limits must be above zero"));
        }
        Ok(self)
    }

    /// The base of links: the configured public URL, or this listener.
    pub fn public_url(&self) -> String {
        self.public_url.clone().unwrap_or_else(|| format!("http://{}", self.listen))
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("storytime.sqlite")
    }
}

fn slack(get: &impl Fn(&str) -> Option<String>) -> Result<Option<SlackSettings>, SettingsError> {
    let secret = get("SLACK_SIGNING_SECRET");
    let token = get("SLACK_BOT_TOKEN");
    let (secret, token) = match (secret, token) {
        (None, None) => return Ok(None),
        (Some(s), Some(t)) => (s, t),
        (None, Some(_)) => return Err(err("SLACK_SIGNING_SECRET", "is needed with SLACK_BOT_TOKEN")),
        (Some(_), None) => return Err(err("SLACK_BOT_TOKEN", "is needed with SLACK_SIGNING_SECRET")),
    };
    let api_url = get("SLACK_API_URL").unwrap_or_else(|| SlackSettings::DEFAULT_API_URL.into());
    if !(api_url.starts_with("http://") || api_url.starts_with("https://")) {
        return Err(err("SLACK_API_URL", "must start with http:// or https://"));
    }
    let app_token = get("SLACK_APP_TOKEN");
    if app_token.as_ref().is_some_and(|t| !t.starts_with("xapp-")) {
        return Err(err("SLACK_APP_TOKEN", "must be an app-level token (xapp-…)"));
    }
    let mut signing_secrets = vec![Secret::new(secret.trim())];
    if let Some(previous) = get("SLACK_SIGNING_SECRET_PREVIOUS") {
        signing_secrets.push(Secret::new(previous.trim()));
    }
    Ok(Some(SlackSettings {
        signing_secrets,
        bot_token: Secret::new(token.trim()),
        app_token: app_token.map(|t| Secret::new(t.trim())),
        api_url: api_url.trim_end_matches('/').to_owned(),
    }))
}

fn backends(get: &impl Fn(&str) -> Option<String>) -> Result<Backends, SettingsError> {
    let aws = match get("STORYTIME_BACKEND").as_deref().map(str::trim) {
        None | Some("local") => false,
        Some("aws") => true,
        Some(other) => return Err(err("STORYTIME_BACKEND", format!("`{other}` is not local or aws"))),
    };
    Ok(Backends {
        blobs: choose(get, "STORYTIME_BLOBS", aws, &[("fs", BlobsBackend::Fs), ("s3", BlobsBackend::S3)])?,
        queue: choose(get, "STORYTIME_QUEUE", aws, &[("sqlite", QueueBackend::Sqlite), ("sqs", QueueBackend::Sqs)])?,
        jobs: choose(
            get,
            "STORYTIME_JOBS",
            aws,
            &[("sqlite", JobsBackend::Sqlite), ("dynamodb", JobsBackend::DynamoDb)],
        )?,
        reader: choose(
            get,
            "STORYTIME_READER",
            aws,
            &[
                ("tesseract", ReaderBackend::Tesseract),
                ("rekognition", ReaderBackend::Rekognition),
                ("textract", ReaderBackend::Textract),
            ],
        )?,
        narrator: choose(
            get,
            "STORYTIME_NARRATOR",
            aws,
            &[("espeak", NarratorBackend::Espeak), ("polly", NarratorBackend::Polly)],
        )?,
        notifier: choose(
            get,
            "STORYTIME_NOTIFIER",
            aws,
            &[("outbox", NotifierBackend::Outbox), ("sns", NotifierBackend::Sns)],
        )?,
    })
}

/// One port's adapter: its variable when set, else the family's choice —
/// the first option for `local`, the second for `aws`.
fn choose<T: Copy>(
    get: &impl Fn(&str) -> Option<String>,
    name: &str,
    aws: bool,
    options: &[(&str, T)],
) -> Result<T, SettingsError> {
    match get(name) {
        None => Ok(options[usize::from(aws)].1),
        Some(v) => {
            let v = v.trim().to_ascii_lowercase();
            options.iter().find(|(n, _)| *n == v).map(|(_, t)| *t).ok_or_else(|| {
                let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
                err(name, format!("`{v}` is not one of {}", names.join(", ")))
            })
        }
    }
}

fn err(name: &str, problem: impl Into<String>) -> SettingsError {
    SettingsError { name: name.to_owned(), problem: problem.into() }
}

fn parse<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: T,
) -> Result<T, SettingsError>
where
    T::Err: std::fmt::Display,
{
    match get(name) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|e| err(name, format!("`{v}` is not valid ({e})"))),
    }
}

fn seconds(get: &impl Fn(&str) -> Option<String>, name: &str, default: u64) -> Result<Duration, SettingsError> {
    parse(get, name, default).map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_describe_the_embedded_service_on_loopback() {
        let s = from(&[]).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.public_url(), "http://127.0.0.1:8080");
        assert_eq!(s.data_dir, PathBuf::from(".storytime"));
        assert!(s.api_keys.is_empty());
        assert_eq!(s.workers.stall_after, Duration::from_secs(60));
    }

    #[test]
    fn bad_values_name_their_variable() {
        let e = from(&[("STORYTIME_LISTEN", "nowhere")]).unwrap_err();
        assert_eq!(e.name, "STORYTIME_LISTEN");
        let e = from(&[("STORYTIME_MAX_ATTEMPTS", "0")]).unwrap_err();
        assert_eq!(e.name, "STORYTIME_MAX_ATTEMPTS");
        let e = from(&[("STORYTIME_PUBLIC_URL", "ftp://x")]).unwrap_err();
        assert_eq!(e.name, "STORYTIME_PUBLIC_URL");
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

    #[test]
    fn api_keys_are_split_and_trimmed() {
        let s = from(&[("STORYTIME_API_KEYS", " a , b,,")]).unwrap();
        assert_eq!(s.api_keys, [Secret::new("a"), Secret::new("b")]);
        assert_eq!(format!("{:?}", s.api_keys), "[[redacted], [redacted]]");
    }

    #[test]
    fn slack_needs_both_secret_and_token_and_hides_them() {
        assert!(from(&[]).unwrap().slack.is_none());
        assert_eq!(from(&[("SLACK_BOT_TOKEN", "xoxb-1")]).unwrap_err().name, "SLACK_SIGNING_SECRET");
        let s = from(&[
            ("SLACK_BOT_TOKEN", "xoxb-1"),
            ("SLACK_SIGNING_SECRET", "new"),
            ("SLACK_SIGNING_SECRET_PREVIOUS", "old"),
            ("SLACK_API_URL", "http://127.0.0.1:9/api/"),
        ])
        .unwrap();
        let slack = s.slack.as_ref().unwrap();
        assert_eq!(slack.signing_secrets.len(), 2);
        assert_eq!(slack.api_url, "http://127.0.0.1:9/api");
        assert!(!format!("{s:?}").contains("xoxb-1"));
        assert_eq!(
            from(&[("SLACK_BOT_TOKEN", "x"), ("SLACK_SIGNING_SECRET", "y"), ("SLACK_APP_TOKEN", "xoxb")])
                .unwrap_err()
                .name,
            "SLACK_APP_TOKEN"
        );
    }
}
