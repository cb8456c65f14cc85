//! The composition root: settings in, everything a process runs out. The
//! only place that decides which adapter backs which port, builds the Slack
//! front end, the pipeline and the HTTP state, and the only place outside
//! tests that constructs adapters.
//!
//! The order matters: the Slack client exists before the pipeline (it is
//! the pipeline's messenger), and the Slack app after it (it submits jobs
//! to the pipeline); the workers get both through [`Handlers`].

use std::sync::Arc;

use anyhow::{Context, bail};
use storytime_pipeline::adapters::local::{
    Database, EspeakNarrator, FsBlobStore, LocalStorage, OutboxNotifier, PiperNarrator, PiperSetup, SqliteJobStore,
    SqlitePreferences, SqliteQueue, TesseractReader, media_key,
};
use storytime_pipeline::links::MediaLinks;
use storytime_pipeline::ports::{
    BlobStore, InboundHandler, JobStore, Messenger, Narrator, Notifier, Preferences, Queue, TextReader,
};
use storytime_pipeline::runtime::Handlers;
use storytime_pipeline::settings::{
    BlobsBackend, JobsBackend, NarratorBackend, NotifierBackend, PipelineSettings, QueueBackend, ReaderBackend,
};
use storytime_pipeline::setup::Setup;
use storytime_pipeline::stages::{PipelineConfig, Ports};
use storytime_pipeline::{Pipeline, Stage};

use self::aws::Aws;
use crate::health::{EngineHealth, StorageReadings, WorkerHealth};
use crate::secrets::Credentials;
use crate::settings::Settings;
use crate::slack::{Sealer, SlackApi, SlackApp, SlackCheck, SlackHosts, SlackMessenger, Workspaces};
use crate::state::AppState;

/// What a process runs, which decides what it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// `storytime serve`: the HTTP front end and every stage's workers.
    Serve,
    /// `storytime worker`: these stages' workers only.
    Workers(Vec<Stage>),
    /// `storytime lambda api`: the HTTP front end only.
    Api,
    /// `storytime lambda <stage>` and `sweep`: one stage (or none).
    Function(Option<Stage>),
}

impl Role {
    /// The stages whose workers run in this process.
    fn stages(&self) -> Vec<Stage> {
        match self {
            Self::Serve => Stage::ALL.to_vec(),
            Self::Workers(stages) => stages.clone(),
            Self::Api => Vec::new(),
            Self::Function(stage) => stage.iter().copied().collect(),
        }
    }
}

/// A process's parts, built from the settings.
pub struct App {
    pub settings: Settings,
    pub pipeline: Arc<Pipeline>,
    /// The Slack app, when configured.
    pub slack: Option<Arc<SlackApp>>,
    /// What the workers run.
    pub handlers: Arc<Handlers>,
    /// Signs links to blobs this process serves at `/media/...`.
    media_links: Option<MediaLinks>,
    engines: Arc<EngineHealth>,
    workers: Option<Arc<WorkerHealth>>,
    /// Checks bearer JWTs on the REST API, when an issuer is configured.
    jwt: Option<Arc<crate::jwt::JwtVerifier>>,
    /// The API keys and Slack signing secrets, read again when rotated.
    credentials: Arc<Credentials>,
    /// The one host name an open API answers to besides IP addresses and
    /// `localhost`, or `None` for any (see [`AppState::public_host`]).
    public_host: Option<Arc<str>>,
    /// The largest request body that reaches this process, when something
    /// in front of it sets one (see [`AppState::request_limit`]).
    request_limit: Option<usize>,
}

/// Behind API Gateway a request reaches Lambda as JSON of at most 6 MB
/// with its body in base64: about 4.4 MB of body, less its headers.
const API_GATEWAY_BODY_BYTES: usize = 4 * 1024 * 1024;

impl App {
    /// Builds everything `role` needs; AWS settings come from the SDK's
    /// standard chain when a port runs on AWS.
    pub async fn build(settings: Settings, role: &Role) -> anyhow::Result<Self> {
        let aws = Aws::load(&settings.pipeline).await;
        Self::assemble(settings, role, aws).await
    }

    /// [`App::build`] with the AWS SDK's settings given (tests point them
    /// at moto).
    #[cfg(feature = "aws")]
    pub async fn build_with_aws(settings: Settings, role: &Role, sdk: aws_config::SdkConfig) -> anyhow::Result<Self> {
        Self::assemble(settings, role, Aws::with(sdk)).await
    }

