//! The job store in SQLite. Jobs are stored whole as JSON beside the
//! columns queries need; a content-claims table makes deduplication a
//! single transaction.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::database::{Database, db_error};
use crate::domain::now_ms;
use crate::domain::{AudioRef, ContentId, Destination, Job, JobId, JobStatus, PageReading, PortError};
use crate::ports::{JobStore, MAX_RECIPIENTS, Preferences, Submitted, UserPrefs};

pub struct SqliteJobStore {
    db: Database,
}

impl SqliteJobStore {
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, PortError> {
    serde_json::to_string(v).map_err(|e| PortError::rejected("the job store", e))
}

fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, PortError> {
    serde_json::from_str(s).map_err(|e| PortError::rejected("the job store", format!("unreadable record: {e}")))
}

fn load(conn: &Connection, id: &str) -> Result<Option<Job>, PortError> {
    let body: Option<String> =
        conn.query_row("SELECT body FROM jobs WHERE id = ?1", [id], |r| r.get(0)).optional().map_err(db_error)?;
    body.map(|b| from_json(&b)).transpose()
}

fn insert(conn: &Connection, job: &Job) -> Result<(), PortError> {
    conn.execute(
        "INSERT INTO jobs (id, timestamp, status, needs_attention, updated_ms, version, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            job.id.as_str(),
            job.timestamp,
            job.status.as_str(),
            job.needs_attention(),
            job.updated_ms,
            job.version as i64,
            to_json(job)?
        ],
    )
    .map_err(db_error)?;
    Ok(())
}

/// Writes `job` over the stored copy with the same version; returns false
/// when the stored copy has moved on.
fn update(conn: &Connection, job: &Job) -> Result<bool, PortError> {
    let mut next = job.clone();
    next.version += 1;
    let n = conn
        .execute(
            "UPDATE jobs SET status = ?1, needs_attention = ?2, updated_ms = ?3, version = ?4, body = ?5
             WHERE id = ?6 AND version = ?7",
            params![
                next.status.as_str(),
                next.needs_attention(),
                next.updated_ms,
                next.version as i64,
                to_json(&next)?,
                job.id.as_str(),
                job.version as i64
            ],
        )
        .map_err(db_error)?;
    Ok(n == 1)
}

#[async_trait]
impl JobStore for SqliteJobStore {
    async fn submit(&self, job: Job, destinations: Vec<Destination>) -> Result<Submitted, PortError> {
        self.db
            .call(move |conn| {
                // IMMEDIATE takes the write lock up front: the claim check and
                // the insert happen with no other writer in between.
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_error)?;
                if let Some(request) = &job.request {
                    let earlier: Option<String> = tx
                        .query_row("SELECT job_id FROM request_claims WHERE request = ?1", [request], |r| r.get(0))
                        .optional()
                        .map_err(db_error)?;
                    if let Some(existing) = earlier.as_deref().map(|id| load(&tx, id)).transpose()?.flatten() {
                        return Ok(Submitted::Existing { job: existing, recipients: Vec::new() });
                    }
                    tx.execute(
                        "INSERT OR REPLACE INTO request_claims (request, job_id) VALUES (?1, ?2)",
                        params![request, job.id.as_str()],
                    )
                    .map_err(db_error)?;
                }
                if let Some(key) = &job.content_key {
                    let claimed: Option<String> = tx
                        .query_row("SELECT job_id FROM content_claims WHERE content_key = ?1", [key.as_str()], |r| {
                            r.get(0)
                        })
                        .optional()
                        .map_err(db_error)?;
                    match claimed.as_deref().map(|id| load(&tx, id)).transpose()?.flatten() {
                        Some(mut existing)
                            if existing.status != JobStatus::Failed && existing.recipients.len() < MAX_RECIPIENTS =>
                        {
                            let recipients: Vec<usize> =
                                destinations.into_iter().map(|d| existing.add_recipient(d)).collect();
                            if !recipients.is_empty() {
                                if !update(&tx, &existing)? {
                                    return Err(PortError::conflict(existing.id.to_string()));
                                }
                                existing.version += 1;
                            }
                            tx.commit().map_err(db_error)?;
                            return Ok(Submitted::Existing { job: existing, recipients });
                        }
                        _ => {
                            tx.execute(
                                "INSERT INTO content_claims (content_key, job_id) VALUES (?1, ?2)
                                 ON CONFLICT(content_key) DO UPDATE SET job_id = excluded.job_id",
                                params![key.as_str(), job.id.as_str()],
                            )
                            .map_err(db_error)?;
                        }
                    }
                }
                let mut job = job;
                for d in destinations {
                    job.add_recipient(d);
                }
                insert(&tx, &job)?;
                tx.commit().map_err(db_error)?;
                Ok(Submitted::Created(job))
            })
            .await
    }

    async fn get(&self, id: &JobId) -> Result<Option<Job>, PortError> {
        let id = id.to_string();
        self.db.call(move |conn| load(conn, &id)).await
    }

    async fn save(&self, job: &Job) -> Result<u64, PortError> {
        let job = job.clone();
        self.db
            .call(
                move |conn| {
                    if update(conn, &job)? { Ok(job.version + 1) } else { Err(PortError::conflict(job.id.to_string())) }
                },
            )
            .await
    }

    async fn stalled(&self, before_ms: i64, limit: usize) -> Result<Vec<Job>, PortError> {
        self.db
            .call(move |conn| {
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT body FROM jobs WHERE needs_attention = 1 AND updated_ms < ?1
                         ORDER BY updated_ms LIMIT ?2",
                    )
                    .map_err(db_error)?;
                let bodies = stmt
                    .query_map(params![before_ms, limit as i64], |r| r.get::<_, String>(0))
                    .map_err(db_error)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(db_error)?;
                bodies.iter().map(|b| from_json(b)).collect()
            })
            .await
    }

    async fn page_reading(&self, pixels: &ContentId) -> Result<Option<PageReading>, PortError> {
        let key = pixels.to_string();
        self.db
            .call(move |conn| {
                let body: Option<String> = conn
                    .query_row("SELECT body FROM page_readings WHERE pixels = ?1", [key], |r| r.get(0))
                    .optional()
                    .map_err(db_error)?;
                body.map(|b| from_json(&b)).transpose()
            })
            .await
    }

    async fn put_page_reading(&self, pixels: &ContentId, reading: &PageReading) -> Result<(), PortError> {
        let (key, body) = (pixels.to_string(), to_json(reading)?);
        self.db
            .call(move |conn| {
                conn.execute("INSERT OR IGNORE INTO page_readings (pixels, body) VALUES (?1, ?2)", [key, body])
                    .map_err(db_error)?;
                Ok(())
            })
            .await
    }

    async fn narration(&self, key: &ContentId) -> Result<Option<AudioRef>, PortError> {
        let key = key.to_string();
        self.db
            .call(move |conn| {
                let body: Option<String> = conn
                    .query_row("SELECT body FROM narrations WHERE key = ?1", [key], |r| r.get(0))
                    .optional()
                    .map_err(db_error)?;
                body.map(|b| from_json(&b)).transpose()
            })
            .await
    }

    async fn put_narration(&self, key: &ContentId, audio: &AudioRef) -> Result<(), PortError> {
        let (key, body) = (key.to_string(), to_json(audio)?);
        self.db
            .call(move |conn| {
                conn.execute("INSERT OR IGNORE INTO narrations (key, body) VALUES (?1, ?2)", [key, body])
                    .map_err(db_error)?;
                Ok(())
            })
            .await
    }

    async fn claim(&self, key: &str) -> Result<bool, PortError> {
        let key = key.to_owned();
        self.db
            .call(move |conn| {
                let n = conn
                    .execute("INSERT OR IGNORE INTO claims (key, at_ms) VALUES (?1, ?2)", params![key, now_ms()])
                    .map_err(db_error)?;
                Ok(n == 1)
            })
            .await
    }

    async fn counts(&self) -> Result<Vec<(String, u64)>, PortError> {
        self.db
            .call(|conn| {
                let mut stmt =
                    conn.prepare_cached("SELECT status, COUNT(*) FROM jobs GROUP BY status").map_err(db_error)?;
                let rows = stmt
                    .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64)))
                    .map_err(db_error)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(db_error)
            })
            .await
    }
}

