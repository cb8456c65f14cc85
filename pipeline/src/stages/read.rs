//! The read stage: decode a page, decide which way is up from its content,
//! read its text at the resolution the reader needs, and put the text in
//! reading order.

use std::sync::Arc;

use bytes::Bytes;

use super::Pipeline;
use crate::domain::page_text::{Fragment, PageText, assemble};
use crate::domain::{
    BlobKey, ContentId, ErrorKind, Failure, JobId, JobStatus, Language, PageReading, Snapshot, StageError, StageMessage,
};
use crate::image::{DecodedImage, ImageLimits, PreparedImage, Rotation, decode, prepare, rotate};
use crate::ports::Progress;
use crate::ports::{PageLayout, Reusable, Script, TextReader};

/// Orientation confidence (Tesseract's OSD scale) above which the detected
/// rotation is applied. Upright print scores well above 5; a page the
/// detector cannot make sense of scores below 1.
const MIN_LAYOUT_CONFIDENCE: f32 = 1.5;

/// Mean word confidence from which a reading of a page turned one way is
/// taken as it is. Upright print reads at 90 or more; the same page upside
/// down reads at 30 to 40.
const CONFIDENT_READING: f32 = 70.0;

/// A page read, with the reader's raw answer.
pub struct PageResult {
    pub reading: PageReading,
    pub raw: String,
}

