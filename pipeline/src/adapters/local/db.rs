//! The SQLite database behind the local job store and queues.
//!
//! One file, WAL mode: a committed write survives `kill -9` of the process,
//! and a `storytime worker` in another process can share the file (SQLite
//! serialises writers; `busy_timeout` makes them wait their turn).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::{Connection, params};
use tokio::sync::oneshot;

use crate::domain::{PortError, now_ms};

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

/// A shared handle on the database: one connection, owned by a database
/// thread that runs one piece of work at a time.
///
/// Two kinds of work reach it. Queue appends (new messages) come first:
/// every append waiting is written in one transaction ("group commit"), so
/// a burst of thousands costs a handful of commits, and each sender learns
/// only once its message is durable. Other calls (the job store, receiving
/// and acknowledging messages) run one by one between those commits. An
/// acknowledgement waiting for its queue write thus never waits behind
/// more than one statement, and since the thread runs at normal priority
/// whoever asks, never behind lower-priority work (the pipeline's workers
/// in `storytime serve`) that the scheduler keeps waiting.
///
/// Commits only append to the write-ahead log; copying the log back into
/// the database, and the fsync that takes, happens on a checkpoint thread
/// of its own, so no caller ever waits for it either.
#[derive(Clone)]
pub struct Db {
    path: PathBuf,
    work: mpsc::Sender<Work>,
}

enum Work {
    Append(Append),
    Call(Call),
}

/// A statement (or several) to run with the connection.
type Call = Box<dyn FnOnce(&mut Connection) + Send>;

/// A message for the queue table, and who to tell once it is committed.
struct Append {
    stage: &'static str,
    body: String,
    delay: Duration,
    done: oneshot::Sender<Result<(), PortError>>,
}

/// How often the log is checkpointed when nobody asks sooner.
const CHECKPOINT_PERIOD: Duration = Duration::from_secs(1);
/// Most appends written in one transaction.
const MAX_BATCH: usize = 1000;
/// Appends written before the database thread asks for a checkpoint of the
/// write-ahead log (besides the periodic one).
const CHECKPOINT_EVERY: usize = 2000;

impl Db {
    /// Opens (creating if needed) the database and its tables.
    pub fn open(path: &Path) -> Result<Self, PortError> {
        let mut conn = Self::connect(path)?;
        let fail = |e: rusqlite::Error| PortError::rejected("the database", format!("{}: {e}", path.display()));
        conn.execute_batch(SCHEMA).map_err(fail)?;
        let thread_failed = |e| PortError::rejected("the database", e);

        let checkpoints = Self::connect(path)?;
        let (checkpoint, asked) = mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("db-checkpoint".into())
            .spawn(move || checkpoint_until_closed(&checkpoints, &asked))
            .map_err(thread_failed)?;

        let (work, queued) = mpsc::channel();
        std::thread::Builder::new()
            .name("db".into())
            .spawn(move || serve(&mut conn, &queued, &checkpoint))
            .map_err(thread_failed)?;
        Ok(Self { path: path.to_owned(), work })
    }