    async fn assemble(settings: Settings, role: &Role, aws: Aws) -> anyhow::Result<Self> {
        require_slack_where_needed(&settings, role)?;
        let adapters = Adapters::open(&settings, &aws).await?;
        let credentials = Arc::new(Credentials::new(&settings));
        let workspaces = match &settings.slack {
            Some(slack) => Some(Arc::new(workspaces(&settings, slack, credentials.clone(), adapters.prefs.clone())?)),
            None => None,
        };
        let voices = adapters.engines.narrator.voices();
        let messenger = workspaces.clone().map(|w| Arc::new(SlackMessenger::new(w, voices)) as Arc<dyn Messenger>);
        let pipeline = Arc::new(Pipeline::new(adapters.ports(messenger), config(&settings.pipeline)));
        let slack = match (&settings.slack, workspaces) {
            (Some(slack), Some(workspaces)) => {
                let mode = if slack.app_token.is_some() { "Socket Mode" } else { "HTTP (/slack/events)" };
                let installs = if slack.oauth.is_some() { "any workspace (OAuth)" } else { "one workspace" };
                tracing::info!(api = %slack.api_url, mode, installs, "Slack app enabled");
                Some(SlackApp::new(slack, credentials.clone(), workspaces, pipeline.clone()))
            }
            _ => None,
        };
        let inbound = slack.clone().map(|app| app as Arc<dyn InboundHandler>);
        let handlers = Arc::new(Handlers::new(pipeline.clone(), inbound));
        let w = &settings.pipeline.workers;
        let stages: Vec<Stage> = role
            .stages()
            .into_iter()
            .filter(|s| match s {
                Stage::Inbound => w.inbound,
                Stage::Read => w.read,
                Stage::Narrate => w.narrate,
                Stage::Deliver => w.deliver,
            } > 0)
            .collect();
        // A Lambda function runs no pollers: its stage is run per batch.
        let workers = matches!(role, Role::Serve | Role::Workers(_))
            .then(|| Arc::new(WorkerHealth { handlers: handlers.clone(), stages }));
        let engines = Arc::new(EngineHealth::new(adapters.engines.setup.clone()));
        let jwt = settings.http.jwt.clone().map(|j| Arc::new(crate::jwt::JwtVerifier::new(j)));
        let media_links = adapters.media_links;
        // Behind API Gateway a request reaches the function only through the
        // API's own host names (its execute-api name or a custom domain),
        // so no rebinding name can: the open API's host check has nothing
        // to guard there, unless STORYTIME_PUBLIC_URL names the host.
        let public_host = match (&settings.http.public_url, role) {
            (None, Role::Api) => None,
            _ => Some(crate::routes::host_of(&settings.http.public_url()).into()),
        };
        let request_limit = matches!(role, Role::Api).then_some(API_GATEWAY_BODY_BYTES);
        Ok(Self {
            settings,
            pipeline,
            slack,
            handlers,
            media_links,
            engines,
            workers,
            jwt,
            credentials,
            public_host,
            request_limit,
        })
    }

    /// What every HTTP handler can reach.
    pub fn http_state(&self) -> AppState {
        AppState {
            pipeline: self.pipeline.clone(),
            blobs: self.pipeline.blobs.clone(),
            media_links: self.media_links.clone().map(Arc::new),
            public_host: self.public_host.clone(),
            request_limit: self.request_limit,
            credentials: self.credentials.clone(),
            jwt: self.jwt.clone(),
            slack: self.slack.clone(),
            metrics: crate::telemetry::installed_prometheus(),
            metrics_token: self.settings.telemetry.metrics_token.clone().map(Arc::new),
            engines: Some(self.engines.clone()),
            workers: self.workers.clone(),
            storage: Arc::new(StorageReadings::new(self.settings.http.health_cache)),
        }
    }

    /// The whole HTTP surface.
    pub fn router(&self) -> axum::Router {
        crate::routes::router(self.http_state())
    }
}

/// The reader and narrator alone, for `storytime narrate`.
pub async fn engines(settings: &PipelineSettings) -> anyhow::Result<(Arc<dyn TextReader>, Arc<dyn Narrator>)> {
    let aws = Aws::load(settings).await;
    let engines = Engines::new(settings, &aws)?;
    Ok((engines.reader, engines.narrator))
}