impl Pipeline {
    /// Reads page `index`, working from `snapshot` (the job as the message
    /// carried it) when there is one: a stale copy only costs a re-read of
    /// the job when the reading is stored.
    pub(super) async fn read(
        &self,
        job_id: &JobId,
        index: usize,
        snapshot: Option<Snapshot>,
    ) -> Result<(), StageError> {
        let Some(job) = self.job_for(job_id, snapshot, "read").await? else { return Ok(()) };
        let Some(page) = job.pages.get(index).cloned() else {
            tracing::warn!(job = %job_id, page = index, "read: no such page");
            return Ok(());
        };
        if job.status == JobStatus::Failed {
            return Ok(());
        }
        if page.reading.is_none() {
            let bytes = self.blobs.get(&page.original).await.map_err(|e| match e.kind() {
                ErrorKind::NotFound => {
                    StageError::Permanent(Failure::internal("the uploaded photo is missing from storage"))
                }
                _ => e.into(),
            })?;
            // Decoding takes its share of the memory budget first, held
            // until the page is read.
            let cost = crate::image::decode_cost(&bytes, page.width, page.height);
            let _memory = self.memory.reserve(cost).await;
            self.report(&job, Progress::Reading { page: index + 1, of: job.pages.len() }).await;
            let (reading, pixels) = self.read_image(bytes, job.fresh).await?;
            tracing::info!(job = %job_id, page = index, words = reading.text.split_whitespace().count(),
                rotation = reading.rotation, language = reading.language.code(), "page read");
            // The reading goes to the job and, when it is new, is remembered
            // for its pixels in the same write.
            let remember = pixels.as_ref().map(|pixels| Reusable::Page(pixels, &reading));
            let stored = self
                .update_job_from(job_id, Some(job), remember, |j| {
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
                self.send(&StageMessage::narrate_of(&job)).await?;
            }
        }
        Ok(())
    }

    /// Reads one stored photo, reusing an earlier reading of the same
    /// pixels unless the job asked for fresh work. A new reading comes with
    /// the pixel hash to remember it by.
    async fn read_image(&self, bytes: Bytes, fresh: bool) -> Result<(PageReading, Option<ContentId>), StageError> {
        let limits = self.config.limits.image;
        let decoded = decode_blocking(bytes, limits).await?;
        if !fresh && let Some(known) = self.jobs.page_reading(&decoded.pixel_hash).await? {
            tracing::info!(pixels = %decoded.pixel_hash, "reusing an earlier reading of the same page");
            return Ok((known, None));
        }
        let pixels = decoded.pixel_hash.clone();
        let PageResult { mut reading, raw } = read_page(self.reader.as_ref(), decoded).await?;
        let raw_key = BlobKey::reading(&pixels);
        self.blobs.put(&raw_key, Bytes::from(raw)).await?;
        reading.raw = Some(raw_key);
        Ok((reading, Some(pixels)))
    }
}

/// Decodes on the blocking pool; a photo that does not decode is a
/// permanent failure with a reason the user can act on.
pub(crate) async fn decode_blocking(bytes: Bytes, limits: ImageLimits) -> Result<DecodedImage, StageError> {
    tokio::task::spawn_blocking(move || decode(&bytes, &limits))
        .await
        .map_err(|e| StageError::retry("decoding", format!("it stopped: {e}")))?
        .map_err(|rejection| StageError::Permanent(rejection.to_failure()))
}

/// Reads a decoded page with a reader: prepare it at the reader's
/// resolution, turn it upright as its content says, read, and assemble the
/// text in reading order. Shared by the read stage and `storytime narrate`.
///
/// Most pages arrive upright, or upside down when the camera's orientation
/// tag is wrong, so the page is read as it is and, failing that, turned
/// round; a confident reading ends there. Only a page that reads poorly
/// both ways (sideways, another script, little text) costs a run of the
/// orientation and script detector, which takes longer than a reading.
pub async fn read_page(reader: &dyn TextReader, decoded: DecodedImage) -> Result<PageResult, StageError> {
    let needs = reader.needs();
    let exif_rotation = decoded.exif_rotation;
    let prepared = Arc::new(blocking(move || prepare(&decoded.gray, &needs)).await?);

    let mut best = read_turned(reader, &prepared, Script::Latin, Rotation::None).await?;
    if !best.confident() {
        let round = read_turned(reader, &prepared, Script::Latin, Rotation::Cw180).await?;
        if round.score() > best.score() {
            best = round;
        }
    }
    if !best.confident()
        && let Some(PageLayout { rotation, script, confidence }) = reader.detect_layout(&prepared).await?
    {
        let sure = confidence >= MIN_LAYOUT_CONFIDENCE;
        if script != Script::Latin {
            // Another script: read with its model, turned as the detector
            // says if it is sure of that, else as the best reading lay.
            let rotation = if sure { rotation } else { best.rotation };
            best = read_turned(reader, &prepared, script, rotation).await?;
        } else if sure && matches!(rotation, Rotation::Cw90 | Rotation::Cw270) {
            best = read_turned(reader, &prepared, script, rotation).await?;
        }
    }

    let Attempt { text, raw, rotation, script, .. } = best;
    let language = if text.text.is_empty() { script_language(script) } else { Language::detect(&text.text) };
    let reading = PageReading {
        text: text.text,
        language,
        rotation: (exif_rotation + rotation.degrees()) % 360,
        confidence: text.confidence,
        raw: None,
    };
    Ok(PageResult { reading, raw })
}

/// One reading of a page turned one way.
struct Attempt {
    text: PageText,
    raw: String,
    rotation: Rotation,
    script: Script,
    /// Most words are taller than wide: the reader found the lines running
    /// up or down the page, and its reading order cannot be trusted.
    sideways: bool,
}

impl Attempt {
    fn confident(&self) -> bool {
        self.text.words > 0 && self.text.confidence >= CONFIDENT_READING && !self.sideways
    }

