//! Segment files: each process appends to its own, under an exclusive
//! lock that tells other processes it is alive, and starts a fresh one once
//! the current one is large and fully read (or a write to it failed).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::record::{HEADER, MAX_PAYLOAD, Record};

/// A segment file this process writes.
pub(crate) struct Segment {
    pub(super) name: String,
    pub(super) path: PathBuf,
    pub(super) file: File,
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
    pub(super) dir: PathBuf,
    current: Mutex<Arc<Segment>>,
    /// Set by a sender after its write; cleared by the reader before it
    /// reads. Lets the reader skip reading when nothing was written.
    pub(super) written: AtomicBool,
}

impl Journal {
    pub(crate) fn create(dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self { dir: dir.to_owned(), current: Mutex::new(Segment::create(dir)?), written: AtomicBool::new(false) })
    }

    pub(super) fn current(&self) -> Arc<Segment> {
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
    pub(super) fn rotate_from(&self, old: &Arc<Segment>) -> io::Result<()> {
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

#[cfg(test)]
mod tests {
    use super::super::tests::record;
    use super::*;

    #[test]
    fn an_oversized_message_is_refused_not_written() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::create(dir.path()).unwrap();
        let big = Record { body: "x".repeat(MAX_PAYLOAD + 1), ..record(1) };
        let err = journal.append(&big).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(journal.current().file.metadata().unwrap().len(), 0);
    }
}
