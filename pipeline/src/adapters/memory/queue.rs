use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::domain::{PortError, Stage, StageMessage};
use crate::ports::{Queue, QueueDepth, Received};

/// One queue per stage in memory, with the semantics of the real ones:
/// visibility timeouts, receive counts, delays and a dead-letter queue.
/// Time is tokio's, so a test with paused time runs timeouts instantly.
#[derive(Default)]
pub struct InMemoryQueue {
    state: Mutex<State>,
    arrived: Notify,
}

#[derive(Default)]
struct State {
    next_id: u64,
    messages: HashMap<Stage, Vec<Entry>>,
    dead: HashMap<Stage, Vec<Dead>>,
}

struct Dead {
    body: String,
    reason: String,
    at: Instant,
}

struct Entry {
    id: u64,
    body: String,
    sent_ms: i64,
    sent_at: Instant,
    visible_at: Instant,
    /// The receipt of the current delivery; `None` before the first one.
    receipt: Option<String>,
    receive_count: u32,
}

impl InMemoryQueue {
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The dead-lettered messages of a stage with their reasons.
    pub fn dead_letters(&self, stage: Stage) -> Vec<(StageMessage, String)> {
        let state = self.state();
        let dead = state.dead.get(&stage).map(Vec::as_slice).unwrap_or_default();
        dead.iter().filter_map(|d| Some((StageMessage::from_json(&d.body).ok()?, d.reason.clone()))).collect()
    }

    /// When the next message of any stage becomes visible, if one waits.
    pub fn next_visible(&self) -> Option<Instant> {
        self.state().messages.values().flatten().map(|e| e.visible_at).min()
    }

    /// Takes what is visible now, or says when the next message will be.
    fn take(&self, stage: Stage, max: usize, visibility: Duration) -> Result<Vec<Received>, Option<Instant>> {
        let now = Instant::now();
        let mut state = self.state();
        let entries = state.messages.entry(stage).or_default();
        let mut taken = Vec::new();
        for entry in entries.iter_mut().filter(|e| e.visible_at <= now).take(max) {
            let receipt = format!("{}:{}", entry.id, entry.receive_count + 1);
            entry.receive_count += 1;
            entry.receipt = Some(receipt.clone());
            entry.visible_at = now + visibility;
            taken.push(Received {
                stage,
                body: entry.body.clone(),
                receipt,
                receive_count: entry.receive_count,
                sent_ms: Some(entry.sent_ms),
            });
        }
        if taken.is_empty() { Err(entries.iter().map(|e| e.visible_at).min()) } else { Ok(taken) }
    }

    /// Runs `change` on the entry a receipt names, if it is still current.
    fn with_entry(&self, received: &Received, change: impl FnOnce(&mut Vec<Entry>, usize, &mut State)) {
        let mut state = self.state();
        let mut entries = state.messages.remove(&received.stage).unwrap_or_default();
        if let Some(i) = entries.iter().position(|e| e.receipt.as_deref() == Some(received.receipt.as_str())) {
            change(&mut entries, i, &mut state);
        }
        state.messages.insert(received.stage, entries);
    }
}

#[async_trait]
impl Queue for InMemoryQueue {
    async fn send(&self, message: &StageMessage, delay: Duration) -> Result<(), PortError> {
        {
            let mut state = self.state();
            state.next_id += 1;
            let entry = Entry {
                id: state.next_id,
                body: message.to_json(),
                sent_ms: crate::domain::now_ms(),
                sent_at: Instant::now(),
                visible_at: Instant::now() + delay,
                receipt: None,
                receive_count: 0,
            };
            state.messages.entry(message.stage()).or_default().push(entry);
        }
        self.arrived.notify_waiters();
        Ok(())
    }

    async fn receive(
        &self,
        stage: Stage,
        max: usize,
        wait: Duration,
        visibility: Duration,
    ) -> Result<Vec<Received>, PortError> {
        let deadline = Instant::now() + wait;
        loop {
            let arrived = self.arrived.notified();
            let next = match self.take(stage, max, visibility) {
                Ok(taken) => return Ok(taken),
                Err(next) => next,
            };
            if Instant::now() >= deadline {
                return Ok(Vec::new());
            }
            // Wake for a new message, the next hidden one turning visible,
            // or the end of the wait, whichever comes first.
            let until = next.map_or(deadline, |n| n.min(deadline));
            tokio::select! {
                _ = arrived => {}
                _ = tokio::time::sleep_until(until) => {}
            }
        }
    }

    async fn ack(&self, received: &Received) -> Result<(), PortError> {
        self.with_entry(received, |entries, i, _| {
            entries.remove(i);
        });
        Ok(())
    }

    async fn set_visibility(&self, received: &Received, delay: Duration) -> Result<(), PortError> {
        self.with_entry(received, |entries, i, _| entries[i].visible_at = Instant::now() + delay);
        self.arrived.notify_waiters();
        Ok(())
    }

    async fn dead_letter(&self, received: &Received, reason: &str) -> Result<(), PortError> {
        self.with_entry(received, |entries, i, state| {
            let entry = entries.remove(i);
            let dead = Dead { body: entry.body, reason: reason.to_owned(), at: Instant::now() };
            state.dead.entry(received.stage).or_default().push(dead);
        });
        Ok(())
    }

    async fn depth(&self, stage: Stage) -> Result<QueueDepth, PortError> {
        let now = Instant::now();
        let state = self.state();
        let entries = state.messages.get(&stage).map(Vec::as_slice).unwrap_or_default();
        let dead = state.dead.get(&stage).map(Vec::as_slice).unwrap_or_default();
        let in_flight = entries.iter().filter(|e| e.receipt.is_some() && e.visible_at > now).count() as u64;
        let visible = entries.iter().filter(|e| e.visible_at <= now);
        Ok(QueueDepth {
            waiting: entries.len() as u64 - in_flight,
            in_flight,
            dead: dead.len() as u64,
            oldest_waiting: visible.map(|e| now - e.sent_at).max(),
            oldest_dead: dead.iter().map(|d| now - d.at).max(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::ports::Queue;

    // Paused time: visibility timeouts pass at once.
    #[tokio::test(start_paused = true)]
    async fn the_in_memory_queue_keeps_the_contract() {
        crate::contract::queue(|| async { Arc::new(InMemoryQueue::new()) as Arc<dyn Queue> }).await;
    }
}