/// Every adapter the settings choose, for `storytime init` (which asks
/// each to create what it needs) and `storytime doctor` (which asks each
/// whether it can work here). When the storage cannot be opened, doctor
/// still learns about the engines: the error comes as a finding.
pub async fn setup(settings: &Settings) -> (Vec<Arc<dyn Setup>>, Option<anyhow::Error>) {
    let aws = Aws::load(&settings.pipeline).await;
    let mut items: Vec<Arc<dyn Setup>> = aws.setup().into_iter().collect();
    let failure = match Adapters::open(settings, &aws).await {
        Ok(adapters) => {
            items.extend(adapters.setup);
            // After the bucket and the queues it connects.
            items.extend(aws.upload_notifications(&settings.pipeline));
            None
        }
        Err(e) => {
            if let Ok(engines) = Engines::new(&settings.pipeline, &aws) {
                items.extend(engines.setup);
            }
            Some(e)
        }
    };
    if let Some(slack) = &settings.slack
        && let Ok(api) = slack_api(slack)
    {
        let api = slack.bot_token.as_ref().map(|t| api.with_token(t));
        items.push(Arc::new(SlackCheck::new(slack, api, &settings.http.public_url())));
    }
    (items, failure)
}

/// A process whose workers deliver to Slack threads, or handle Slack's
/// requests, cannot do so without the Slack settings; rather than send
/// everything by email without a word, it refuses to start. `serve` is
/// exempt: its own front end makes the chat jobs, and without Slack it
/// makes none.
fn require_slack_where_needed(settings: &Settings, role: &Role) -> anyhow::Result<()> {
    if settings.slack.is_some() || settings.slack_off || *role == Role::Serve {
        return Ok(());
    }
    let needs: Vec<&str> =
        role.stages().into_iter().filter(|s| matches!(s, Stage::Inbound | Stage::Deliver)).map(|s| s.name()).collect();
    if needs.is_empty() {
        return Ok(());
    }
    bail!(
        "the {} stage posts to Slack, but Slack is not configured here: set SLACK_SIGNING_SECRET and \
         SLACK_BOT_TOKEN as for the front end, or set STORYTIME_SLACK=off if this deployment has no Slack app \
         (results meant for a Slack thread then go by email)",
        needs.join(" and ")
    )
}

fn slack_api(slack: &crate::settings::SlackSettings) -> anyhow::Result<SlackApi> {
    SlackApi::new(&slack.api_url, SlackHosts::new(&slack.api_url))
        .context("cannot set up the HTTPS client for Slack (are the CA certificates installed?)")
}

/// Each workspace's token: `SLACK_BOT_TOKEN` (from `credentials`, which
/// read it again when it is rotated), and with OAuth the
/// installations kept (sealed) in the job store. Their key comes from the
/// media key (the data directory's, or `STORYTIME_MEDIA_SECRET`).
fn workspaces(
    settings: &Settings,
    slack: &crate::settings::SlackSettings,
    credentials: Arc<Credentials>,
    store: Arc<dyn Preferences>,
) -> anyhow::Result<Workspaces> {
    let p = &settings.pipeline;
    let sealer = match &slack.oauth {
        None => None,
        Some(_) if p.backends.uses_data_dir() => {
            let key = media_key(&p.data_dir, p.media_secret.as_ref()).context("cannot read the media key")?;
            Some(Sealer::new(&key))
        }
        Some(_) => match &p.media_secret {
            Some(secret) if secret.expose().len() >= 32 => Some(Sealer::new(secret.expose().as_bytes())),
            _ => bail!(
                "SLACK_CLIENT_ID keeps each workspace's token sealed with the media key; without a data directory \
                 set STORYTIME_MEDIA_SECRET (at least 32 characters)"
            ),
        },
    };
    let api = slack_api(slack)?;
    let oauth = slack.oauth.as_ref().map(|o| {
        let scopes = crate::slack::manifest::scopes_for(slack.trigger);
        crate::slack::OAuthClient::new(
            &o.client_id,
            &o.client_secret,
            &slack.api_url,
            &settings.http.public_url(),
            &scopes,
        )
    });
    Ok(Workspaces::new(api, credentials, store, sealer, oauth))
}

fn config(settings: &PipelineSettings) -> PipelineConfig {
    PipelineConfig {
        limits: settings.limits,
        stall_after: settings.workers.stall_after,
        default_voice: settings.default_voice.clone(),
    }
}

