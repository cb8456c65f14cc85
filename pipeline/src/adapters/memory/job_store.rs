use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;

use crate::domain::{AudioRef, ContentId, Destination, Job, JobId, JobStatus, PageReading, PortError};
use crate::ports::{JobStore, MAX_RECIPIENTS, Preferences, Submitted, UserPrefs};

/// Jobs, reusable results and preferences in maps behind one lock, which
/// makes every call one atomic step, as the real stores' transactions and
/// conditional writes do.
#[derive(Default)]
pub struct InMemoryJobStore {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    jobs: HashMap<JobId, Job>,
    by_content: HashMap<ContentId, JobId>,
    by_request: HashMap<String, JobId>,
    readings: HashMap<ContentId, PageReading>,
    narrations: HashMap<ContentId, AudioRef>,
    claims: HashSet<String>,
    prefs: HashMap<String, UserPrefs>,
    records: HashMap<String, String>,
}

impl InMemoryJobStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl JobStore for InMemoryJobStore {
    async fn submit(&self, mut job: Job, destinations: Vec<Destination>) -> Result<Submitted, PortError> {
        let mut state = self.state();
        if let Some(existing) =
            job.request.as_ref().and_then(|r| state.by_request.get(r)).and_then(|id| state.jobs.get(id))
        {
            return Ok(Submitted::Existing { job: existing.clone(), recipients: Vec::new() });
        }
        let request = job.request.clone();
        let earlier = job.content_key.as_ref().and_then(|key| state.by_content.get(key)).cloned();
        let submitted = match earlier.and_then(|id| state.jobs.get_mut(&id)) {
            Some(existing) if existing.status != JobStatus::Failed && existing.recipients.len() < MAX_RECIPIENTS => {
                let recipients: Vec<usize> = destinations.into_iter().map(|d| existing.add_recipient(d)).collect();
                if !recipients.is_empty() {
                    existing.version += 1;
                }
                Submitted::Existing { job: existing.clone(), recipients }
            }
            _ => {
                for d in destinations {
                    job.add_recipient(d);
                }
                if let Some(key) = &job.content_key {
                    state.by_content.insert(key.clone(), job.id.clone());
                }
                state.jobs.insert(job.id.clone(), job.clone());
                Submitted::Created(job)
            }
        };
        if let Some(request) = request {
            let id = match &submitted {
                Submitted::Created(j) | Submitted::Existing { job: j, .. } => j.id.clone(),
            };
            state.by_request.insert(request, id);
        }
        Ok(submitted)
    }

    async fn get(&self, id: &JobId) -> Result<Option<Job>, PortError> {
        Ok(self.state().jobs.get(id).cloned())
    }

    async fn save(&self, job: &Job) -> Result<u64, PortError> {
        let mut state = self.state();
        match state.jobs.get_mut(&job.id) {
            Some(stored) if stored.version == job.version => {
                *stored = job.clone();
                stored.version += 1;
                Ok(stored.version)
            }
            _ => Err(PortError::conflict(job.id.to_string())),
        }
    }

    async fn stalled(&self, before_ms: i64, limit: usize) -> Result<Vec<Job>, PortError> {
        let mut jobs: Vec<Job> =
            self.state().jobs.values().filter(|j| j.needs_attention() && j.updated_ms < before_ms).cloned().collect();
        jobs.sort_by_key(|j| j.updated_ms);
        jobs.truncate(limit);
        Ok(jobs)
    }

    async fn page_reading(&self, pixels: &ContentId) -> Result<Option<PageReading>, PortError> {
        Ok(self.state().readings.get(pixels).cloned())
    }

    async fn put_page_reading(&self, pixels: &ContentId, reading: &PageReading) -> Result<(), PortError> {
        self.state().readings.entry(pixels.clone()).or_insert_with(|| reading.clone());
        Ok(())
    }

    async fn narration(&self, key: &ContentId) -> Result<Option<AudioRef>, PortError> {
        Ok(self.state().narrations.get(key).cloned())
    }

    async fn put_narration(&self, key: &ContentId, audio: &AudioRef) -> Result<(), PortError> {
        self.state().narrations.entry(key.clone()).or_insert_with(|| audio.clone());
        Ok(())
    }

    async fn claim(&self, key: &str) -> Result<bool, PortError> {
        Ok(self.state().claims.insert(key.to_owned()))
    }

    async fn counts(&self) -> Result<Vec<(String, u64)>, PortError> {
        let mut counts: HashMap<&'static str, u64> = HashMap::new();
        for job in self.state().jobs.values() {
            *counts.entry(job.status.as_str()).or_default() += 1;
        }
        let mut counts: Vec<(String, u64)> = counts.into_iter().map(|(s, n)| (s.to_owned(), n)).collect();
        counts.sort();
        Ok(counts)
    }
}

#[async_trait]
impl Preferences for InMemoryJobStore {
    async fn get(&self, user: &str) -> Result<UserPrefs, PortError> {
        Ok(self.state().prefs.get(user).cloned().unwrap_or_default())
    }

    async fn set(&self, user: &str, prefs: &UserPrefs) -> Result<(), PortError> {
        self.state().prefs.insert(user.to_owned(), prefs.clone());
        Ok(())
    }

    async fn record(&self, key: &str) -> Result<Option<String>, PortError> {
        Ok(self.state().records.get(key).cloned())
    }

    async fn put_record(&self, key: &str, value: &str) -> Result<(), PortError> {
        self.state().records.insert(key.to_owned(), value.to_owned());
        Ok(())
    }

    async fn delete_record(&self, key: &str) -> Result<(), PortError> {
        self.state().records.remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn the_in_memory_job_store_keeps_the_contract() {
        let store = Arc::new(InMemoryJobStore::new());
        crate::contract::preferences(&*store).await;
        crate::contract::job_store(store).await;
    }
}
