//! What `/healthz` reports: the storage (queue depths and job counts,
//! reused for `STORYTIME_HEALTH_CACHE`), the engines (checked at most once
//! a minute, since a check starts the programs or calls AWS), and the
//! workers this process should be running.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use storytime_pipeline::ports::QueueDepth;
use storytime_pipeline::runtime::Handlers;
use storytime_pipeline::setup::{Finding, Setup, Verdict};
use storytime_pipeline::{Pipeline, Stage};

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

/// One reading of the storage: each queue's depth and the jobs by status
/// (`None` where the store did not answer; the log says why).
pub struct StorageReading {
    pub depths: Vec<(Stage, Option<QueueDepth>)>,
    pub counts: Option<Vec<(String, u64)>>,
}

impl StorageReading {
    async fn take(p: &Pipeline) -> Self {
        let mut depths = Vec::new();
        for stage in Stage::ALL {
            let depth = p.queue.depth(stage).await;
            if let Err(e) = &depth {
                tracing::warn!(error = %e, %stage, "health check: the queue does not answer");
            }
            depths.push((stage, depth.ok()));
        }
        let counts = p.jobs.counts().await;
        if let Err(e) = &counts {
            tracing::warn!(error = %e, "health check: the job store does not answer");
        }
        Self { depths, counts: counts.ok() }
    }

    /// Every queue and the job store answered.
    pub fn answered(&self) -> bool {
        self.counts.is_some() && self.depths.iter().all(|(_, d)| d.is_some())
    }
}

/// Reuses a reading for `ttl`, and lets one request at a time take a new
/// one (the others wait for it): however often `/healthz` and `/metrics`
/// are asked, the storage sees at most one set of calls per `ttl` (with
/// `ttl` zero, one set per request, none in parallel).
pub struct StorageReadings {
    ttl: Duration,
    last: tokio::sync::Mutex<Option<(Instant, Arc<StorageReading>)>>,
}

impl StorageReadings {
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, last: tokio::sync::Mutex::new(None) }
    }

    pub async fn read(&self, p: &Pipeline) -> Arc<StorageReading> {
        let mut last = self.last.lock().await;
        if let Some((at, reading)) = last.as_ref()
            && at.elapsed() < self.ttl
        {
            return reading.clone();
        }
        let fresh = Arc::new(StorageReading::take(p).await);
        *last = Some((Instant::now(), fresh.clone()));
        fresh
    }
}

#[cfg(test)]
mod tests {
    use storytime_pipeline::testing::TestPipeline;
    use storytime_pipeline::{JobId, StageMessage};

    use super::*;

    async fn narrate_waiting(t: &TestPipeline) {
        let message = StageMessage::narrate(JobId::new());
        t.pipeline.queue.send(&message, Duration::ZERO).await.unwrap();
    }

    fn waiting(r: &Arc<StorageReading>) -> u64 {
        r.depths.iter().find(|(s, _)| *s == Stage::Narrate).and_then(|(_, d)| d.as_ref()).map_or(0, |d| d.waiting)
    }

    #[tokio::test]
    async fn a_reading_is_reused_for_its_period_and_shared_by_concurrent_probes() {
        let t = TestPipeline::new();
        let cached = Arc::new(StorageReadings::new(Duration::from_secs(3600)));
        let first = cached.read(&t.pipeline).await;
        narrate_waiting(&t).await;
        let mut probes = tokio::task::JoinSet::new();
        for _ in 0..50 {
            let (cached, pipeline) = (cached.clone(), t.pipeline.clone());
            probes.spawn(async move { cached.read(&pipeline).await });
        }
        while let Some(reading) = probes.join_next().await {
            assert!(Arc::ptr_eq(&reading.unwrap(), &first), "one reading for every probe in the period");
        }
        assert_eq!(waiting(&first), 0);

        let live = StorageReadings::new(Duration::ZERO);
        assert_eq!(waiting(&live.read(&t.pipeline).await), 1, "without a period, each probe reads anew");
        narrate_waiting(&t).await;
        assert_eq!(waiting(&live.read(&t.pipeline).await), 2);
        assert!(live.read(&t.pipeline).await.answered());
    }
}