/// The storage, queue, job store and notifier adapters, opened.
struct Adapters {
    blobs: Arc<dyn BlobStore>,
    queue: Arc<dyn Queue>,
    jobs: Arc<dyn JobStore>,
    prefs: Arc<dyn Preferences>,
    notifier: Arc<dyn Notifier>,
    engines: Engines,
    media_links: Option<MediaLinks>,
    setup: Vec<Arc<dyn Setup>>,
}

impl Adapters {
    /// Opens what the configured backends need. The local parts (data
    /// directory, database) are created when missing; AWS resources must
    /// exist already (`storytime init` creates them).
    async fn open(settings: &Settings, aws: &Aws) -> anyhow::Result<Self> {
        let p = &settings.pipeline;
        let b = p.backends;
        let mut setup: Vec<Arc<dyn Setup>> = Vec::new();
        if b.uses_data_dir() {
            let storage = LocalStorage::new(p);
            storage.create().context("cannot create the data directory (STORYTIME_DATA_DIR)")?;
            setup.push(Arc::new(storage));
        }
        let database = match b.uses_sqlite() {
            true => Some(Database::open(&p.database_path()).context("cannot open the database")?),
            false => None,
        };
        let database = || database.clone().expect("opened when a port uses SQLite");

        let mut media_links = None;
        let blobs: Arc<dyn BlobStore> = match b.blobs {
            BlobsBackend::Fs => {
                let key = media_key(&p.data_dir, p.media_secret.as_ref()).context("cannot read the media key")?;
                let links = MediaLinks::new(key, &settings.http.public_url());
                media_links = Some(links.clone());
                Arc::new(FsBlobStore::new(p.data_dir.join("blobs"), links))
            }
            BlobsBackend::S3 => aws.blob_store(p, &mut setup)?,
        };
        let queue: Arc<dyn Queue> = match b.queue {
            QueueBackend::Sqlite => Arc::new(SqliteQueue::new(database())),
            QueueBackend::Sqs => aws.queue(p, &mut setup)?,
        };
        let (jobs, prefs): (Arc<dyn JobStore>, Arc<dyn Preferences>) = match b.jobs {
            JobsBackend::Sqlite => {
                (Arc::new(SqliteJobStore::new(database())), Arc::new(SqlitePreferences::new(database())))
            }
            JobsBackend::DynamoDb => aws.job_store(p, &mut setup)?,
        };
        let notifier: Arc<dyn Notifier> = match b.notifier {
            NotifierBackend::Outbox => {
                Arc::new(OutboxNotifier::new(p.data_dir.join("outbox"), p.email_from.clone(), p.email_to.clone()))
            }
            NotifierBackend::Sns => aws.notifier(p, &mut setup)?,
        };
        let engines = Engines::new(p, aws)?;
        setup.extend(engines.setup.iter().cloned());
        Ok(Self { blobs, queue, jobs, prefs, notifier, engines, media_links, setup })
    }

    fn ports(&self, messenger: Option<Arc<dyn Messenger>>) -> Ports {
        Ports {
            blobs: self.blobs.clone(),
            queue: self.queue.clone(),
            jobs: self.jobs.clone(),
            prefs: self.prefs.clone(),
            reader: self.engines.reader.clone(),
            narrator: self.engines.narrator.clone(),
            notifier: self.notifier.clone(),
            messenger,
        }
    }
}

/// The text reader and the narrator. The AWS readers keep Tesseract for
/// Korean pages and for telling how a page lies.
struct Engines {
    reader: Arc<dyn TextReader>,
    narrator: Arc<dyn Narrator>,
    setup: Vec<Arc<dyn Setup>>,
}

impl Engines {
    fn new(settings: &PipelineSettings, aws: &Aws) -> anyhow::Result<Self> {
        let tesseract =
            Arc::new(TesseractReader::new(&settings.engines.tesseract).with_timeout(settings.engines.timeout));
        let mut setup: Vec<Arc<dyn Setup>> = vec![tesseract.clone()];
        let reader: Arc<dyn TextReader> = match settings.backends.reader {
            ReaderBackend::Tesseract => tesseract,
            cloud => aws.reader(cloud, tesseract, &mut setup)?,
        };
        let narrator: Arc<dyn Narrator> = match settings.backends.narrator {
            NarratorBackend::Espeak => {
                let espeak =
                    Arc::new(EspeakNarrator::new(&settings.engines.espeak).with_timeout(settings.engines.timeout));
                setup.push(espeak.clone());
                espeak
            }
            NarratorBackend::Piper => {
                let espeak =
                    Arc::new(EspeakNarrator::new(&settings.engines.espeak).with_timeout(settings.engines.timeout));
                let piper = Arc::new(PiperNarrator::new(
                    PiperSetup {
                        program: settings.engines.piper.clone(),
                        model: settings.engines.piper_model.clone(),
                        processes: settings.workers.narrate,
                    },
                    espeak.clone(),
                ));
                setup.push(piper.clone());
                setup.push(espeak);
                piper
            }
            NarratorBackend::Polly => aws.narrator(settings, &mut setup)?,
        };
        Ok(Self { reader, narrator, setup })
    }
}

