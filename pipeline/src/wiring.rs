//! The composition root: settings in, a pipeline of adapters out. The only
//! place that decides which adapter backs which port.

use std::path::Path;
use std::sync::Arc;

use crate::adapters::local::{
    Db, EspeakNarrator, FsBlobStore, MediaSigner, OutboxNotifier, SqliteJobStore, SqlitePreferences, SqliteQueue,
    TesseractReader,
};
use crate::domain::PortError;
use crate::ports::{Narrator, TextReader};
use crate::settings::Settings;
use crate::stages::{Pipeline, PipelineConfig};

/// A wired pipeline, plus the local blob store when the front end must
/// serve `/media/...` itself.
pub struct Wired {
    pub pipeline: Arc<Pipeline>,
    pub media: Option<Arc<FsBlobStore>>,
}

/// Creates what the configured backend needs (idempotent) and wires the
/// pipeline.
pub fn build(settings: &Settings) -> Result<Wired, PortError> {
    let data = &settings.data_dir;
    let setup = |what: &str, e: std::io::Error| PortError::rejected(what, format!("{}: {e}", data.display()));
    std::fs::create_dir_all(data).map_err(|e| setup("the data directory", e))?;
    let secret = media_secret(settings)?;
    let db = Db::open(&settings.database_path())?;
    let blobs = Arc::new(FsBlobStore::new(data.join("blobs"), MediaSigner::new(secret, &settings.public_url())));
    let pipeline = Pipeline {
        blobs: blobs.clone(),
        queue: Arc::new(SqliteQueue::new(db.clone())),
        jobs: Arc::new(SqliteJobStore::new(db.clone())),
        prefs: Arc::new(SqlitePreferences::new(db)),
        reader: text_reader(settings),
        narrator: narrator(settings),
        notifier: Arc::new(OutboxNotifier::new(
            data.join("outbox"),
            settings.email_from.clone(),
            settings.email_to.clone(),
        )),
        config: config(settings),
        front_end: Default::default(),
    };
    Ok(Wired { pipeline: Arc::new(pipeline), media: Some(blobs) })
}

/// The configured text reader.
pub fn text_reader(settings: &Settings) -> Arc<dyn TextReader> {
    Arc::new(TesseractReader::new(&settings.tesseract))
}

/// The configured narrator.
pub fn narrator(settings: &Settings) -> Arc<dyn Narrator> {
    Arc::new(EspeakNarrator::new(&settings.espeak))
}

pub fn config(settings: &Settings) -> PipelineConfig {
    PipelineConfig {
        limits: settings.limits,
        max_pages: settings.max_pages,
        max_text_chars: settings.max_text_chars,
        link_ttl: settings.link_ttl,
        stall_after: settings.workers.stall_after,
        default_voice: settings.default_voice.clone(),
    }
}

/// The media-link key: from `STORYTIME_MEDIA_SECRET`, or a random one made
/// on first start and kept (readable by the owner only) in the data dir, so
/// links stay valid across restarts.
fn media_secret(settings: &Settings) -> Result<Vec<u8>, PortError> {
    if let Some(s) = &settings.media_secret {
        return Ok(s.expose().as_bytes().to_vec());
    }
    let path = settings.data_dir.join("media.key");
    read_or_create_secret(&path)
}

fn read_or_create_secret(path: &Path) -> Result<Vec<u8>, PortError> {
    let fail = |e: std::io::Error| PortError::rejected("the media key", format!("{}: {e}", path.display()));
    match std::fs::read_to_string(path) {
        Ok(hex_key) => hex::decode(hex_key.trim()).map_err(|e| PortError::rejected("the media key", e)),
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
            read_or_create_secret(path)
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
    fn the_media_key_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("media.key");
        let a = read_or_create_secret(&path).unwrap();
        let b = read_or_create_secret(&path).unwrap();
        assert_eq!(a.len(), 32);
        assert_eq!(a, b);
    }
}
