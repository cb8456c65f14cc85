//! The append journal: how a queue append becomes durable without waiting
//! for the database.
//!
//! A sender writes its message as one record, with one `write(2)`, to this
//! process's journal file (opened `O_APPEND`, so concurrent records never
//! interleave) and is answered as soon as the call returns: from then on
//! the message survives the process being killed, as a committed SQLite
//! write in WAL mode with `synchronous=NORMAL` does. The database thread
//! later moves the records into the queue table in large transactions,
//! storing in the same transaction how far it has read, and before every
//! other database call, so each call sees every append made before it.
//!
//! A record is `MAGIC`, the payload length and its CRC-32 (little-endian
//! u32 each), then the payload: visible-at and sent-at (i64 ms), the stage
//! name (u8 length, bytes) and the message body.
//!
//! Each process writes its own segment files in `<database>-appends/` and
//! holds an exclusive lock on the one it is writing. A segment is rotated
//! once it is large and fully read. The segments of a process that died
//! (their lock is gone) are adopted: read to the end, then deleted.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};

use super::db::db_error;
use crate::domain::PortError;

const MAGIC: &[u8; 4] = b"STJ1";
const HEADER: usize = 12;
/// Largest record payload accepted (queue bodies are a few kilobytes).
const MAX_PAYLOAD: usize = 8 * 1024 * 1024;
/// Most bytes of a segment read in one move (a backlog is moved in steps).
const MAX_READ: u64 = 2 * MAX_PAYLOAD as u64;
/// A segment this large, once fully read, is replaced by a fresh one.
const ROTATE_BYTES: u64 = 64 * 1024 * 1024;

/// One queue message as the journal keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub stage: String,
    pub body: String,
    pub visible_ms: i64,
    pub sent_ms: i64,
}

impl Record {
    fn encode(&self) -> Vec<u8> {
        let stage = self.stage.as_bytes();
        let len = 8 + 8 + 1 + stage.len() + self.body.len();
        let mut out = Vec::with_capacity(HEADER + len);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(len as u32).to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&self.visible_ms.to_le_bytes());
        out.extend_from_slice(&self.sent_ms.to_le_bytes());
        out.push(stage.len() as u8);
        out.extend_from_slice(stage);
        out.extend_from_slice(self.body.as_bytes());
        let crc = crc32fast::hash(&out[HEADER..]);
        out[8..12].copy_from_slice(&crc.to_le_bytes());
        out
    }

    fn decode(payload: &[u8]) -> Option<Self> {
        let visible_ms = i64::from_le_bytes(payload.get(0..8)?.try_into().ok()?);
        let sent_ms = i64::from_le_bytes(payload.get(8..16)?.try_into().ok()?);
        let stage_len = *payload.get(16)? as usize;
        let stage = std::str::from_utf8(payload.get(17..17 + stage_len)?).ok()?.to_owned();
        let body = String::from_utf8(payload.get(17 + stage_len..)?.to_vec()).ok()?;
        Some(Self { stage, body, visible_ms, sent_ms })
    }
}

/// What reading a stretch of a segment found.
struct Read {
    records: Vec<Record>,
    /// Offset just past the last record read (or skipped).
    end: u64,
    /// Bytes skipped over because they were not a valid record.
    skipped: u64,
    /// Whether the segment goes on past what was read.
    more: bool,
}

/// Parses the records in `bytes` (which start at file offset `from`). An
/// incomplete or damaged record stops the reading of a segment still being
/// written (it may be mid-write); in a finished one, damage is skipped up
/// to the next valid record and a torn last record is dropped.
fn parse(bytes: &[u8], from: u64, finished: bool) -> Read {
    let mut out = Read { records: Vec::new(), end: from, skipped: 0, more: false };
    let mut pos = 0;
    while pos < bytes.len() {
        match record_at(&bytes[pos..]) {
            Some((record, size)) => {
                out.records.push(record);
                pos += size;
            }
            None if !finished => break,
            None => {
                // Find the next record that checks out; the rest is lost.
                let next = (pos + 1..bytes.len())
                    .find(|&p| bytes[p..].starts_with(MAGIC) && record_at(&bytes[p..]).is_some())
                    .unwrap_or(bytes.len());
                out.skipped += (next - pos) as u64;
                pos = next;
            }
        }
        out.end = from + pos as u64;
    }
    out
}