/// Per-user settings in the same database.
pub struct SqlitePreferences {
    db: Database,
}

impl SqlitePreferences {
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// Runs an insert-or-replace `sql` with a key and a value.
    async fn upsert(&self, sql: &'static str, key: &str, value: &str) -> Result<(), PortError> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.db
            .call(move |conn| {
                conn.execute(sql, [key, value]).map_err(db_error)?;
                Ok(())
            })
            .await
    }
}

#[async_trait]
impl Preferences for SqlitePreferences {
    async fn get(&self, user: &str) -> Result<UserPrefs, PortError> {
        let user = user.to_owned();
        self.db
            .call(move |conn| {
                let body: Option<String> = conn
                    .query_row("SELECT body FROM preferences WHERE user = ?1", [user], |r| r.get(0))
                    .optional()
                    .map_err(db_error)?;
                body.map(|b| from_json(&b)).transpose().map(Option::unwrap_or_default)
            })
            .await
    }

    async fn set(&self, user: &str, prefs: &UserPrefs) -> Result<(), PortError> {
        self.upsert(
            "INSERT INTO preferences (user, body) VALUES (?1, ?2) ON CONFLICT(user) DO UPDATE SET body = excluded.body",
            user,
            &to_json(prefs)?,
        )
        .await
    }

    async fn record(&self, key: &str) -> Result<Option<String>, PortError> {
        let key = key.to_owned();
        self.db
            .call(move |conn| {
                conn.query_row("SELECT value FROM records WHERE key = ?1", [key], |r| r.get(0))
                    .optional()
                    .map_err(db_error)
            })
            .await
    }

    async fn put_record(&self, key: &str, value: &str) -> Result<(), PortError> {
        self.upsert(
            "INSERT INTO records (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            key,
            value,
        )
        .await
    }

    async fn delete_record(&self, key: &str) -> Result<(), PortError> {
        let key = key.to_owned();
        self.db
            .call(move |conn| {
                conn.execute("DELETE FROM records WHERE key = ?1", [key]).map_err(db_error)?;
                Ok(())
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::contract;

    fn store() -> (tempfile::TempDir, Arc<SqliteJobStore>) {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("j.sqlite")).unwrap();
        (dir, Arc::new(SqliteJobStore::new(db)))
    }

    #[tokio::test]
    async fn the_sqlite_job_store_keeps_the_contract() {
        let (_dir, store) = store();
        contract::job_store(store).await;
    }

    #[tokio::test]
    async fn sqlite_preferences_keep_the_contract() {
        let dir = tempfile::tempdir().unwrap();
        let prefs = SqlitePreferences::new(Database::open(&dir.path().join("p.sqlite")).unwrap());
        contract::preferences(&prefs).await;
    }
}