#[cfg(feature = "aws")]
mod aws {
    //! The AWS adapters, built from the SDK's settings.

    use std::sync::Arc;

    use anyhow::Context;
    use storytime_pipeline::adapters::aws::{
        CdnSigner, DynamoJobStore, PollyNarrator, RekognitionReader, S3BlobStore, SnsNotifier, SqsQueue,
        TextractReader, UploadNotifications, sdk_config,
    };
    use storytime_pipeline::ports::{BlobStore, JobStore, Narrator, Notifier, Preferences, Queue, TextReader};
    use storytime_pipeline::settings::{BlobsBackend, QueueBackend};
    use storytime_pipeline::settings::{PipelineSettings, ReaderBackend};
    use storytime_pipeline::setup::{Finding, Setup};

    /// The SDK's settings, loaded when a port runs on AWS.
    pub(super) struct Aws(Option<aws_config::SdkConfig>);

    type SetupList = Vec<Arc<dyn Setup>>;

    impl Aws {
        pub(super) async fn load(settings: &PipelineSettings) -> Self {
            Self(if settings.backends.uses_aws() { Some(sdk_config().await) } else { None })
        }

        pub(super) fn with(sdk: aws_config::SdkConfig) -> Self {
            Self(Some(sdk))
        }

        fn sdk(&self) -> anyhow::Result<&aws_config::SdkConfig> {
            self.0.as_ref().context("a port runs on AWS but no AWS settings were loaded")
        }

        /// The region check, when AWS is in use.
        pub(super) fn setup(&self) -> Option<Arc<dyn Setup>> {
            let sdk = self.0.as_ref()?;
            let endpoint = sdk.endpoint_url().map(|e| format!(" at {e}")).unwrap_or_default();
            Some(Arc::new(Region(sdk.region().map(|r| format!("region {r}{endpoint}")))))
        }

        /// For `init` and `doctor`: with photos in S3 and queues on SQS, the
        /// bucket's notifications of photos uploaded straight to it
        /// (`POST /uploads`).
        pub(super) fn upload_notifications(&self, p: &PipelineSettings) -> Option<Arc<dyn Setup>> {
            let sdk = self.0.as_ref()?;
            let aws_both = p.backends.blobs == BlobsBackend::S3 && p.backends.queue == QueueBackend::Sqs;
            let queue = SqsQueue::new(sdk, &p.aws.queue_prefix);
            aws_both.then(|| Arc::new(UploadNotifications::new(sdk, &p.aws.bucket, &queue)) as Arc<dyn Setup>)
        }

        pub(super) fn blob_store(
            &self,
            p: &PipelineSettings,
            setup: &mut SetupList,
        ) -> anyhow::Result<Arc<dyn BlobStore>> {
            let cdn = match (&p.aws.cdn_url, &p.aws.cdn_key_id, &p.aws.cdn_private_key) {
                (Some(url), Some(id), Some(key)) => Some(
                    CdnSigner::new(url, id, key.expose())
                        .map_err(anyhow::Error::msg)
                        .context("STORYTIME_CDN_PRIVATE_KEY")?,
                ),
                _ => None,
            };
            let s3 = Arc::new(S3BlobStore::new(self.sdk()?, &p.aws.bucket, cdn));
            setup.push(s3.clone());
            Ok(s3)
        }

        pub(super) fn queue(&self, p: &PipelineSettings, setup: &mut SetupList) -> anyhow::Result<Arc<dyn Queue>> {
            // One receive more than the workers' attempts: a message whose
            // handler never settles it still reaches the dead-letter queue,
            // and one that fails normally is dead-lettered by the worker
            // with its reason.
            let w = &p.workers;
            let sqs = SqsQueue::new(self.sdk()?, &p.aws.queue_prefix).with_redrive(w.max_attempts + 1, w.visibility);
            let sqs = Arc::new(sqs);
            setup.push(sqs.clone());
            Ok(sqs)
        }

