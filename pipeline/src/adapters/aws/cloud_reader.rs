//! Text readers on AWS share one shape: the prepared page — already turned
//! upright by its EXIF tag and scaled — goes to the service as JPEG bytes,
//! so the boxes it returns match the pixels the rest of the pipeline uses;
//! the lines it finds (each with its words) are put in reading order.
//!
//! Neither Rekognition nor Textract documents Hangul, so Korean pages, and
//! the question of how a page lies, go to the local reader (Tesseract).

use std::sync::Arc;

use async_trait::async_trait;

use crate::domain::PortError;
use crate::domain::page_text::{Fragment, Rect, Word};
use crate::image::{PreparedImage, ReaderNeeds};
use crate::ports::{PageLayout, Reading, Script, TextReader};
use crate::setup::{Finding, Setup};

/// Both services take image bytes up to 5 MB.
const MAX_BYTES: usize = 5 * 1024 * 1024;

/// A line as a service reports it, with its words (empty when the service
/// did not list them).
pub(super) type Line = (Detected, Vec<Detected>);

/// A service that finds lines of text on a JPEG page.
#[async_trait]
pub(super) trait LineDetector: Send + Sync {
    fn engine(&self) -> &'static str;

    /// The lines found, and the service's answer as text to keep.
    async fn detect_lines(&self, jpeg: Vec<u8>) -> Result<(Vec<Line>, String), PortError>;
}

/// A [`TextReader`] on a cloud service, with the local reader for what the
/// service cannot do.
pub struct CloudReader<D> {
    detector: D,
    local: Arc<dyn TextReader>,
}

impl<D> CloudReader<D> {
    pub(super) fn with_detector(detector: D, local: Arc<dyn TextReader>) -> Self {
        Self { detector, local }
    }
}

/// A word or line as a service reports it: text, confidence and a box in
/// fractions of the image size.
pub(super) struct Detected {
    pub text: String,
    pub confidence: f32,
    pub left: f32,
    pub top: f32,
    pub width: f32,
    pub height: f32,
}

impl Detected {
    fn word(&self, width: u32, height: u32) -> Word {
        let (w, h) = (width as f32, height as f32);
        Word {
            text: self.text.clone(),
            confidence: self.confidence,
            bbox: Rect {
                left: (self.left * w).round() as i32,
                top: (self.top * h).round() as i32,
                width: (self.width * w).round().max(1.0) as i32,
                height: (self.height * h).round().max(1.0) as i32,
            },
        }
    }
}

/// Lines (each with its words) into fragments in reading order: rows top
/// to bottom (lines whose middles lie within half a line height of the
/// row's first line share its row), and left to right within a row.
fn fragments(mut lines: Vec<Line>, width: u32, height: u32) -> Vec<Fragment> {
    let middle = |d: &Detected| d.top + d.height / 2.0;
    lines.sort_by(|(a, _), (b, _)| middle(a).total_cmp(&middle(b)));
    let mut rows: Vec<Vec<Line>> = Vec::new();
    for line in lines {
        let joins = rows
            .last()
            .and_then(|row| row.first())
            .is_some_and(|(first, _)| middle(&line.0) - middle(first) < first.height.min(line.0.height) / 2.0);
        match rows.last_mut() {
            Some(row) if joins => row.push(line),
            _ => rows.push(vec![line]),
        }
    }
    rows.into_iter()
        .flat_map(|mut row| {
            row.sort_by(|(a, _), (b, _)| a.left.total_cmp(&b.left));
            row
        })
        .enumerate()
        .map(|(i, (line, words))| {
            let words = if words.is_empty() {
                // A line whose words were not listed: the line as one word.
                vec![line.word(width, height)]
            } else {
                words.iter().map(|w| w.word(width, height)).collect()
            };
            Fragment { words, block: 0, paragraph: i as u32 }
        })
        .collect()
}

/// The page as JPEG within the services' 5 MB limit.
fn jpeg(page: &PreparedImage) -> Result<Vec<u8>, PortError> {
    for quality in [90u8, 75, 60, 45] {
        let mut out = Vec::new();
        let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality);
        page.gray.write_with_encoder(encoder).map_err(|e| PortError::rejected("the page image", e))?;
        if out.len() <= MAX_BYTES {
            return Ok(out);
        }
    }
    Err(PortError::rejected("the page image", "larger than 5 MB even as a low-quality JPEG"))
}

#[async_trait]
impl<D: LineDetector> TextReader for CloudReader<D> {
    fn engine(&self) -> &'static str {
        self.detector.engine()
    }

    fn needs(&self) -> ReaderNeeds {
        ReaderNeeds { text_height: 28.0, max_side: 4000 }
    }

    async fn detect_layout(&self, page: &PreparedImage) -> Result<Option<PageLayout>, PortError> {
        self.local.detect_layout(page).await
    }

    async fn read(&self, page: &PreparedImage, script: Script) -> Result<Reading, PortError> {
        if script == Script::Hangul {
            return self.local.read(page, script).await;
        }
        let (lines, raw) =
            crate::metrics::engine_call(self.detector.engine(), self.detector.detect_lines(jpeg(page)?)).await?;
        Ok(Reading { fragments: fragments(lines, page.gray.width(), page.gray.height()), raw })
    }
}

#[async_trait]
impl<D: LineDetector> Setup for CloudReader<D> {
    async fn check(&self) -> Vec<Finding> {
        vec![Finding::note(
            "ocr",
            format!("{} reads Latin pages; Korean pages are read by Tesseract", self.detector.engine()),
            "install Tesseract where the read stage runs (see deploy/README.md)",
        )]
    }
}

#[cfg(all(test, feature = "aws-mocks"))]
pub(super) mod tests {
    //! What the readers' tests share: a local reader that says which script
    //! it was asked for, and a blank page.

    use image::GrayImage;

    use super::*;

    pub struct Local;

    #[async_trait]
    impl TextReader for Local {
        fn engine(&self) -> &'static str {
            "local"
        }
        fn needs(&self) -> ReaderNeeds {
            ReaderNeeds { text_height: 20.0, max_side: 100 }
        }
        async fn detect_layout(&self, _: &PreparedImage) -> Result<Option<PageLayout>, PortError> {
            Ok(None)
        }
        async fn read(&self, _: &PreparedImage, script: Script) -> Result<Reading, PortError> {
            Ok(Reading { fragments: Vec::new(), raw: format!("local {script:?}") })
        }
    }

    pub fn page() -> PreparedImage {
        PreparedImage { gray: GrayImage::from_pixel(1000, 500, image::Luma([255])), scale: 1.0, text_height: None }
    }

    pub fn texts(reading: &Reading) -> Vec<Vec<&str>> {
        reading.fragments.iter().map(|f| f.words.iter().map(|w| w.text.as_str()).collect()).collect()
    }
}
