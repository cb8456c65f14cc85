//! The SQLite database behind the local job store and queues.
//!
//! One file, WAL mode: a committed write survives `kill -9` of the process,
//! and a `storytime worker` in another process can share the file (SQLite
//! serialises writers; `busy_timeout` makes them wait their turn).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use rusqlite::Connection;

use crate::domain::PortError;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    timestamp TEXT NOT NULL,
    status TEXT NOT NULL,
    needs_attention INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    version INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_attention ON jobs(needs_attention, updated_ms);
CREATE TABLE IF NOT EXISTS content_claims (
    content_key TEXT PRIMARY KEY,
    job_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS page_readings (
    pixels TEXT PRIMARY KEY,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS narrations (
    key TEXT PRIMARY KEY,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    stage TEXT NOT NULL,
    body TEXT NOT NULL,
    visible_ms INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt TEXT,
    sent_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS queue_ready ON queue(stage, visible_ms);
CREATE TABLE IF NOT EXISTS request_claims (
    request TEXT PRIMARY KEY,
    job_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS claims (
    key TEXT PRIMARY KEY,
    at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS preferences (
    user TEXT PRIMARY KEY,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY,
    stage TEXT NOT NULL,
    body TEXT NOT NULL,
    receive_count INTEGER NOT NULL,
    reason TEXT NOT NULL,
    failed_ms INTEGER NOT NULL
);
";

/// A shared handle on the database. Calls run on the blocking pool, one at
/// a time per process (each statement takes well under a millisecond).
///
/// Commits only append to the write-ahead log; copying the log back into
/// the database, and the fsync that takes, happens on a checkpoint thread
/// of its own, so no caller (above all, no acknowledgement waiting on a
/// queue send) ever waits for it.
#[derive(Clone)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
    checkpoint: mpsc::SyncSender<()>,
}

/// How often the log is checkpointed when nobody asks sooner.
const CHECKPOINT_PERIOD: Duration = Duration::from_secs(1);

impl Db {
    /// Opens (creating if needed) the database and its tables.
    pub fn open(path: &Path) -> Result<Self, PortError> {
        let conn = Self::connect(path)?;
        let fail = |e: rusqlite::Error| PortError::rejected("the database", format!("{}: {e}", path.display()));
        conn.execute_batch(SCHEMA).map_err(fail)?;
        let checkpoints = Self::connect(path)?;
        let (checkpoint, asked) = mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("db-checkpoint".into())
            .spawn(move || checkpoint_until_closed(&checkpoints, &asked))
            .map_err(|e| PortError::rejected("the database", e))?;
        Ok(Self { conn: Arc::new(Mutex::new(conn)), path: path.to_owned(), checkpoint })
    }

    /// A handle that asks for a checkpoint soon (`try_send(())`; a full
    /// channel means one is already due). The thread stops once every
    /// handle and every clone of this `Db` is gone.
    pub(crate) fn checkpointer(&self) -> mpsc::SyncSender<()> {
        self.checkpoint.clone()
    }

    /// Another connection to the same database, for a thread of its own.
    pub(crate) fn connect(path: &Path) -> Result<Connection, PortError> {
        let fail = |e: rusqlite::Error| PortError::rejected("the database", format!("{}: {e}", path.display()));
        let conn = Connection::open(path).map_err(fail)?;
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(fail)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(fail)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(fail)?;
        conn.pragma_update(None, "wal_autocheckpoint", 0).map_err(fail)?;
        Ok(conn)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` with the connection on this thread, waiting for it if
    /// another call has it (for threads of our own, such as the queue's
    /// writer). Sharing one connection means writers queue on a mutex,
    /// which wakes the next one at once, never on SQLite's busy handler,
    /// which sleeps.
    pub(crate) fn with_connection<T>(&self, f: impl FnOnce(&mut Connection) -> T) -> T {
        let mut guard = self.conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut guard)
    }

    /// Runs `f` with the connection on the blocking pool.
    pub async fn call<T, F>(&self, f: F) -> Result<T, PortError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, PortError> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|e| PortError::unavailable("the database", e))?
    }
}

/// The checkpoint thread: copies the write-ahead log into the database
/// when asked and once a period, without blocking writers (passive mode).
fn checkpoint_until_closed(conn: &Connection, asked: &mpsc::Receiver<()>) {
    loop {
        match asked.recv_timeout(CHECKPOINT_PERIOD) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::warn!(error = %e, "database checkpoint failed; the next one retries");
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Classifies an SQLite error: a busy or locked database is worth retrying,
/// anything else is a fault.
pub(crate) fn db_error(e: rusqlite::Error) -> PortError {
    use rusqlite::ErrorCode::{DatabaseBusy, DatabaseLocked};
    match e.sqlite_error_code() {
        Some(DatabaseBusy | DatabaseLocked) => PortError::unavailable("the database", e),
        _ => PortError::rejected("the database", e),
    }
}
