//! The data directory: what the local adapters keep in it, created by
//! `storytime init` (or on first start) and checked by `storytime doctor`;
//! and the key that signs media links, kept there unless configured.

use std::path::{Path, PathBuf};

use async_trait::async_trait;

use super::database::Database;
use crate::domain::{ErrorKind, PortError};
use crate::settings::{BlobsBackend, NotifierBackend, PipelineSettings, Secret};
use crate::setup::{Ensured, Finding, Setup};

/// The data directory and the parts of it the settings use.
pub struct LocalStorage {
    data_dir: PathBuf,
    database: Option<PathBuf>,
    blobs: Option<PathBuf>,
    outbox: Option<PathBuf>,
}

impl LocalStorage {
    pub fn new(settings: &PipelineSettings) -> Self {
        let b = settings.backends;
        let data = &settings.data_dir;
        Self {
            data_dir: data.clone(),
            database: b.uses_sqlite().then(|| settings.database_path()),
            blobs: (b.blobs == BlobsBackend::Fs).then(|| data.join("blobs")),
            outbox: (b.notifier == NotifierBackend::Outbox).then(|| data.join("outbox")),
        }
    }

    pub fn blobs_dir(&self) -> PathBuf {
        self.data_dir.join("blobs")
    }

    pub fn outbox_dir(&self) -> PathBuf {
        self.data_dir.join("outbox")
    }

    /// Creates the data directory if it is missing, readable by its owner
    /// only (0700), and closes an existing one to others.
    pub fn create(&self) -> Result<(), PortError> {
        private_dir(&self.data_dir)
    }
}

/// A folder only its owner can enter. The files Storytime writes in it are
/// the owner's only too (`storytime serve` runs with umask 077).
fn private_dir(dir: &Path) -> Result<(), PortError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| dir_error(dir, e))?;
        let mode = std::fs::metadata(dir).map_err(|e| dir_error(dir, e))?.permissions().mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & 0o700))
                .map_err(|e| dir_error(dir, e))?;
        }
        Ok(())
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir).map_err(|e| dir_error(dir, e))
}

fn dir_error(dir: &Path, e: std::io::Error) -> PortError {
    let kind =
        if e.kind() == std::io::ErrorKind::PermissionDenied { ErrorKind::AccessDenied } else { ErrorKind::Failed };
    PortError::new(kind, "the data directory", format!("{}: {e}", dir.display())).with_source(e)
}

#[async_trait]
impl Setup for LocalStorage {
    async fn ensure(&self) -> Result<Vec<Ensured>, PortError> {
        self.create()?;
        let mut done = vec![Ensured::ready("data", self.data_dir.display().to_string())];
        if let Some(path) = &self.database {
            // Opening the database creates its tables.
            drop(Database::open(path)?);
            done.push(Ensured::ready("database", path.display().to_string()));
        }
        for (kind, dir) in [("blobs", &self.blobs), ("outbox", &self.outbox)] {
            if let Some(dir) = dir {
                private_dir(dir)?;
                done.push(Ensured::ready(kind, dir.display().to_string()));
            }
        }
        Ok(done)
    }

    async fn check(&self) -> Vec<Finding> {
        let dir = &self.data_dir;
        let probe = dir.join(".doctor-probe");
        let result = std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&probe, b"ok"))
            .and_then(|()| std::fs::remove_file(&probe));
        vec![match result {
            Ok(()) => Finding::ok("data dir", format!("{} is writable", dir.display())),
            Err(e) => Finding::missing(
                "data dir",
                format!("{}: {e}", dir.display()),
                "set STORYTIME_DATA_DIR to a writable directory",
            ),
        }]
    }
}

/// The media-link key: the configured one (`STORYTIME_MEDIA_SECRET`), or a
/// random one made on first start and kept (readable by the owner only) in
/// the data directory, so links stay valid across restarts.
/// A key shorter than this is refused: anyone could forge links.
pub const MIN_MEDIA_KEY_BYTES: usize = 32;

pub fn media_key(data_dir: &Path, configured: Option<&Secret>) -> Result<Vec<u8>, PortError> {
    let (key, source, fix) = match configured {
        Some(s) => (s.expose().as_bytes().to_vec(), "STORYTIME_MEDIA_SECRET".to_owned(), "set a longer one"),
        None => {
            let path = data_dir.join("media.key");
            let fix = "delete the file to have a new one made, which ends the links handed out so far";
            (read_or_create_key(&path)?, path.display().to_string(), fix)
        }
    };
    if key.len() < MIN_MEDIA_KEY_BYTES {
        return Err(PortError::rejected(
            "the media key",
            format!(
                "{source} holds {} bytes; a key that signs links needs at least {MIN_MEDIA_KEY_BYTES} ({fix})",
                key.len()
            ),
        ));
    }
    Ok(key)
}

fn read_or_create_key(path: &Path) -> Result<Vec<u8>, PortError> {
    let fail = |e: std::io::Error| PortError::rejected("the media key", format!("{}: {e}", path.display()));
    match std::fs::read_to_string(path) {
        Ok(hex_key) => hex::decode(hex_key.trim())
            .map_err(|e| PortError::rejected("the media key", format!("{} is not hexadecimal: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 32];
            getrandom::fill(&mut key).map_err(|e| PortError::rejected("the media key", e))?;
            let tmp = path.with_extension("tmp");
            write_private(&tmp, hex::encode(key).as_bytes()).map_err(fail)?;
            // Another process may have won the race: keep whichever landed.
            match std::fs::hard_link(&tmp, path) {
                Ok(()) | Err(_) => {
                    let _ = std::fs::remove_file(&tmp);
                }
            }
            read_or_create_key(path)
        }
        Err(e) => Err(fail(e)),
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    f.write_all(bytes)
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_or_short_media_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        for content in ["", "abcd", &"ab".repeat(16)] {
            std::fs::write(dir.path().join("media.key"), content).unwrap();
            let err = media_key(dir.path(), None).unwrap_err();
            assert!(err.to_string().contains("at least 32"), "{content:?}: {err}");
        }
        assert!(media_key(dir.path(), Some(&Secret::new("short"))).is_err());
        assert_eq!(media_key(dir.path(), Some(&Secret::new("k".repeat(32)))).unwrap().len(), 32);
    }

    #[cfg(unix)]
    #[test]
    fn the_data_directory_is_closed_to_others() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(&dir).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        private_dir(&root.path().join("new/deeper")).unwrap();
        assert_eq!(std::fs::metadata(root.path().join("new/deeper")).unwrap().permissions().mode() & 0o777, 0o700);
    }

    #[test]
    fn the_media_key_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let a = media_key(dir.path(), None).unwrap();
        let b = media_key(dir.path(), None).unwrap();
        assert_eq!(a.len(), 32);
        assert_eq!(a, b);
        let configured = "k".repeat(40);
        assert_eq!(media_key(dir.path(), Some(&Secret::new(&configured))).unwrap(), configured.as_bytes());
    }

    #[tokio::test]
    async fn init_makes_the_data_directory_and_doctor_finds_it_writable() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let settings = PipelineSettings::from_pairs(&[("STORYTIME_DATA_DIR", data.to_str().unwrap())]).unwrap();
        let storage = LocalStorage::new(&settings);
        let made = storage.ensure().await.unwrap();
        assert_eq!(made.iter().map(|e| e.kind).collect::<Vec<_>>(), ["data", "database", "blobs", "outbox"]);
        assert!(data.join("storytime.sqlite").exists() && data.join("outbox").is_dir());
        assert_eq!(storage.check().await[0].verdict, crate::setup::Verdict::Ok);
    }
}
