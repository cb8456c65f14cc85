//! A durable queue per stage in SQLite, with the semantics of SQS: a
//! received message is hidden for a visibility timeout and comes back if it
//! is not acknowledged; every receive counts; messages may be delayed; a
//! dead-letter table keeps what could not be processed.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};
use tokio::sync::Notify;

use super::database::{Database, db_error};
use crate::domain::{PortError, Stage, StageMessage, now_ms};
use crate::ports::{Queue, QueueDepth, Received};

/// How often an idle receiver looks for messages sent by another process
/// (messages sent by this process wake it at once).
const CROSS_PROCESS_POLL: Duration = Duration::from_millis(500);

pub struct SqliteQueue {
    db: Database,
    wakers: HashMap<Stage, Notify>,
}

impl SqliteQueue {
    /// Opens the queue on `db`. A send is one write to the journal (see
    /// [`Database`]): the sender learns of it once the message is durable, and
    /// every receive after it sees the message.
    pub fn new(db: Database) -> Self {
        Self { db, wakers: Stage::ALL.into_iter().map(|s| (s, Notify::new())).collect() }
    }

    async fn try_receive(&self, stage: Stage, max: usize, visibility: Duration) -> Result<Vec<Received>, PortError> {
        self.db
            .call(move |conn| {
                let now = now_ms();
                let nonce = uuid::Uuid::new_v4().simple().to_string();
                let mut stmt = conn
                    .prepare_cached(
                        "UPDATE queue SET visible_ms = ?1, receive_count = receive_count + 1,
                                receipt = id || ':' || ?2
                         WHERE id IN (SELECT id FROM queue WHERE stage = ?3 AND visible_ms <= ?4
                                      ORDER BY visible_ms, id LIMIT ?5)
                         RETURNING body, receipt, receive_count, sent_ms",
                    )
                    .map_err(db_error)?;
                let rows = stmt
                    .query_map(
                        params![now + visibility.as_millis() as i64, nonce, stage.name(), now, max as i64],
                        |r| {
                            Ok(Received {
                                stage,
                                body: r.get(0)?,
                                receipt: r.get(1)?,
                                receive_count: r.get::<_, i64>(2)? as u32,
                                sent_ms: Some(r.get(3)?),
                            })
                        },
                    )
                    .map_err(db_error)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(db_error)
            })
            .await
    }

    /// When the next delayed or hidden message of `stage` becomes visible.
    async fn next_visible_ms(&self, stage: Stage) -> Result<Option<i64>, PortError> {
        self.db
            .call(move |conn| {
                conn.query_row("SELECT MIN(visible_ms) FROM queue WHERE stage = ?1", [stage.name()], |r| r.get(0))
                    .map_err(db_error)
            })
            .await
    }

    fn receipt_id(receipt: &str) -> Result<i64, PortError> {
        receipt
            .split_once(':')
            .and_then(|(id, _)| id.parse().ok())
            .ok_or_else(|| PortError::rejected("the queue", format!("malformed receipt {receipt}")))
    }
}

#[async_trait]
impl Queue for SqliteQueue {
    async fn send(&self, message: &StageMessage, delay: Duration) -> Result<(), PortError> {
        let stage = message.stage();
        self.db.append(stage.name(), message.to_json(), delay)?;
        self.wakers[&stage].notify_waiters();
        Ok(())
    }

    async fn receive(
        &self,
        stage: Stage,
        max: usize,
        wait: Duration,
        visibility: Duration,
    ) -> Result<Vec<Received>, PortError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Register for wake-ups before looking, so a send between the
            // look and the wait is not missed.
            let notified = self.wakers[&stage].notified();
            tokio::pin!(notified);
            notified.as_mut().enable();