/// The record at the start of `bytes` and its size, if complete and intact.
fn record_at(bytes: &[u8]) -> Option<(Record, usize)> {
    if bytes.len() < HEADER || &bytes[..4] != MAGIC {
        return None;
    }
    let len = u32::from_le_bytes(bytes[4..8].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(bytes[8..12].try_into().ok()?);
    let payload = bytes.get(HEADER..HEADER.checked_add(len)?)?;
    if len > MAX_PAYLOAD || crc32fast::hash(payload) != crc {
        return None;
    }
    Some((Record::decode(payload)?, HEADER + len))
}

/// A segment file this process writes.
pub(crate) struct Segment {
    name: String,
    path: PathBuf,
    file: File,
}

impl Segment {
    fn create(dir: &Path) -> io::Result<Arc<Self>> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name =
            format!("{}-{}-{}.log", std::process::id(), crate::domain::now_ms(), NEXT.fetch_add(1, Ordering::Relaxed));
        let path = dir.join(&name);
        let file = OpenOptions::new().read(true).append(true).create_new(true).open(&path)?;
        // Held until the file is closed: tells other processes it is alive.
        file.try_lock().map_err(|e| io::Error::other(format!("cannot lock {}: {e}", path.display())))?;
        Ok(Arc::new(Self { name, path, file }))
    }
}

/// The writing side, shared by every sender of the process.
pub(crate) struct Journal {
    dir: PathBuf,
    current: Mutex<Arc<Segment>>,
    /// Set by a sender after its write; cleared by the reader before it
    /// reads. Lets the reader skip reading when nothing was written.
    written: AtomicBool,
}

impl Journal {
    pub(crate) fn create(dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self { dir: dir.to_owned(), current: Mutex::new(Segment::create(dir)?), written: AtomicBool::new(false) })
    }

    fn current(&self) -> Arc<Segment> {
        self.current.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Writes one record; once this returns `Ok`, it survives the process.
    /// Either way, tell the reader afterwards ([`Journal::mark_written`]):
    /// a failed write may have left a torn record and a retired segment.
    pub(crate) fn append(&self, record: &Record) -> io::Result<()> {
        let bytes = record.encode();
        if bytes.len() - HEADER > MAX_PAYLOAD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a message of {} bytes is larger than the limit of {MAX_PAYLOAD}", bytes.len()),
            ));
        }
        let segment = self.current();
        match (&segment.file).write(&bytes) {
            Ok(n) if n == bytes.len() => Ok(()),
            outcome => {
                // A short write leaves a torn record that later ones would
                // follow: give up on the segment; the reader skips the
                // damage once nobody writes to it any more.
                let _ = self.rotate_from(&segment);
                Err(match outcome {
                    Ok(n) => io::Error::other(format!("wrote {n} of {} bytes (disk full?)", bytes.len())),
                    Err(e) => e,
                })
            }
        }
    }

    /// Notes that the journal changed; returns whether the reader must be
    /// told (it was not already about to read).
    pub(crate) fn mark_written(&self) -> bool {
        !self.written.swap(true, Ordering::SeqCst)
    }

    /// Replaces `old` with a fresh segment, unless that already happened.
    fn rotate_from(&self, old: &Arc<Segment>) -> io::Result<()> {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if Arc::ptr_eq(&current, old) {
            *current = Segment::create(&self.dir)?;
        }
        Ok(())
    }

    /// Flushes the current segment to disk (for power loss; a process kill
    /// loses nothing written anyway).
    pub(crate) fn sync(&self) -> io::Result<()> {
        self.current().file.sync_data()
    }
}

/// The reading side, on the database thread: the segments of this process
/// not yet fully moved into the queue table, oldest first.
pub(crate) struct Reader {
    journal: Arc<Journal>,
    tails: Vec<Tail>,
}

struct Tail {
    segment: Arc<Segment>,
    offset: u64,
}

impl Reader {
    pub(crate) fn new(journal: Arc<Journal>) -> Self {
        Self { tails: vec![Tail { segment: journal.current(), offset: 0 }], journal }
    }

