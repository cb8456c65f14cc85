//! The SQLite database behind the local job store and queues.
//!
//! One file, WAL mode: a committed write survives `kill -9` of the process,
//! and a `storytime worker` in another process can share the file (SQLite
//! serialises writers; `busy_timeout` makes them wait their turn).

use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::journal::{Journal, Reader, Record};
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
-- Counts by status (/healthz, /metrics) read this index, not the job rows.
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status);
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
-- A front end's per-workspace records (Slack installations, encrypted).
CREATE TABLE IF NOT EXISTS records (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS journal_offsets (
    name TEXT PRIMARY KEY,
    offset INTEGER NOT NULL
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
/// thread that runs one call at a time, and the append journal.
///
/// Queue appends do not wait for the database thread: each is one write to
/// this process's journal file (see [`journal`](super::journal)), durable
/// once written, so a burst of thousands of acknowledgements never queues
/// behind a commit, a slow call, or a database thread the scheduler keeps
/// waiting. The database thread moves the journal into the queue table in
/// one transaction per batch, at most every [`MOVE_PERIOD`] while appends
/// keep coming, and always before it runs any other call: every call sees
/// every append made before it, as if appends were written directly.
///
/// Commits only append to the write-ahead log; copying the log back into
/// the database, and the fsync that takes, happens on a checkpoint thread
/// of its own, so no caller ever waits for it either.
///
/// Dropping the last handle waits until the database thread has moved what
/// is left of the journal and both threads have stopped: the database can
/// be opened again at once and sees every message sent before.
#[derive(Clone)]
pub struct Database {
    path: PathBuf,
    shared: Arc<Shared>,
}

struct Shared {
    journal: Arc<Journal>,
    /// `None` only while the last handle is being dropped.
    work: Option<mpsc::Sender<Work>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Closing the channel tells the database thread to finish; its end
        // closes the checkpoint thread's.
        self.work = None;
        for thread in self.threads.drain(..) {
            // A call that dropped the last handle runs on the database
            // thread itself, which cannot wait for itself.
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

enum Work {
    /// Appends were written to the journal.
    Appended,
    Call(Call),
}

/// A statement (or several) to run with the connection.
type Call = Box<dyn FnOnce(&mut Connection) + Send>;

/// How often the log is checkpointed (and the journal flushed to disk)
/// when nobody asks sooner.
const CHECKPOINT_PERIOD: Duration = Duration::from_secs(1);
/// Shortest time between two moves of the journal into the queue table
/// while only appends arrive (calls move it at once): the longer, the
/// larger and cheaper each transaction.
const MOVE_PERIOD: Duration = Duration::from_millis(5);
/// How long a move that failed waits before it is tried again.
const RETRY_PERIOD: Duration = Duration::from_secs(1);
/// How often the segments of processes that died are looked for.
const ADOPT_PERIOD: Duration = Duration::from_secs(10);
/// Appends moved before the database thread asks for a checkpoint of the
/// write-ahead log (besides the periodic one).
const CHECKPOINT_EVERY: usize = 2000;

impl Database {
    /// Opens (creating if needed) the database and its tables, and moves
    /// into the queue whatever processes that stopped left in the journal.
    pub fn open(path: &Path) -> Result<Self, PortError> {
        let mut conn = Self::connect(path)?;
        create_schema(&conn).map_err(|e| PortError::rejected("the database", format!("{}: {e}", path.display())))?;
        let thread_failed = |e| PortError::rejected("the database", e);

        let dir = journal_dir(path);
        let journal = Arc::new(
            Journal::create(&dir)
                .map_err(|e| PortError::rejected("the queue journal", format!("{}: {e}", dir.display())))?,
        );
        let reader = Reader::new(journal.clone());
        reader.adopt_orphans(&mut conn)?;

        let checkpoints = Self::connect(path)?;
        let (checkpoint, asked) = mpsc::sync_channel(1);
        let flushed = journal.clone();
        let checkpointing = std::thread::Builder::new()
            .name("db-checkpoint".into())
            .spawn(move || checkpoint_until_closed(&checkpoints, &flushed, &asked))
            .map_err(thread_failed)?;

        let (work, queued) = mpsc::channel();
        let serving = std::thread::Builder::new()
            .name("db".into())
            .spawn(move || serve(&mut conn, &queued, reader, &checkpoint))
            .map_err(thread_failed)?;
        let shared = Shared { journal, work: Some(work), threads: vec![serving, checkpointing] };
        Ok(Self { path: path.to_owned(), shared: Arc::new(shared) })
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

    /// Appends a message to the queue table; returns once it is durable
    /// (written to the journal), which takes one write and no waiting.
    pub(crate) fn append(&self, stage: &'static str, body: String, delay: Duration) -> Result<(), PortError> {
        let now = now_ms();
        let record = Record { stage: stage.into(), body, visible_ms: now + delay.as_millis() as i64, sent_ms: now };
        let written = self.shared.journal.append(&record);
        // Even a failed write is reported: it may have retired a segment
        // that the database thread must finish reading.
        if self.shared.journal.mark_written() {
            self.submit(Work::Appended)?;
        }
        written.map_err(|e| match e.kind() {
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
                PortError::storage_full("the queue journal", format!("could not record a message: {e}"))
            }
            _ => PortError::unavailable("the queue journal", format!("could not record a message: {e}")),
        })
    }

    fn submit(&self, work: Work) -> Result<(), PortError> {
        let stopped = || PortError::unavailable("the database", "its thread has stopped");
        self.shared.work.as_ref().ok_or_else(stopped)?.send(work).map_err(|_| stopped())
    }
}

/// Where the journal of the database at `path` keeps its segments.
fn journal_dir(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push("-appends");
    path.with_file_name(name)
}

pub(crate) fn create_schema(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(SCHEMA)
}

/// The database thread: runs calls one at a time, each after moving the
/// journal into the queue table; moves it also when appends arrive, at
/// most once per [`MOVE_PERIOD`], and again until nothing is left (after a
/// failure, once per [`RETRY_PERIOD`]); adopts dead processes' segments
/// now and then; moves what is left when every handle is gone.
fn serve(conn: &mut Connection, queued: &mpsc::Receiver<Work>, mut reader: Reader, checkpoint: &mpsc::SyncSender<()>) {
    // Acknowledgements never wait for this thread (see `crate::runtime::priority`).
    crate::runtime::priority::lower_this_thread();
    let mut since_checkpoint = 0;
    let mut move_journal = |conn: &mut Connection, reader: &mut Reader| -> Option<Instant> {
        let pause = match reader.drain(conn) {
            Ok(moved) => {
                since_checkpoint += moved;
                if since_checkpoint >= CHECKPOINT_EVERY {
                    // Full means one is already due.
                    let _ = checkpoint.try_send(());
                    since_checkpoint = 0;
                }
                MOVE_PERIOD
            }
            // The records stay in the journal and pending.
            Err(e) => {
                tracing::error!(error = %e, "could not move queued messages into the database; retrying");
                RETRY_PERIOD
            }
        };
        reader.pending().then(|| Instant::now() + pause)
    };
    // When the journal is next due to move, if anything is waiting.
    let mut move_at: Option<Instant> = None;
    let mut earliest_move = Instant::now();
    let mut adopt_at = Instant::now() + ADOPT_PERIOD;
    loop {
        let until = move_at.map_or(adopt_at, |at| at.min(adopt_at));
        match queued.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Ok(Work::Appended) => move_at = Some(move_at.unwrap_or(earliest_move)),
            Ok(Work::Call(call)) => {
                if reader.pending() {
                    move_at = move_journal(conn, &mut reader);
                    earliest_move = Instant::now() + MOVE_PERIOD;
                }
                // A panic drops the caller's channel, which reports it.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| call(conn)));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                move_journal(conn, &mut reader);
                return;
            }
        }
        let now = Instant::now();
        if move_at.is_some_and(|at| at <= now) {
            move_at = move_journal(conn, &mut reader);
            earliest_move = now + MOVE_PERIOD;
        }
        if adopt_at <= now {
            adopt_at = now + ADOPT_PERIOD;
            if let Err(e) = reader.adopt_orphans(conn) {
                tracing::error!(error = %e, "could not recover queued messages of a stopped process");
            }
        }
    }
}

/// The checkpoint thread: copies the write-ahead log into the database
/// when asked and once a period, without blocking writers (passive mode),
/// and flushes the journal to disk once a period.
fn checkpoint_until_closed(conn: &Connection, journal: &Journal, asked: &mpsc::Receiver<()>) {
    crate::runtime::priority::lower_this_thread();
    loop {
        match asked.recv_timeout(CHECKPOINT_PERIOD) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::warn!(error = %e, "database checkpoint failed; the next one retries");
                }
                if let Err(e) = journal.sync() {
                    tracing::warn!(error = %e, "could not flush the queue journal; the next period retries");
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Classifies an SQLite error: a busy or locked database is worth retrying,
/// anything else is a fault.
pub(crate) fn db_error(e: rusqlite::Error) -> PortError {
    use rusqlite::ErrorCode::{DatabaseBusy, DatabaseLocked, DiskFull};
    match e.sqlite_error_code() {
        Some(DatabaseBusy | DatabaseLocked) => PortError::unavailable("the database", e),
        Some(DiskFull) => PortError::storage_full("the database", e),
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
    async fn an_append_is_durable_at_once_and_seen_by_the_next_call() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("d.sqlite")).unwrap();
        let (release, held) = mpsc::channel::<()>();
        let mut busy = Box::pin(db.call(move |_| {
            held.recv().ok();
            Ok(())
        }));
        submitted(&mut busy).await;
        // The database thread is busy, yet the append returns: it is written.
        db.append("read", "{}".into(), Duration::ZERO).unwrap();
        let count = db.call(queued);
        release.send(()).unwrap();
        busy.await.unwrap();
        assert_eq!(count.await.unwrap(), 1, "the call asked after the append sees it");
    }

    #[tokio::test]
    async fn appends_left_by_a_process_that_died_are_recovered_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.sqlite");
        // A process that wrote its journal and died before moving it.
        let journal = Journal::create(&journal_dir(&path)).unwrap();
        for n in 0..3 {
            let body = format!("{{\"n\":{n}}}");
            journal.append(&Record { stage: "read".into(), body, visible_ms: 0, sent_ms: 0 }).unwrap();
        }
        drop(journal);
        let db = Database::open(&path).unwrap();
        assert_eq!(db.call(queued).await.unwrap(), 3);
        drop(db);
        let again = Database::open(&path).unwrap();
        assert_eq!(again.call(queued).await.unwrap(), 3, "recovered once, not twice");
    }

    #[tokio::test]
    async fn a_database_opened_again_at_once_sees_every_append() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.sqlite");
        for round in 1..=20 {
            let db = Database::open(&path).unwrap();
            db.append("read", "{}".into(), Duration::ZERO).unwrap();
            // A clone outliving the others keeps the threads going.
            let clone = db.clone();
            drop(db);
            clone.append("read", "{}".into(), Duration::ZERO).unwrap();
            drop(clone);
            let again = Database::open(&path).unwrap();
            assert_eq!(again.call(queued).await.unwrap(), 2 * round, "round {round}");
        }
    }

    #[tokio::test]
    async fn a_call_that_panics_is_an_error_and_the_thread_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("d.sqlite")).unwrap();
        let err = db.call(|_| -> Result<(), PortError> { panic!("bad statement") }).await.unwrap_err();
        assert_eq!(err.kind(), crate::domain::ErrorKind::Unavailable, "{err:?}");
        assert_eq!(db.call(queued).await.unwrap(), 0);
    }
}
