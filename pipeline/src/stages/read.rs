//! The read stage: decode a page, decide which way is up from its content,
//! read its text at the resolution the reader needs, and put the text in
//! reading order.

use bytes::Bytes;

use super::Pipeline;
use crate::domain::text::{PageText, assemble};
use crate::domain::{BlobKey, Failure, JobId, JobStatus, Language, PageReading, StageError, StageMessage};
use crate::image::{DecodedImage, ImageLimits, PreparedImage, Rotation, decode, prepare, rotate};
use crate::ports::{PageLayout, Script, TextReader};

/// Orientation confidence (Tesseract's OSD scale) above which the detected
/// rotation is applied. Upright print scores well above 5; a page the
/// detector cannot make sense of scores below 1.
const MIN_LAYOUT_CONFIDENCE: f32 = 1.5;

/// Below this mean word confidence a reading is poor enough to try the
/// page upside down when orientation could not be detected.
const POOR_READING: f32 = 60.0;

/// A page read, with the reader's raw answer.
pub struct PageResult {
    pub reading: PageReading,
    pub raw: String,
}

impl Pipeline {
    pub(super) async fn read(&self, job_id: &JobId, index: usize) -> Result<(), StageError> {
        let Some(job) = self.jobs.get(job_id).await? else {
            tracing::warn!(job = %job_id, "read: no such job");
            return Ok(());
        };
        let Some(page) = job.pages.get(index).cloned() else {
            tracing::warn!(job = %job_id, page = index, "read: no such page");
            return Ok(());
        };
        if job.status == JobStatus::Failed {
            return Ok(());
        }
        if page.reading.is_none() {
            if job.status == JobStatus::Queued {
                self.update_job(job_id, |j| (j.status == JobStatus::Queued).then(|| j.status = JobStatus::Reading))
                    .await?;
            }
            let bytes = self.blobs.get(&page.original).await.map_err(|e| match e {
                crate::domain::PortError::NotFound(_) => {
                    StageError::Permanent(Failure::internal("the uploaded photo is missing from storage"))
                }
                other => other.into(),
            })?;
            let reading = self.read_image(bytes, job.fresh).await?;
            tracing::info!(job = %job_id, page = index, words = reading.text.split_whitespace().count(),
                rotation = reading.rotation, language = reading.language.code(), "page read");
            let stored = self
                .update_job(job_id, |j| {
                    if j.status.is_finished() || j.pages[index].reading.is_some() {
                        return None;
                    }
                    j.pages[index].reading = Some(reading.clone());
                    if j.status == JobStatus::Queued {
                        j.status = JobStatus::Reading;
                    }
                    if j.all_pages_read() {
                        j.status = JobStatus::Narrating;
                    }
                    Some(())
                })
                .await?;
            if let Some((job, ())) = stored
                && job.status == JobStatus::Narrating
            {
                self.send(&StageMessage::Narrate { job: job.id }).await?;
            }
        }
        Ok(())
    }

    /// Reads one stored photo, reusing an earlier reading of the same
    /// pixels unless the job asked for fresh work.
    async fn read_image(&self, bytes: Bytes, fresh: bool) -> Result<PageReading, StageError> {
        let limits = self.config.limits;
        let decoded = decode_blocking(bytes, limits).await?;
        if !fresh && let Some(known) = self.jobs.page_reading(&decoded.pixel_hash).await? {
            tracing::info!(pixels = %decoded.pixel_hash, "reusing an earlier reading of the same page");
            return Ok(known);
        }
        let pixels = decoded.pixel_hash.clone();
        let PageResult { mut reading, raw } = read_page(self.reader.as_ref(), decoded).await?;
        let raw_key = BlobKey::reading(&pixels);
        self.blobs.put(&raw_key, Bytes::from(raw)).await?;
        reading.raw = Some(raw_key);
        self.jobs.put_page_reading(&pixels, &reading).await?;
        Ok(reading)
    }
}

/// Decodes on the blocking pool; a photo that does not decode is a
/// permanent failure with a reason the user can act on.
pub(crate) async fn decode_blocking(bytes: Bytes, limits: ImageLimits) -> Result<DecodedImage, StageError> {
    tokio::task::spawn_blocking(move || decode(&bytes, &limits))
        .await
        .map_err(|e| StageError::Retry(format!("decoding stopped: {e}")))?
        .map_err(|rejection| StageError::Permanent(rejection.to_failure()))
}

/// Reads a decoded page with a reader: prepare it at the reader's
/// resolution, turn it upright as its content says, read, and assemble the
/// text in reading order. Shared by the read stage and `storytime narrate`.
pub async fn read_page(reader: &dyn TextReader, decoded: DecodedImage) -> Result<PageResult, StageError> {
    let needs = reader.needs();
    let exif_rotation = decoded.exif_rotation;
    let prepared = blocking(move || prepare(&decoded.gray, &needs)).await?;
    let layout = reader.detect_layout(&prepared).await?;
    let (rotation, script, trusted) = match layout {
        Some(PageLayout { rotation, script, confidence }) if confidence >= MIN_LAYOUT_CONFIDENCE => {
            (rotation, script, true)
        }
        Some(PageLayout { script, .. }) => (Rotation::None, script, false),
        None => (Rotation::None, Script::Latin, false),
    };
    let upright = turn(prepared, rotation).await?;
    let (mut text, mut raw, mut turned) = read_once(reader, &upright, script, rotation).await?;

    // The detector could not tell, and the text reads poorly: the page may
    // be upside down. Read it turned round too and keep the better reading.
    if !trusted && text.confidence < POOR_READING {
        let flipped = turn(upright, Rotation::Cw180).await?;
        let turned_round = Rotation::from_degrees(rotation.degrees() as u32 + 180).unwrap_or(Rotation::Cw180);
        let (t2, r2, rot2) = read_once(reader, &flipped, script, turned_round).await?;
        if score(&t2) > score(&text) {
            (text, raw, turned) = (t2, r2, rot2);
        }
    }
    let language = if text.text.is_empty() { script_language(script) } else { Language::detect(&text.text) };
    let reading = PageReading {
        text: text.text,
        language,
        rotation: (exif_rotation + turned.degrees()) % 360,
        confidence: text.confidence,
        raw: None,
    };
    Ok(PageResult { reading, raw })
}

async fn read_once(
    reader: &dyn TextReader,
    page: &PreparedImage,
    script: Script,
    rotation: Rotation,
) -> Result<(PageText, String, Rotation), StageError> {
    let reading = reader.read(page, script).await?;
    let raw = serde_json::json!({
        "engine": reader.engine(),
        "rotation": rotation.degrees(),
        "scale": page.scale,
        "fragments": reading.fragments,
        "output": reading.raw,
    })
    .to_string();
    Ok((assemble(reading.fragments), raw, rotation))
}

fn score(t: &PageText) -> f32 {
    t.words as f32 * t.confidence
}

fn script_language(script: Script) -> Language {
    match script {
        Script::Latin => Language::English,
        Script::Hangul => Language::Korean,
    }
}

async fn turn(page: PreparedImage, rotation: Rotation) -> Result<PreparedImage, StageError> {
    if rotation == Rotation::None {
        return Ok(page);
    }
    blocking(move || PreparedImage { gray: rotate(&page.gray, rotation), ..page }).await
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, StageError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| StageError::Retry(format!("image work stopped: {e}")))
}