    fn score(&self) -> f32 {
        self.text.words as f32 * self.text.confidence
    }
}

async fn read_turned(
    reader: &dyn TextReader,
    page: &Arc<PreparedImage>,
    script: Script,
    rotation: Rotation,
) -> Result<Attempt, StageError> {
    let turned = if rotation == Rotation::None {
        page.clone()
    } else {
        let page = page.clone();
        Arc::new(blocking(move || PreparedImage { gray: rotate(&page.gray, rotation), ..*page }).await?)
    };
    let reading = reader.read(&turned, script).await?;
    let sideways = is_sideways(&reading.fragments);
    let raw = serde_json::json!({
        "engine": reader.engine(),
        "rotation": rotation.degrees(),
        "scale": turned.scale,
        "fragments": reading.fragments,
        "output": reading.raw,
    })
    .to_string();
    Ok(Attempt { text: assemble(reading.fragments), raw, rotation, script, sideways })
}

/// Whether most words of three letters or more stand taller than wide.
fn is_sideways(fragments: &[Fragment]) -> bool {
    let (tall, counted) = fragments
        .iter()
        .flat_map(|f| &f.words)
        .filter(|w| w.text.chars().count() >= 3)
        .fold((0, 0), |(tall, n), w| (tall + usize::from(w.bbox.height > w.bbox.width), n + 1));
    counted > 0 && tall * 2 > counted
}

fn script_language(script: Script) -> Language {
    match script {
        Script::Latin => Language::English,
        Script::Hangul => Language::Korean,
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, StageError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| StageError::retry("image work", format!("it stopped: {e}")))
}

#[cfg(test)]
mod tests {
    //! The order of attempts, with a stand-in for the reading engine that
    //! tells which way the page it is shown lies from a mark in its top
    //! left corner, and answers the way Tesseract does.

    use std::sync::Mutex;

    use async_trait::async_trait;
    use image::{GrayImage, Luma};

    use super::*;
    use crate::domain::page_text::{Rect, Word};
    use crate::domain::{ContentId, PortError};
    use crate::image::ReaderNeeds;
    use crate::ports::Reading;

    /// A reader that tells how the page it is shown lies from a dark mark.
    struct OrientationReader {
        korean: bool,
        layout: Option<PageLayout>,
        reads: Mutex<Vec<Script>>,
        detections: Mutex<usize>,
    }

    impl OrientationReader {
        fn new(korean: bool, layout: Option<PageLayout>) -> Self {
            Self { korean, layout, reads: Mutex::default(), detections: Mutex::default() }
        }
    }

    /// How the page shown lies: wide with the mark top left is upright.
    #[derive(PartialEq)]
    enum Seen {
        Upright,
        UpsideDown,
        Sideways,
    }

    fn seen(page: &PreparedImage) -> Seen {
        let (w, h) = page.gray.dimensions();
        let (x, y, _) = page.gray.enumerate_pixels().min_by_key(|(_, _, p)| p.0[0]).expect("pixels");
        match (w > h, x < w / 2 && y < h / 2) {
            (true, true) => Seen::Upright,
            (true, false) => Seen::UpsideDown,
            (false, _) => Seen::Sideways,
        }
    }

    fn words(text: &str, confidence: f32, tall: bool) -> Reading {
        let words = text
            .split(' ')
            .enumerate()
            .map(|(i, w)| {
                let (long, short) = (12 * w.chars().count() as i32, 14);
                let bbox = if tall {
                    Rect { left: 20, top: 40 * i as i32, width: short, height: long }
                } else {
                    Rect { left: 60 * i as i32, top: 20, width: long, height: short }
                };
                Word { text: w.to_owned(), confidence, bbox }
            })
            .collect();
        Reading { fragments: vec![Fragment { words, block: 1, paragraph: 1 }], raw: String::new() }
    }

    #[async_trait]
    impl TextReader for OrientationReader {
        fn engine(&self) -> &'static str {
            "stand-in"
        }

        fn needs(&self) -> ReaderNeeds {
            ReaderNeeds { text_height: 22.0, max_side: 8000 }
        }

        async fn detect_layout(&self, _: &PreparedImage) -> Result<Option<PageLayout>, PortError> {
            *self.detections.lock().unwrap() += 1;
            Ok(self.layout)
        }

        async fn read(&self, page: &PreparedImage, script: Script) -> Result<Reading, PortError> {
            self.reads.lock().unwrap().push(script);
            let seen = seen(page);
            Ok(match (self.korean, script, seen) {
                (true, Script::Hangul, Seen::Upright) => words("옛날 옛적에 호랑이가 살았어요", 90.0, false),
                (true, _, _) => words("O] 2! #| ~~", 30.0, false),
                (false, _, Seen::Upright) => words("Once upon a time there was a little red hen", 95.0, false),
                // Tesseract reads lines running down the page too, in no useful order.
                (false, _, Seen::Sideways) => words("hen red little a was there time a upon Once", 95.0, true),
                (false, _, Seen::UpsideDown) => words("auo uodn e ewy", 32.0, false),
            })
        }
    }

