//! Segment files: each process appends to its own (several at once, one
//! per writing thread), each under an exclusive lock that tells other
//! processes it is alive, and starts a fresh one once a current one is
//! large and fully read (or a write to it failed).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

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
///
/// Appends go to one of several segments ("shards"), each written by one
/// thread at a time. With a single file shared by every thread, each
/// `write(2)` takes the file's position lock and the inode's lock in the
/// kernel: a writer preempted while holding them (two cores, a load
/// generator, the HTTP workers and the pipeline all running) made every
/// other writer sleep for a scheduler slice, stalling Slack
/// acknowledgements (docs/benchmarks.md).
pub(crate) struct Journal {
    pub(super) dir: PathBuf,
    shards: Vec<Mutex<Arc<Segment>>>,
    /// Set by a sender after its write; cleared by the reader before it
    /// reads. Lets the reader skip reading when nothing was written.
    pub(super) written: AtomicBool,
}

/// Segments written at once: enough that each worker thread has its own.
fn shard_count() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(2, 16) * 2
}

impl Journal {
    pub(crate) fn create(dir: &Path) -> io::Result<Self> {
        Self::with_shards(dir, shard_count())
    }

    pub(super) fn with_shards(dir: &Path, shards: usize) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let shards = (0..shards.max(1)).map(|_| Segment::create(dir).map(Mutex::new)).collect::<io::Result<_>>()?;
        Ok(Self { dir: dir.to_owned(), shards, written: AtomicBool::new(false) })
    }

    /// How many segments are written at once.
    pub(super) fn shards(&self) -> usize {
        self.shards.len()
    }

    /// The segments being written now.
    pub(super) fn current(&self) -> Vec<Arc<Segment>> {
        self.shards.iter().map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).clone()).collect()
    }

    /// A shard for this thread to write to: its own if free, else the
    /// first free one, else its own once free.
    fn shard(&self) -> MutexGuard<'_, Arc<Segment>> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        thread_local!(static HOME: usize = NEXT.fetch_add(1, Ordering::Relaxed));
        let home = HOME.with(|h| *h) % self.shards.len();
        let n = self.shards.len();
        for i in 0..n {
            match self.shards[(home + i) % n].try_lock() {
                Ok(guard) => return guard,
                Err(TryLockError::Poisoned(p)) => return p.into_inner(),
                Err(TryLockError::WouldBlock) => {}
            }
        }
        self.shards[home].lock().unwrap_or_else(|p| p.into_inner())
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
        let mut segment = self.shard();
        match (&segment.file).write(&bytes) {
            Ok(n) if n == bytes.len() => Ok(()),
            outcome => {
                // A short write leaves a torn record that later ones would
                // follow: give up on the segment; the reader skips the
                // damage once nobody writes to it any more.
                if let Ok(fresh) = Segment::create(&self.dir) {
                    *segment = fresh;
                }
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
        for shard in &self.shards {
            let mut current = shard.lock().unwrap_or_else(|p| p.into_inner());
            if Arc::ptr_eq(&current, old) {
                *current = Segment::create(&self.dir)?;
            }
        }
        Ok(())
    }

    /// Flushes the current segments to disk (for power loss; a process kill
    /// loses nothing written anyway).
    pub(crate) fn sync(&self) -> io::Result<()> {
        self.current().iter().try_for_each(|s| s.file.sync_data())
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
        assert!(journal.current().iter().all(|s| s.file.metadata().unwrap().len() == 0));
    }
}