    /// Whether anything may be waiting to be moved.
    pub(crate) fn pending(&self) -> bool {
        self.tails.len() > 1 || self.journal.written.load(Ordering::SeqCst)
    }

    /// Moves every complete record of this process's segments into the
    /// queue table (up to [`MAX_READ`] bytes of each), in one transaction;
    /// returns how many. What is left, or what failed to move, stays
    /// pending.
    pub(crate) fn drain(&mut self, conn: &mut Connection) -> Result<usize, PortError> {
        self.journal.written.store(false, Ordering::SeqCst);
        let moved = self.drain_once(conn);
        if !matches!(moved, Ok((_, false))) {
            self.journal.written.store(true, Ordering::SeqCst);
        }
        moved.map(|(n, _)| n)
    }

    /// Returns how many records moved and whether more are waiting.
    fn drain_once(&mut self, conn: &mut Connection) -> Result<(usize, bool), PortError> {
        let current = self.journal.current();
        if !Arc::ptr_eq(&current, &self.tails.last().expect("a current segment").segment) {
            self.tails.push(Tail { segment: current, offset: 0 });
        }
        let last = self.tails.len() - 1;
        let mut reads = Vec::with_capacity(self.tails.len());
        for (i, tail) in self.tails.iter().enumerate() {
            // A replaced segment nobody holds any more gets no more writes.
            let finished = i < last && Arc::strong_count(&tail.segment) == 1;
            let read =
                read_from(&tail.segment.file, tail.offset, finished).map_err(|e| io_error(&tail.segment.path, e))?;
            report_skipped(&tail.segment.path, read.skipped);
            reads.push((finished, read));
        }
        let moved = reads.iter().map(|(_, r)| r.records.len()).sum();
        let more = reads.iter().any(|(_, r)| r.more);
        if self.tails.iter().zip(&reads).any(|(tail, (_, read))| read.end != tail.offset) {
            let tx = conn.transaction().map_err(db_error)?;
            for (tail, (_, read)) in self.tails.iter().zip(&reads) {
                insert(&tx, &read.records)?;
                save_offset(&tx, &tail.segment.name, read.end)?;
            }
            tx.commit().map_err(db_error)?;
        }
        let mut kept = Vec::with_capacity(self.tails.len());
        for (mut tail, (finished, read)) in std::mem::take(&mut self.tails).into_iter().zip(reads) {
            tail.offset = read.end;
            if finished && !read.more {
                retire(conn, &tail.segment.path, &tail.segment.name);
            } else {
                kept.push(tail);
            }
        }
        self.tails = kept;
        let current = self.tails.last().expect("the current segment is never retired");
        if self.tails.len() == 1 && !more && current.offset >= ROTATE_BYTES {
            self.journal.rotate_from(&current.segment).map_err(|e| io_error(&self.journal.dir, e))?;
        }
        Ok((moved, more))
    }

    /// Adopts the segments of processes that have died.
    pub(crate) fn adopt_orphans(&self, conn: &mut Connection) -> Result<usize, PortError> {
        let own: Vec<&str> = self.tails.iter().map(|t| t.segment.name.as_str()).collect();
        adopt_orphans(conn, &self.journal.dir, &own)
    }
}

/// Moves the records of every segment in `dir` whose writer has died (its
/// lock is free) into the queue table, then deletes the segment.
pub(crate) fn adopt_orphans(conn: &mut Connection, dir: &Path, own: &[&str]) -> Result<usize, PortError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_error(dir, e)),
    };
    let mut moved = 0;
    for entry in entries {
        let entry = entry.map_err(|e| io_error(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".log") || own.contains(&name.as_str()) {
            continue;
        }
        moved += adopt(conn, &entry.path(), &name)?;
    }
    // Progress of segments that are gone is of no further use.
    let names: Vec<String> = {
        let mut stmt = conn.prepare_cached("SELECT name FROM journal_offsets").map_err(db_error)?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(db_error)?;
        rows.collect::<Result<_, _>>().map_err(db_error)?
    };
    for name in names.iter().filter(|n| !dir.join(n).exists()) {
        conn.execute("DELETE FROM journal_offsets WHERE name = ?1", [name]).map_err(db_error)?;
    }
    Ok(moved)
}

