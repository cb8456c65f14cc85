//! Draining: the database thread moves records from this process's
//! segments into the queue table, storing in the same transaction how far
//! it has read; segments of a process that died are adopted, read to the
//! end, then deleted.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use rusqlite::{Connection, OptionalExtension, params};

use super::record::{MAX_PAYLOAD, Read, Record, parse};
use super::segment::{Journal, Segment};
use crate::adapters::local::database::db_error;
use crate::domain::PortError;

/// Most bytes of a segment read in one move (a backlog is moved in steps).
const MAX_READ: u64 = 2 * MAX_PAYLOAD as u64;
/// A segment this large, once fully read, is replaced by a fresh one.
const ROTATE_BYTES: u64 = 64 * 1024 * 1024;

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
        let tails = journal.current().into_iter().map(|segment| Tail { segment, offset: 0 }).collect();
        Self { tails, journal }
    }

    /// Whether anything may be waiting to be moved.
    pub(crate) fn pending(&self) -> bool {
        self.tails.len() > self.journal.shards() || self.journal.written.load(Ordering::SeqCst)
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
        let is_current = |s: &Arc<Segment>| current.iter().any(|c| Arc::ptr_eq(c, s));
        for segment in &current {
            if !self.tails.iter().any(|t| Arc::ptr_eq(&t.segment, segment)) {
                self.tails.push(Tail { segment: segment.clone(), offset: 0 });
            }
        }
        let mut reads = Vec::with_capacity(self.tails.len());
        for tail in &self.tails {
            // A replaced segment nobody holds any more gets no more writes.
            let finished = !is_current(&tail.segment) && Arc::strong_count(&tail.segment) == 1;
            let read =
                read_from(&tail.segment.file, tail.offset, finished).map_err(|e| io_error(&tail.segment.path, e))?;
            report_skipped(&tail.segment.path, read.skipped);
            reads.push((finished, read));
        }
        let moved = reads.iter().map(|(_, r)| r.records.len()).sum();
        let more = reads.iter().any(|(_, r)| r.more);
        if self.tails.iter().zip(&reads).any(|(tail, (_, read))| read.end != tail.offset) {
            // Segments are written side by side: queue what they hold in the
            // order it was sent.
            let mut records: Vec<&Record> = reads.iter().flat_map(|(_, r)| &r.records).collect();
            records.sort_by_key(|r| r.sent_ms);
            let tx = conn.transaction().map_err(db_error)?;
            insert(&tx, records)?;
            for (tail, (_, read)) in self.tails.iter().zip(&reads) {
                save_offset(&tx, &tail.segment.name, read.end)?;
            }
            tx.commit().map_err(db_error)?;
        }
        let mut kept = Vec::with_capacity(self.tails.len());
        for (mut tail, (finished, read)) in std::mem::take(&mut self.tails).into_iter().zip(reads) {
            tail.offset = read.end;
            if finished && !read.more {
                retire(conn, &tail.segment.path, &tail.segment.name);
                continue;
            }
            if !read.more && tail.offset >= ROTATE_BYTES && is_current(&tail.segment) {
                self.journal.rotate_from(&tail.segment).map_err(|e| io_error(&self.journal.dir, e))?;
            }
            kept.push(tail);
        }
        self.tails = kept;
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

fn insert<'a>(tx: &rusqlite::Transaction, records: impl IntoIterator<Item = &'a Record>) -> Result<(), PortError> {
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
    use super::super::tests::{column, database, record};
    use super::*;

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
        assert_eq!(left.len(), live.current().len(), "the adopted segments are deleted, the live ones kept");
        assert_eq!(adopt_orphans(&mut conn, dir.path(), &[]).unwrap(), 0, "nothing is adopted twice");
    }

    #[test]
    fn appends_from_many_threads_at_once_are_each_moved_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = database();
        let journal = Arc::new(Journal::with_shards(dir.path(), 3).unwrap());
        let mut reader = Reader::new(journal.clone());
        std::thread::scope(|scope| {
            for t in 0..8 {
                let journal = &journal;
                scope.spawn(move || {
                    for n in 0..500 {
                        journal.append(&Record { sent_ms: n, ..record(t * 1000 + n as usize) }).unwrap();
                        journal.mark_written();
                    }
                });
            }
            // Moves run while the threads write.
            for _ in 0..20 {
                reader.drain(&mut conn).unwrap();
            }
        });
        while reader.pending() {
            reader.drain(&mut conn).unwrap();
        }
        let bodies: Vec<String> = column(&conn, "SELECT body FROM queue ORDER BY id");
        let mut expected: Vec<String> = (0..8).flat_map(|t| (0..500).map(move |n| record(t * 1000 + n).body)).collect();
        let mut got = bodies;
        got.sort();
        expected.sort();
        assert_eq!(got, expected, "every append moved exactly once");
    }
}