        pub(super) fn job_store(
            &self,
            p: &PipelineSettings,
            setup: &mut SetupList,
        ) -> anyhow::Result<(Arc<dyn JobStore>, Arc<dyn Preferences>)> {
            let table = Arc::new(DynamoJobStore::new(self.sdk()?, &p.aws.table, p.aws.record_ttl));
            setup.push(table.clone());
            Ok((table.clone(), table))
        }

        pub(super) fn notifier(
            &self,
            p: &PipelineSettings,
            setup: &mut SetupList,
        ) -> anyhow::Result<Arc<dyn Notifier>> {
            let sns = Arc::new(SnsNotifier::new(self.sdk()?, &p.aws.topic).subscribing(p.aws.subscribe.clone()));
            setup.push(sns.clone());
            Ok(sns)
        }

        pub(super) fn narrator(
            &self,
            p: &PipelineSettings,
            setup: &mut SetupList,
        ) -> anyhow::Result<Arc<dyn Narrator>> {
            let polly = Arc::new(PollyNarrator::new(self.sdk()?, &p.aws.polly_engine));
            setup.push(polly.clone());
            Ok(polly)
        }

        pub(super) fn reader(
            &self,
            which: ReaderBackend,
            local: Arc<dyn TextReader>,
            setup: &mut SetupList,
        ) -> anyhow::Result<Arc<dyn TextReader>> {
            let sdk = self.sdk()?;
            Ok(match which {
                ReaderBackend::Textract => {
                    let reader = Arc::new(TextractReader::new(sdk, local));
                    setup.push(reader.clone());
                    reader
                }
                _ => {
                    let reader = Arc::new(RekognitionReader::new(sdk, local));
                    setup.push(reader.clone());
                    reader
                }
            })
        }
    }

    /// The AWS region in use, or its absence.
    struct Region(Option<String>);

    #[async_trait::async_trait]
    impl Setup for Region {
        async fn check(&self) -> Vec<Finding> {
            vec![match &self.0 {
                Some(region) => Finding::ok("aws", region.clone()),
                None => Finding::missing("aws", "no region configured", "set AWS_REGION (e.g. us-east-1)"),
            }]
        }
    }
}

#[cfg(not(feature = "aws"))]
mod aws {
    //! A build without the AWS adapters refuses AWS backends at start.

    use std::sync::Arc;

    use anyhow::bail;
    use storytime_pipeline::ports::{BlobStore, JobStore, Narrator, Notifier, Preferences, Queue, TextReader};
    use storytime_pipeline::settings::{PipelineSettings, ReaderBackend};
    use storytime_pipeline::setup::Setup;

    pub(super) struct Aws;

    type SetupList = Vec<Arc<dyn Setup>>;

    const NO_AWS: &str = "this storytime was built without AWS support (the `aws` feature): \
        build it with default features, or choose local backends";

    impl Aws {
        pub(super) async fn load(_: &PipelineSettings) -> Self {
            Self
        }

        pub(super) fn setup(&self) -> Option<Arc<dyn Setup>> {
            None
        }

        pub(super) fn upload_notifications(&self, _: &PipelineSettings) -> Option<Arc<dyn Setup>> {
            None
        }

        pub(super) fn blob_store(&self, _: &PipelineSettings, _: &mut SetupList) -> anyhow::Result<Arc<dyn BlobStore>> {
            bail!(NO_AWS)
        }

        pub(super) fn queue(&self, _: &PipelineSettings, _: &mut SetupList) -> anyhow::Result<Arc<dyn Queue>> {
            bail!(NO_AWS)
        }

        pub(super) fn job_store(
            &self,
            _: &PipelineSettings,
            _: &mut SetupList,
        ) -> anyhow::Result<(Arc<dyn JobStore>, Arc<dyn Preferences>)> {
            bail!(NO_AWS)
        }

        pub(super) fn notifier(&self, _: &PipelineSettings, _: &mut SetupList) -> anyhow::Result<Arc<dyn Notifier>> {
            bail!(NO_AWS)
        }

        pub(super) fn narrator(&self, _: &PipelineSettings, _: &mut SetupList) -> anyhow::Result<Arc<dyn Narrator>> {
            bail!(NO_AWS)
        }

        pub(super) fn reader(
            &self,
            _: ReaderBackend,
            _: Arc<dyn TextReader>,
            _: &mut SetupList,
        ) -> anyhow::Result<Arc<dyn TextReader>> {
            bail!(NO_AWS)
        }
    }
}
