//! The memory budget for decoded pixels: every decode on the upload path
//! and in the readers takes its share before allocating, so a burst of
//! small files that each declare a huge picture waits its turn instead of
//! growing the process past the budget.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The budget is counted in KiB, which keeps a few gigabytes within the
/// semaphore's `u32` permits.
const UNIT: u64 = 1024;

#[derive(Debug, Clone)]
pub struct MemoryBudget {
    permits: Arc<Semaphore>,
    total: u32,
}

/// A share of the budget, given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    _permit: OwnedSemaphorePermit,
    pub bytes: u64,
}

impl MemoryBudget {
    pub fn new(bytes: u64) -> Self {
        let total = (bytes / UNIT).clamp(1, u32::MAX as u64 / 2) as u32;
        Self { permits: Arc::new(Semaphore::new(total as usize)), total }
    }

    pub fn total_bytes(&self) -> u64 {
        self.total as u64 * UNIT
    }

    /// Free bytes right now.
    pub fn available_bytes(&self) -> u64 {
        self.permits.available_permits() as u64 * UNIT
    }

    /// Waits until `bytes` are free. A single piece of work larger than the
    /// whole budget takes all of it, so it runs alone rather than never.
    pub async fn reserve(&self, bytes: u64) -> Reservation {
        let units = self.units(bytes);
        let permit =
            self.permits.clone().acquire_many_owned(units).await.expect("the budget's semaphore is never closed");
        Reservation { _permit: permit, bytes }
    }

    /// As [`reserve`](Self::reserve), giving up after `wait`.
    pub async fn reserve_within(&self, bytes: u64, wait: Duration) -> Option<Reservation> {
        tokio::time::timeout(wait, self.reserve(bytes)).await.ok()
    }

    fn units(&self, bytes: u64) -> u32 {
        (bytes.div_ceil(UNIT).max(1)).min(self.total as u64) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn work_over_the_budget_waits_for_a_share_to_be_given_back() {
        let budget = MemoryBudget::new(100 * UNIT);
        let first = budget.reserve(60 * UNIT).await;
        assert_eq!(budget.available_bytes(), 40 * UNIT);
        assert!(budget.reserve_within(60 * UNIT, Duration::from_secs(5)).await.is_none());
        drop(first);
        let second = budget.reserve_within(60 * UNIT, Duration::from_secs(5)).await;
        assert!(second.is_some());
    }

    #[tokio::test]
    async fn work_larger_than_the_whole_budget_runs_alone() {
        let budget = MemoryBudget::new(100 * UNIT);
        let huge = budget.reserve(10_000 * UNIT).await;
        assert_eq!(budget.available_bytes(), 0);
        assert_eq!(huge.bytes, 10_000 * UNIT);
        drop(huge);
        assert_eq!(budget.available_bytes(), budget.total_bytes());
    }
}
