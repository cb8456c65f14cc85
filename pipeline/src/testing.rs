//! A whole pipeline on the in-memory adapters, for fast tests of the
//! stages, the runtime's policy and the front ends in one process, and a
//! driver that handles every message until nothing is left to do.
//!
//! Built with the `test-support` feature.

use std::sync::Arc;
use std::time::Duration;

use crate::adapters::memory::{
    InMemoryBlobStore, InMemoryJobStore, InMemoryMessenger, InMemoryNotifier, InMemoryQueue, StandInNarrator,
    StandInReader,
};
use crate::domain::Stage;
use crate::ports::{BlobStore, InboundHandler, Queue};
use crate::runtime::{Handlers, Outcome, handle};
use crate::settings::{PipelineSettings, WorkerSettings};
use crate::stages::{Pipeline, PipelineConfig, Ports};

/// The pipeline and a handle on each of its stand-ins.
pub struct TestPipeline {
    pub pipeline: Arc<Pipeline>,
    pub handlers: Arc<Handlers>,
    pub workers: WorkerSettings,
    pub queue: Arc<InMemoryQueue>,
    pub jobs: Arc<InMemoryJobStore>,
    pub reader: Arc<StandInReader>,
    pub narrator: Arc<StandInNarrator>,
    pub notifier: Arc<InMemoryNotifier>,
    pub messenger: Arc<InMemoryMessenger>,
}

/// How to build a [`TestPipeline`].
pub struct Options {
    /// Settings as `STORYTIME_*` variables, on top of the defaults.
    pub settings: Vec<(&'static str, String)>,
    /// The blob store: in memory unless a test needs real files (links).
    pub blobs: Option<Arc<dyn BlobStore>>,
    /// Whether a chat messenger is configured.
    pub chat: bool,
    /// The front end's handler of inbound requests, if any.
    pub inbound: Option<Arc<dyn InboundHandler>>,
}

impl Default for Options {
    fn default() -> Self {
        Self { settings: Vec::new(), blobs: None, chat: true, inbound: None }
    }
}

impl TestPipeline {
    pub fn new() -> Self {
        Self::with(Options::default())
    }

    pub fn with(options: Options) -> Self {
        let pairs: Vec<(&str, &str)> = options.settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let settings = PipelineSettings::from_pairs(&pairs).expect("test settings are valid");
        let queue = Arc::new(InMemoryQueue::new());
        let jobs = Arc::new(InMemoryJobStore::new());
        let reader = Arc::new(StandInReader::new());
        let narrator = Arc::new(StandInNarrator::new());
        let notifier = Arc::new(InMemoryNotifier::new());
        let messenger = Arc::new(InMemoryMessenger::new());
        let ports = Ports {
            blobs: options.blobs.unwrap_or_else(|| Arc::new(InMemoryBlobStore::new())),
            queue: queue.clone(),
            jobs: jobs.clone(),
            prefs: jobs.clone(),
            reader: reader.clone(),
            narrator: narrator.clone(),
            notifier: notifier.clone(),
            messenger: options.chat.then(|| messenger.clone() as _),
        };
        let config = PipelineConfig {
            limits: settings.limits,
            stall_after: settings.workers.stall_after,
            default_voice: settings.default_voice.clone(),
        };
        let pipeline = Arc::new(Pipeline::new(ports, config));
        let handlers = Arc::new(Handlers::new(pipeline.clone(), options.inbound));
        Self { pipeline, handlers, workers: settings.workers, queue, jobs, reader, narrator, notifier, messenger }
    }

    /// Handles every message, as the workers would, until no stage has one
    /// waiting or in flight. Messages put back for a retry are handled when
    /// their delay is over: run the test with paused time
    /// (`#[tokio::test(start_paused = true)]`) and the delays pass at once.
    pub async fn drive_until_idle(&self) {
        loop {
            let mut handled = false;
            for stage in Stage::ALL {
                let batch = self.queue.receive(stage, 10, Duration::ZERO, self.workers.visibility).await.unwrap();
                for received in batch {
                    handled = true;
                    match handle(&self.handlers, &self.workers, &received).await {
                        Outcome::Done => self.queue.ack(&received).await.unwrap(),
                        Outcome::Retry(delay) => self.queue.set_visibility(&received, delay).await.unwrap(),
                        Outcome::Settled => {}
                    }
                }
            }
            if handled {
                continue;
            }
            match self.queue.next_visible() {
                Some(at) => tokio::time::sleep_until(at).await,
                None => return,
            }
        }
    }

    /// Sends a message straight to its stage's queue.
    pub async fn send(&self, message: &crate::domain::StageMessage) {
        self.queue.send(message, Duration::ZERO).await.unwrap();
    }
}

impl Default for TestPipeline {
    fn default() -> Self {
        Self::new()
    }
}