    /// A wide page with the mark top left, turned clockwise.
    fn page(turned: Rotation) -> DecodedImage {
        let mut gray = GrayImage::from_pixel(200, 100, Luma([255]));
        for x in 5..15 {
            for y in 5..15 {
                gray.put_pixel(x, y, Luma([0]));
            }
        }
        DecodedImage { gray: rotate(&gray, turned), exif_rotation: 0, pixel_hash: ContentId::of(b"page") }
    }

    #[tokio::test]
    async fn an_upright_page_is_read_once_without_the_detector() {
        let engine = OrientationReader::new(false, None);
        let result = read_page(&engine, page(Rotation::None)).await.unwrap();
        assert_eq!(result.reading.text, "Once upon a time there was a little red hen");
        assert_eq!(result.reading.rotation, 0);
        assert_eq!(*engine.reads.lock().unwrap(), [Script::Latin]);
        assert_eq!(*engine.detections.lock().unwrap(), 0);
    }

    #[tokio::test]
    async fn an_upside_down_page_is_read_turned_round_without_the_detector() {
        let engine = OrientationReader::new(false, None);
        let result = read_page(&engine, page(Rotation::Cw180)).await.unwrap();
        assert_eq!(result.reading.text, "Once upon a time there was a little red hen");
        assert_eq!(result.reading.rotation, 180);
        assert_eq!(engine.reads.lock().unwrap().len(), 2);
        assert_eq!(*engine.detections.lock().unwrap(), 0);
    }

    #[tokio::test]
    async fn a_sideways_page_is_turned_as_the_detector_says() {
        let layout = PageLayout { rotation: Rotation::Cw270, script: Script::Latin, confidence: 6.0 };
        let engine = OrientationReader::new(false, Some(layout));
        let result = read_page(&engine, page(Rotation::Cw90)).await.unwrap();
        assert_eq!(result.reading.text, "Once upon a time there was a little red hen");
        assert_eq!(result.reading.rotation, 270);
        assert_eq!(*engine.detections.lock().unwrap(), 1);
    }

    #[tokio::test]
    async fn a_page_in_another_script_is_read_with_its_language() {
        let layout = PageLayout { rotation: Rotation::None, script: Script::Hangul, confidence: 4.0 };
        let engine = OrientationReader::new(true, Some(layout));
        let result = read_page(&engine, page(Rotation::None)).await.unwrap();
        assert_eq!(result.reading.text, "옛날 옛적에 호랑이가 살았어요");
        assert_eq!(result.reading.language, Language::Korean);
        assert_eq!(*engine.reads.lock().unwrap(), [Script::Latin, Script::Latin, Script::Hangul]);
    }

    #[tokio::test]
    async fn an_unsure_detector_leaves_the_better_of_the_two_readings() {
        let layout = PageLayout { rotation: Rotation::Cw90, script: Script::Latin, confidence: 0.5 };
        let engine = OrientationReader::new(true, Some(layout));
        let result = read_page(&engine, page(Rotation::None)).await.unwrap();
        assert_eq!(result.reading.rotation, 0);
        assert_eq!(*engine.reads.lock().unwrap(), [Script::Latin, Script::Latin]);
        assert_eq!(*engine.detections.lock().unwrap(), 1);
    }

    #[tokio::test]
    async fn another_script_is_read_with_its_model_even_when_the_turn_is_unsure() {
        let layout = PageLayout { rotation: Rotation::Cw90, script: Script::Hangul, confidence: 0.5 };
        let engine = OrientationReader::new(true, Some(layout));
        let result = read_page(&engine, page(Rotation::None)).await.unwrap();
        assert_eq!(result.reading.text, "옛날 옛적에 호랑이가 살았어요");
        assert_eq!(result.reading.rotation, 0);
        assert_eq!(result.reading.language, Language::Korean);
    }
}
