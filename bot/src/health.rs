//! What `/healthz` reports beside the storage: the engines (checked at
//! most once a minute, since a check starts the programs or calls AWS),
//! and the workers this process should be running.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use storytime_pipeline::Stage;
use storytime_pipeline::runtime::Handlers;
use storytime_pipeline::setup::{Finding, Setup, Verdict};

/// How long an engine check's answer is reused.
const ENGINE_CHECK_TTL: Duration = Duration::from_secs(60);

/// The engines' checks, with the last answer kept for a while.
pub struct EngineHealth {
    checks: Vec<Arc<dyn Setup>>,
    last: Mutex<Option<(Instant, Vec<Finding>)>>,
}

impl EngineHealth {
    pub fn new(checks: Vec<Arc<dyn Setup>>) -> Self {
        Self { checks, last: Mutex::new(None) }
    }

    /// Each engine's name and whether it works.
    pub async fn status(&self) -> Vec<(String, bool)> {
        let cached = self
            .last
            .lock()
            .expect("health lock")
            .as_ref()
            .and_then(|(at, findings)| (at.elapsed() < ENGINE_CHECK_TTL).then(|| findings.clone()));
        let findings = match cached {
            Some(findings) => findings,
            None => {
                let mut findings = Vec::new();
                for check in &self.checks {
                    findings.extend(check.check().await);
                }
                *self.last.lock().expect("health lock") = Some((Instant::now(), findings.clone()));
                findings
            }
        };
        findings.into_iter().map(|f| (f.what, f.verdict != Verdict::Missing)).collect()
    }
}

/// The workers this process runs.
pub struct WorkerHealth {
    pub handlers: Arc<Handlers>,
    /// The stages that should have a poller here.
    pub stages: Vec<Stage>,
}

impl WorkerHealth {
    /// Each expected stage and whether its poller runs.
    pub fn status(&self) -> Vec<(Stage, bool)> {
        self.stages.iter().map(|s| (*s, self.handlers.liveness.is_running(*s))).collect()
    }
}