fn adopt(conn: &mut Connection, path: &Path, name: &str) -> Result<usize, PortError> {
    let file = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => f,
        // Adopted by someone else meanwhile.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_error(path, e)),
    };
    if file.try_lock().is_err() {
        // Its process is alive and writing it.
        return Ok(0);
    }
    // Locked, but possibly after another process adopted and deleted it.
    let linked = std::fs::metadata(path).is_ok_and(|m| file.metadata().is_ok_and(|f| f.ino() == m.ino()));
    if !linked {
        return Ok(0);
    }
    let mut moved = 0;
    loop {
        let tx = conn.transaction().map_err(db_error)?;
        let offset: u64 = tx
            .query_row("SELECT offset FROM journal_offsets WHERE name = ?1", [name], |r| r.get::<_, i64>(0))
            .optional()
            .map_err(db_error)?
            .unwrap_or(0) as u64;
        let read = read_from(&file, offset, true).map_err(|e| io_error(path, e))?;
        report_skipped(path, read.skipped);
        insert(&tx, &read.records)?;
        save_offset(&tx, name, read.end)?;
        tx.commit().map_err(db_error)?;
        moved += read.records.len();
        if !read.more {
            break;
        }
    }
    if moved > 0 {
        tracing::info!(segment = %path.display(), messages = moved, "recovered queued messages of a stopped process");
    }
    retire(conn, path, name);
    Ok(moved)
}

/// Deletes a fully read segment, then its progress row (a crash in between
/// leaves a row that `adopt_orphans` clears).
fn retire(conn: &Connection, path: &Path, name: &str) {
    if let Err(e) = std::fs::remove_file(path) {
        tracing::warn!(segment = %path.display(), error = %e, "could not delete a fully read journal segment");
        return;
    }
    if let Err(e) = conn.execute("DELETE FROM journal_offsets WHERE name = ?1", [name]) {
        tracing::warn!(error = %e, "could not forget a deleted journal segment");
    }
}

/// Reads the records from `offset` on, at most [`MAX_READ`] bytes; damage
/// is judged only where the read reaches the end of a finished segment.
fn read_from(file: &File, offset: u64, finished: bool) -> io::Result<Read> {
    let len = file.metadata()?.len();
    if len <= offset {
        return Ok(Read { records: Vec::new(), end: offset, skipped: 0, more: false });
    }
    let size = (len - offset).min(MAX_READ);
    let mut bytes = vec![0; size as usize];
    file.read_exact_at(&mut bytes, offset)?;
    let more = offset + size < len;
    let mut read = parse(&bytes, offset, finished && !more);
    read.more = more;
    Ok(read)
}

fn insert(tx: &rusqlite::Transaction, records: &[Record]) -> Result<(), PortError> {
    let mut stmt = tx
        .prepare_cached("INSERT INTO queue (stage, body, visible_ms, sent_ms) VALUES (?1, ?2, ?3, ?4)")
        .map_err(db_error)?;
    for r in records {
        stmt.execute(params![r.stage, r.body, r.visible_ms, r.sent_ms]).map_err(db_error)?;
    }
    Ok(())
}

fn save_offset(tx: &rusqlite::Transaction, name: &str, offset: u64) -> Result<(), PortError> {
    tx.prepare_cached(
        "INSERT INTO journal_offsets (name, offset) VALUES (?1, ?2)
         ON CONFLICT(name) DO UPDATE SET offset = excluded.offset",
    )
    .and_then(|mut stmt| stmt.execute(params![name, offset as i64]))
    .map(drop)
    .map_err(db_error)
}

fn report_skipped(path: &Path, skipped: u64) {
    if skipped > 0 {
        tracing::error!(segment = %path.display(), bytes = skipped, "skipped damaged bytes in the queue journal");
    }
}

