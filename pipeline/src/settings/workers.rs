//! How many workers run per stage, and the retry policy they apply.

use std::time::Duration;

use super::env::{Env, SettingsError};

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// `STORYTIME_READ_WORKERS` (default: one per core): concurrent readers.
    pub read: usize,
    /// `STORYTIME_INBOUND_WORKERS` (default 4): concurrent photo downloads
    /// and job submissions for the chat front end.
    pub inbound: usize,
    /// `STORYTIME_NARRATE_WORKERS` (default 1): concurrent narrators.
    pub narrate: usize,
    /// `STORYTIME_DELIVER_WORKERS` (default 4): concurrent deliverers.
    pub deliver: usize,
    /// `STORYTIME_MAX_ATTEMPTS` (default 5): receives before a message is
    /// dead-lettered.
    pub max_attempts: u32,
    /// `STORYTIME_VISIBILITY_TIMEOUT` (seconds, default 30): how long a
    /// received message stays hidden; a running handler extends it.
    pub visibility: Duration,
    /// `STORYTIME_RETRY_BASE_MS` (default 2000): first retry delay; doubles
    /// per attempt.
    pub retry_base: Duration,
    /// `STORYTIME_STALL_AFTER` (seconds, default 60): a job with no progress
    /// for this long is re-queued (the original API's 60 s).
    pub stall_after: Duration,
}

impl WorkerSettings {
    pub fn from_env(env: &Env) -> Result<Self, SettingsError> {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let workers = Self {
            read: env.parse("STORYTIME_READ_WORKERS", cores.max(1))?,
            inbound: env.parse("STORYTIME_INBOUND_WORKERS", 4)?,
            narrate: env.parse("STORYTIME_NARRATE_WORKERS", 1)?,
            deliver: env.parse("STORYTIME_DELIVER_WORKERS", 4)?,
            max_attempts: env.parse("STORYTIME_MAX_ATTEMPTS", 5)?,
            visibility: env.seconds("STORYTIME_VISIBILITY_TIMEOUT", 30)?,
            retry_base: env.millis("STORYTIME_RETRY_BASE_MS", 2000)?,
            stall_after: env.seconds("STORYTIME_STALL_AFTER", 60)?,
        };
        if workers.max_attempts == 0 {
            return Err(SettingsError::new("STORYTIME_MAX_ATTEMPTS", "must be at least 1"));
        }
        if workers.visibility < Duration::from_secs(2) {
            return Err(SettingsError::new("STORYTIME_VISIBILITY_TIMEOUT", "must be at least 2 seconds"));
        }
        Ok(workers)
    }
}