            let got = self.try_receive(stage, max.max(1), visibility).await?;
            let now = tokio::time::Instant::now();
            if !got.is_empty() || now >= deadline {
                return Ok(got);
            }
            let mut until = deadline.min(now + CROSS_PROCESS_POLL);
            if let Some(next) = self.next_visible_ms(stage).await? {
                let ms = (next - now_ms()).max(0) as u64;
                until = until.min(now + Duration::from_millis(ms));
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep_until(until) => {}
            }
        }
    }

    async fn ack(&self, received: &Received) -> Result<(), PortError> {
        let id = Self::receipt_id(&received.receipt)?;
        let receipt = received.receipt.clone();
        let deleted = self
            .db
            .call(move |conn| {
                conn.execute("DELETE FROM queue WHERE id = ?1 AND receipt = ?2", params![id, receipt]).map_err(db_error)
            })
            .await?;
        if deleted == 0 {
            // The visibility timeout ran out and someone else holds it now:
            // their copy will be acknowledged by them.
            tracing::warn!(receipt = %received.receipt, "acknowledged a message that had been handed out again");
        }
        Ok(())
    }

    async fn set_visibility(&self, received: &Received, delay: Duration) -> Result<(), PortError> {
        let id = Self::receipt_id(&received.receipt)?;
        let receipt = received.receipt.clone();
        self.db
            .call(move |conn| {
                conn.execute(
                    "UPDATE queue SET visible_ms = ?1 WHERE id = ?2 AND receipt = ?3",
                    params![now_ms() + delay.as_millis() as i64, id, receipt],
                )
                .map_err(db_error)
            })
            .await?;
        if delay.is_zero() {
            self.wakers[&received.stage].notify_waiters();
        }
        Ok(())
    }

    async fn dead_letter(&self, received: &Received, reason: &str) -> Result<(), PortError> {
        let id = Self::receipt_id(&received.receipt)?;
        let (stage, body, count, reason) =
            (received.stage.name(), received.body.clone(), received.receive_count, reason.to_owned());
        self.db
            .call(move |conn| {
                let tx = conn.transaction().map_err(db_error)?;
                let owned: Option<i64> = tx
                    .query_row("SELECT id FROM queue WHERE id = ?1", [id], |r| r.get(0))
                    .optional()
                    .map_err(db_error)?;
                tx.execute(
                    "INSERT INTO dead_letters (stage, body, receive_count, reason, failed_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![stage, body, count, reason, now_ms()],
                )
                .map_err(db_error)?;
                if owned.is_some() {
                    tx.execute("DELETE FROM queue WHERE id = ?1", [id]).map_err(db_error)?;
                }
                tx.commit().map_err(db_error)
            })
            .await
    }

    async fn depth(&self, stage: Stage) -> Result<QueueDepth, PortError> {
        self.db
            .call(move |conn| {
                let now = now_ms();
                let (waiting, in_flight, oldest): (i64, i64, Option<i64>) = conn
                    .query_row(
                        "SELECT COALESCE(SUM(receipt IS NULL OR visible_ms <= ?2), 0),
                                COALESCE(SUM(receipt IS NOT NULL AND visible_ms > ?2), 0),
                                MIN(CASE WHEN visible_ms <= ?2 THEN sent_ms END)
                         FROM queue WHERE stage = ?1",
                        params![stage.name(), now],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .map_err(db_error)?;
                let (dead, oldest_dead): (i64, Option<i64>) = conn
                    .query_row(
                        "SELECT COUNT(*), MIN(failed_ms) FROM dead_letters WHERE stage = ?1",
                        [stage.name()],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .map_err(db_error)?;
                let age = |since: Option<i64>| since.map(|ms| Duration::from_millis((now - ms).max(0) as u64));
                Ok(QueueDepth {
                    waiting: waiting as u64,
                    in_flight: in_flight as u64,
                    dead: dead as u64,
                    oldest_waiting: age(oldest),
                    oldest_dead: age(oldest_dead),
                })
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::JobId;

    fn queue() -> (tempfile::TempDir, SqliteQueue) {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("q.sqlite")).unwrap();
        (dir, SqliteQueue::new(db))
    }

    const NOW: Duration = Duration::ZERO;
    const VIS: Duration = Duration::from_secs(30);

    #[tokio::test]
    async fn a_stale_receipt_acknowledges_nothing() {
        let (_dir, q) = queue();
        q.send(&StageMessage::narrate(JobId::new()), NOW).await.unwrap();
        let got = q.receive(Stage::Narrate, 10, NOW, VIS).await.unwrap();
        q.set_visibility(&got[0], NOW).await.unwrap();
        let again = q.receive(Stage::Narrate, 10, NOW, VIS).await.unwrap();
        assert_eq!(again[0].receive_count, 2);

        // The first receipt is stale now: acknowledging it deletes nothing.
        q.ack(&got[0]).await.unwrap();
        assert_eq!(q.depth(Stage::Narrate).await.unwrap().in_flight, 1);
        q.ack(&again[0]).await.unwrap();
        assert_eq!(q.depth(Stage::Narrate).await.unwrap().counts(), (0, 0, 0));
    }

    #[tokio::test]
    async fn a_burst_of_concurrent_sends_all_land() {
        let (_dir, q) = queue();
        let q = std::sync::Arc::new(q);
        let sends: Vec<_> = (0..500)
            .map(|i| {
                let q = q.clone();
                tokio::spawn(async move { q.send(&StageMessage::read(JobId::new(), i), NOW).await })
            })
            .collect();
        for s in sends {
            s.await.unwrap().unwrap();
        }
        assert_eq!(q.depth(Stage::Read).await.unwrap().waiting, 500);
    }

    #[tokio::test]
    async fn the_sqlite_queue_keeps_the_contract() {
        let dir = tempfile::tempdir().unwrap();
        let n = std::sync::atomic::AtomicUsize::new(0);
        crate::contract::queue(|| {
            let path = dir.path().join(format!("q{}.sqlite", n.fetch_add(1, std::sync::atomic::Ordering::SeqCst)));
            async move { std::sync::Arc::new(SqliteQueue::new(Database::open(&path).unwrap())) as std::sync::Arc<dyn Queue> }
        })
        .await;
    }

    #[tokio::test]
    async fn messages_survive_reopening_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.sqlite");
        let msg = StageMessage::read(JobId::new(), 3);
        SqliteQueue::new(Database::open(&path).unwrap()).send(&msg, NOW).await.unwrap();
        let reopened = SqliteQueue::new(Database::open(&path).unwrap());
        let got = reopened.receive(Stage::Read, 1, NOW, VIS).await.unwrap();
        assert_eq!(got[0].message().unwrap(), msg);
    }
}