fn io_error(path: &Path, e: io::Error) -> PortError {
    PortError::unavailable("the queue journal", format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: usize) -> Record {
        Record { stage: "inbound".into(), body: format!("{{\"n\":{n}}}"), visible_ms: n as i64, sent_ms: 7 }
    }

    /// An empty database with our tables.
    fn database() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        super::super::db::create_schema(&conn).unwrap();
        conn
    }

    /// The first column of every row `sql` selects.
    fn column<T: rusqlite::types::FromSql>(conn: &Connection, sql: &str) -> Vec<T> {
        let mut stmt = conn.prepare(sql).unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
    }

    fn bytes(records: &[Record]) -> Vec<u8> {
        records.iter().flat_map(Record::encode).collect()
    }

    #[test]
    fn records_read_back_as_written() {
        let records: Vec<Record> = (0..5).map(record).collect();
        let all = bytes(&records);
        let read = parse(&all, 100, false);
        assert_eq!(read.records, records);
        assert_eq!(read.end, 100 + all.len() as u64);
        assert_eq!(read.skipped, 0);
    }

    #[test]
    fn an_incomplete_record_waits_while_the_segment_is_written() {
        let mut all = bytes(&[record(1), record(2)]);
        let whole = all.len();
        all.extend_from_slice(&record(3).encode()[..10]);
        let read = parse(&all, 0, false);
        assert_eq!(read.records.len(), 2);
        assert_eq!(read.end, whole as u64, "the partial record is read again later");
        let finished = parse(&all, 0, true);
        assert_eq!(finished.records.len(), 2);
        assert_eq!(finished.skipped, 10, "a torn last record of a dead writer is dropped");
    }

    #[test]
    fn damage_in_a_finished_segment_is_skipped_to_the_next_record() {
        let mut all = record(1).encode();
        let torn = record(2).encode();
        all.extend_from_slice(&torn[..torn.len() - 3]);
        all.extend_from_slice(&bytes(&[record(3), record(4)]));
        let read = parse(&all, 0, true);
        assert_eq!(read.records, vec![record(1), record(3), record(4)]);
        assert_eq!(read.skipped, torn.len() as u64 - 3);
        let live = parse(&all, 0, false);
        assert_eq!(live.records, vec![record(1)], "a live segment stops at the damage");
    }

    #[test]
    fn a_flipped_bit_is_caught() {
        let mut all = record(1).encode();
        let last = all.len() - 1;
        all[last] ^= 1;
        assert!(parse(&all, 0, false).records.is_empty());
    }

    #[test]
    fn an_oversized_message_is_refused_not_written() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::create(dir.path()).unwrap();
        let big = Record { body: "x".repeat(MAX_PAYLOAD + 1), ..record(1) };
        let err = journal.append(&big).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(journal.current().file.metadata().unwrap().len(), 0);
    }

    #[test]
    fn a_backlog_larger_than_one_read_is_moved_in_steps_without_loss() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = database();
        let dead = Journal::create(dir.path()).unwrap();
        // Three records of 7 MiB: the first read of 16 MiB ends inside the third.
        for n in 0..3 {
            dead.append(&Record { body: n.to_string().repeat(7 * 1024 * 1024), ..record(n) }).unwrap();
        }
        drop(dead);
        assert_eq!(adopt_orphans(&mut conn, dir.path(), &[]).unwrap(), 3);
        let lengths: Vec<i64> = column(&conn, "SELECT length(body) FROM queue ORDER BY id");
        assert_eq!(lengths, vec![7 * 1024 * 1024; 3]);
    }

    #[test]
    fn a_locked_segment_is_left_to_its_writer_and_a_free_one_adopted() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = database();
        let live = Journal::create(dir.path()).unwrap();
        live.append(&record(1)).unwrap();
        let dead = Journal::create(dir.path()).unwrap();
        dead.append(&record(2)).unwrap();
        dead.append(&record(3)).unwrap();
        drop(dead);
        assert_eq!(adopt_orphans(&mut conn, dir.path(), &[]).unwrap(), 2);
        let bodies: Vec<String> = column(&conn, "SELECT body FROM queue ORDER BY id");
        assert_eq!(bodies, vec![record(2).body, record(3).body]);
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "the adopted segment is deleted, the live one kept");
        assert_eq!(adopt_orphans(&mut conn, dir.path(), &[]).unwrap(), 0, "nothing is adopted twice");
    }
}