    /// A connection to the database file, set up as every one of ours is.
    fn connect(path: &Path) -> Result<Connection, PortError> {
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

    /// Runs `f` with the connection on the database thread.
    pub async fn call<T, F>(&self, f: F) -> Result<T, PortError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, PortError> + Send + 'static,
    {
        let (done, result) = oneshot::channel();
        let call: Call = Box::new(move |conn| {
            let _ = done.send(f(conn));
        });
        self.submit(Work::Call(call))?;
        result.await.map_err(|_| PortError::unavailable("the database", "a database call failed"))?
    }

    /// Appends a message to the queue table; returns once it is committed.
    pub(crate) async fn append(&self, stage: &'static str, body: String, delay: Duration) -> Result<(), PortError> {
        let (done, committed) = oneshot::channel();
        self.submit(Work::Append(Append { stage, body, delay, done }))?;
        committed.await.map_err(|_| PortError::unavailable("the database", "a queue write failed"))?
    }

    fn submit(&self, work: Work) -> Result<(), PortError> {
        self.work.send(work).map_err(|_| PortError::unavailable("the database", "its thread has stopped"))
    }
}

/// The database thread: pending appends first, in one transaction; then
/// one call; again, until every handle is gone.
fn serve(conn: &mut Connection, queued: &mpsc::Receiver<Work>, checkpoint: &mpsc::SyncSender<()>) {
    let mut appends: Vec<Append> = Vec::new();
    let mut calls: VecDeque<Call> = VecDeque::new();
    let mut since_checkpoint = 0;
    loop {
        if appends.is_empty() && calls.is_empty() {
            let Ok(work) = queued.recv() else { return };
            sort(work, &mut appends, &mut calls);
        }
        for work in queued.try_iter() {
            sort(work, &mut appends, &mut calls);
        }
        if !appends.is_empty() {
            let batch: Vec<Append> = appends.drain(..appends.len().min(MAX_BATCH)).collect();
            let result = insert_all(conn, &batch);
            since_checkpoint += batch.len();
            for append in batch {
                let _ = append.done.send(result.clone());
            }
            if since_checkpoint >= CHECKPOINT_EVERY {
                // Full means one is already due.
                let _ = checkpoint.try_send(());
                since_checkpoint = 0;
            }
        } else if let Some(call) = calls.pop_front() {
            // A panic drops the caller's channel, which reports it.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| call(conn)));
        }
    }
}

fn sort(work: Work, appends: &mut Vec<Append>, calls: &mut VecDeque<Call>) {
    match work {
        Work::Append(a) => appends.push(a),
        Work::Call(c) => calls.push_back(c),
    }
}

fn insert_all(conn: &mut Connection, batch: &[Append]) -> Result<(), PortError> {
    let tx = conn.transaction().map_err(db_error)?;
    {
        let mut stmt = tx
            .prepare_cached("INSERT INTO queue (stage, body, visible_ms, sent_ms) VALUES (?1, ?2, ?3, ?4)")
            .map_err(db_error)?;
        let now = now_ms();
        for append in batch {
            stmt.execute(params![append.stage, append.body, now + append.delay.as_millis() as i64, now])
                .map_err(db_error)?;
        }
    }
    tx.commit().map_err(db_error)
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

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::Poll;

    use super::*;

    /// Polls once, so that the work is handed to the database thread.
    async fn submitted<T>(f: &mut Pin<Box<impl Future<Output = T>>>) {
        let pending = std::future::poll_fn(|cx| Poll::Ready(f.as_mut().poll(cx).is_pending())).await;
        assert!(pending, "the database thread is busy, so nothing is done yet");
    }

    fn queued(conn: &mut Connection) -> Result<i64, PortError> {
        conn.query_row("SELECT COUNT(*) FROM queue", [], |r| r.get(0)).map_err(db_error)
    }

    #[tokio::test]
    async fn waiting_queue_appends_are_committed_before_waiting_calls() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("d.sqlite")).unwrap();
        let (release, held) = mpsc::channel::<()>();
        let mut busy = Box::pin(db.call(move |_| {
            held.recv().ok();
            Ok(())
        }));
        submitted(&mut busy).await;
        let mut count = Box::pin(db.call(queued));
        submitted(&mut count).await;
        let mut append = Box::pin(db.append("read", "{}".into(), Duration::ZERO));
        submitted(&mut append).await;
        release.send(()).unwrap();
        busy.await.unwrap();
        append.await.unwrap();
        assert_eq!(count.await.unwrap(), 1, "the append asked later was committed first");
    }

    #[tokio::test]
    async fn a_call_that_panics_is_an_error_and_the_thread_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("d.sqlite")).unwrap();
        let err = db.call(|_| -> Result<(), PortError> { panic!("bad statement") }).await.unwrap_err();
        assert!(matches!(err, PortError::Unavailable { .. }), "{err:?}");
        assert_eq!(db.call(queued).await.unwrap(), 0);
    }
}
