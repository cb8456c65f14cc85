//! Text readers on AWS: Rekognition `DetectText` (cheap, for picture-book
//! pages: it stops at 100 words) or Textract `DetectDocumentText` (dense
//! pages). Both get the prepared page — already turned upright by its EXIF
//! tag and scaled — as JPEG bytes, so the boxes they return match the
//! pixels the rest of the pipeline uses.
//!
//! Neither service documents Hangul, so Korean pages, and the question of
//! how a page lies, go to the local reader (Tesseract) given as `local`.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_rekognition::primitives::Blob as RekognitionBlob;
use aws_sdk_rekognition::types::{Image, TextTypes};
use aws_sdk_textract::primitives::Blob as TextractBlob;
use aws_sdk_textract::types::{BlockType, Document, RelationshipType};

use super::classify;
use crate::domain::PortError;
use crate::domain::text::{Fragment, Rect, Word};
use crate::image::{PreparedImage, ReaderNeeds};
use crate::ports::{PageLayout, Reading, Script, TextReader};

/// Both services take image bytes up to 5 MB.
const MAX_BYTES: usize = 5 * 1024 * 1024;

enum Service {
    Rekognition(aws_sdk_rekognition::Client),
    Textract(aws_sdk_textract::Client),
}

pub struct AwsReader {
    service: Service,
    local: Arc<dyn TextReader>,
}

/// A word or line as a service reports it: text, confidence and a box in
/// fractions of the image size.
struct Detected {
    text: String,
    confidence: f32,
    left: f32,
    top: f32,
    width: f32,
    height: f32,
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
fn fragments(mut lines: Vec<(Detected, Vec<Detected>)>, width: u32, height: u32) -> Vec<Fragment> {
    let middle = |d: &Detected| d.top + d.height / 2.0;
    lines.sort_by(|(a, _), (b, _)| middle(a).total_cmp(&middle(b)));
    let mut rows: Vec<Vec<(Detected, Vec<Detected>)>> = Vec::new();
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

impl AwsReader {
    pub fn rekognition(config: &aws_config::SdkConfig, local: Arc<dyn TextReader>) -> Self {
        Self { service: Service::Rekognition(aws_sdk_rekognition::Client::new(config)), local }
    }

    pub fn textract(config: &aws_config::SdkConfig, local: Arc<dyn TextReader>) -> Self {
        Self { service: Service::Textract(aws_sdk_textract::Client::new(config)), local }
    }

    #[cfg(test)]
    fn from_service(service: Service, local: Arc<dyn TextReader>) -> Self {
        Self { service, local }
    }

    async fn rekognition_lines(
        client: &aws_sdk_rekognition::Client,
        jpeg: Vec<u8>,
    ) -> Result<(Vec<(Detected, Vec<Detected>)>, String), PortError> {
        let out = client
            .detect_text()
            .image(Image::builder().bytes(RekognitionBlob::new(jpeg)).build())
            .send()
            .await
            .map_err(|e| classify("Amazon Rekognition", e))?;
        let detect = |d: &aws_sdk_rekognition::types::TextDetection| {
            let b = d.geometry().and_then(|g| g.bounding_box())?;
            Some(Detected {
                text: d.detected_text()?.to_owned(),
                confidence: d.confidence().unwrap_or(0.0),
                left: b.left()?,
                top: b.top()?,
                width: b.width()?,
                height: b.height()?,
            })
        };
        let detections = out.text_detections();
        let mut words: HashMap<i32, Vec<Detected>> = HashMap::new();
        for d in detections.iter().filter(|d| d.r#type() == Some(&TextTypes::Word)) {
            if let (Some(parent), Some(word)) = (d.parent_id(), detect(d)) {
                words.entry(parent).or_default().push(word);
            }
        }
        let lines = detections
            .iter()
            .filter(|d| d.r#type() == Some(&TextTypes::Line))
            .filter_map(|d| Some((detect(d)?, d.id().and_then(|id| words.remove(&id)).unwrap_or_default())))
            .collect();
        let raw = detections.iter().filter_map(|d| d.detected_text()).collect::<Vec<_>>().join("\n");
        Ok((lines, raw))
    }

    async fn textract_lines(
        client: &aws_sdk_textract::Client,
        jpeg: Vec<u8>,
    ) -> Result<(Vec<(Detected, Vec<Detected>)>, String), PortError> {
        let out = client
            .detect_document_text()
            .document(Document::builder().bytes(TextractBlob::new(jpeg)).build())
            .send()
            .await
            .map_err(|e| classify("Amazon Textract", e))?;
        let blocks = out.blocks();
        let detect = |b: &aws_sdk_textract::types::Block| {
            let bb = b.geometry().and_then(|g| g.bounding_box())?;
            Some(Detected {
                text: b.text()?.to_owned(),
                confidence: b.confidence().unwrap_or(0.0),
                left: bb.left(),
                top: bb.top(),
                width: bb.width(),
                height: bb.height(),
            })
        };
        let by_id: HashMap<&str, &aws_sdk_textract::types::Block> =
            blocks.iter().filter_map(|b| Some((b.id()?, b))).collect();
        let lines = blocks
            .iter()
            .filter(|b| b.block_type() == Some(&BlockType::Line))
            .filter_map(|line| {
                let words = line
                    .relationships()
                    .iter()
                    .filter(|r| r.r#type() == Some(&RelationshipType::Child))
                    .flat_map(|r| r.ids())
                    .filter_map(|id| by_id.get(id.as_str()))
                    .filter(|b| b.block_type() == Some(&BlockType::Word))
                    .filter_map(|b| detect(b))
                    .collect();
                Some((detect(line)?, words))
            })
            .collect::<Vec<_>>();
        let raw = lines.iter().map(|(l, _)| l.text.as_str()).collect::<Vec<_>>().join("\n");
        Ok((lines, raw))
    }
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
impl TextReader for AwsReader {
    fn engine(&self) -> &'static str {
        match self.service {
            Service::Rekognition(_) => "rekognition",
            Service::Textract(_) => "textract",
        }
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
        let bytes = jpeg(page)?;
        let (lines, raw) = match &self.service {
            Service::Rekognition(client) => Self::rekognition_lines(client, bytes).await?,
            Service::Textract(client) => Self::textract_lines(client, bytes).await?,
        };
        Ok(Reading { fragments: fragments(lines, page.gray.width(), page.gray.height()), raw })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use aws_sdk_rekognition::operation::detect_text::DetectTextOutput;
    use aws_sdk_rekognition::types::{BoundingBox, Geometry, TextDetection};
    use aws_sdk_textract::operation::detect_document_text::DetectDocumentTextOutput;
    use aws_sdk_textract::types::{Block, Relationship};
    use aws_smithy_mocks::{RuleMode, mock, mock_client};
    use image::GrayImage;

    use super::*;

    /// The local reader: says which script it was asked for.
    struct Local;

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

    fn page() -> PreparedImage {
        PreparedImage { gray: GrayImage::from_pixel(1000, 500, image::Luma([255])), scale: 1.0, text_height: None }
    }

    fn rekognition(text: &str, kind: TextTypes, id: i32, parent: Option<i32>, left: f32, top: f32) -> TextDetection {
        let b = BoundingBox::builder().left(left).top(top).width(0.2).height(0.05).build();
        let d = TextDetection::builder()
            .detected_text(text)
            .r#type(kind)
            .id(id)
            .confidence(97.5)
            .geometry(Geometry::builder().bounding_box(b).build());
        match parent {
            Some(p) => d.parent_id(p).build(),
            None => d.build(),
        }
    }

    fn texts(reading: &Reading) -> Vec<Vec<&str>> {
        reading.fragments.iter().map(|f| f.words.iter().map(|w| w.text.as_str()).collect()).collect()
    }

    #[tokio::test]
    async fn rekognition_lines_come_back_in_reading_order_with_their_words() {
        let sent = Arc::new(Mutex::new(Vec::new()));
        let log = sent.clone();
        // As moto answers (its canned "IT'S MONDAY but keep Smiling"), but
        // with the second row listed first.
        let rule = mock!(aws_sdk_rekognition::Client::detect_text).then_compute_output(move |input| {
            let bytes = input.image().and_then(|i| i.bytes()).map(|b| b.as_ref().to_vec()).unwrap_or_default();
            log.lock().unwrap().push(bytes);
            DetectTextOutput::builder()
                .text_detections(rekognition("but keep", TextTypes::Line, 2, None, 0.1, 0.5))
                .text_detections(rekognition("IT'S", TextTypes::Line, 0, None, 0.1, 0.1))
                .text_detections(rekognition("MONDAY", TextTypes::Line, 1, None, 0.5, 0.11))
                .text_detections(rekognition("but", TextTypes::Word, 5, Some(2), 0.1, 0.5))
                .text_detections(rekognition("keep", TextTypes::Word, 6, Some(2), 0.3, 0.5))
                .text_detections(rekognition("IT'S", TextTypes::Word, 3, Some(0), 0.1, 0.1))
                .text_detections(rekognition("MONDAY", TextTypes::Word, 4, Some(1), 0.5, 0.11))
                .build()
        });
        let client = mock_client!(aws_sdk_rekognition, RuleMode::MatchAny, [&rule]);
        let reader = AwsReader::from_service(Service::Rekognition(client), Arc::new(Local));
        let reading = reader.read(&page(), Script::Latin).await.unwrap();
        assert_eq!(texts(&reading), [vec!["IT'S"], vec!["MONDAY"], vec!["but", "keep"]]);
        let keep = &reading.fragments[2].words[1];
        assert_eq!((keep.bbox.left, keep.bbox.top, keep.bbox.width, keep.bbox.height), (300, 250, 200, 25));
        assert_eq!(keep.confidence, 97.5);
        let sent = sent.lock().unwrap();
        assert_eq!(&sent[0][..2], &[0xFF, 0xD8], "the page goes as JPEG bytes");
    }

    #[tokio::test]
    async fn textract_words_are_found_through_their_lines() {
        let block = |id: &str, kind: BlockType, text: Option<&str>, top: f32, children: &[&str]| {
            let b = aws_sdk_textract::types::BoundingBox::builder().left(0.1).top(top).width(0.5).height(0.04).build();
            let mut block = Block::builder()
                .id(id)
                .block_type(kind)
                .confidence(99.0)
                .geometry(aws_sdk_textract::types::Geometry::builder().bounding_box(b).build());
            if let Some(t) = text {
                block = block.text(t);
            }
            if !children.is_empty() {
                let ids = children.iter().map(|c| c.to_string()).collect();
                block = block
                    .relationships(Relationship::builder().r#type(RelationshipType::Child).set_ids(Some(ids)).build());
            }
            block.build()
        };
        let rule = mock!(aws_sdk_textract::Client::detect_document_text).then_output(move || {
            DetectDocumentTextOutput::builder()
                .blocks(block("p", BlockType::Page, None, 0.0, &["l2", "l1"]))
                .blocks(block("l2", BlockType::Line, Some("over the hill."), 0.3, &["w3", "w4", "w5"]))
                .blocks(block("l1", BlockType::Line, Some("The fox ran"), 0.2, &["w1", "w2", "w0"]))
                .blocks(block("w1", BlockType::Word, Some("The"), 0.2, &[]))
                .blocks(block("w2", BlockType::Word, Some("fox"), 0.2, &[]))
                .blocks(block("w0", BlockType::Word, Some("ran"), 0.2, &[]))
                .blocks(block("w3", BlockType::Word, Some("over"), 0.3, &[]))
                .blocks(block("w4", BlockType::Word, Some("the"), 0.3, &[]))
                .blocks(block("w5", BlockType::Word, Some("hill."), 0.3, &[]))
                .build()
        });
        let client = mock_client!(aws_sdk_textract, RuleMode::MatchAny, [&rule]);
        let reader = AwsReader::from_service(Service::Textract(client), Arc::new(Local));
        let reading = reader.read(&page(), Script::Latin).await.unwrap();
        assert_eq!(texts(&reading), [vec!["The", "fox", "ran"], vec!["over", "the", "hill."]]);
        // The raw answer keeps the service's own order.
        assert_eq!(reading.raw, "over the hill.\nThe fox ran");
    }

    #[tokio::test]
    async fn korean_pages_and_layout_go_to_the_local_reader() {
        let rule = mock!(aws_sdk_rekognition::Client::detect_text).then_output(|| DetectTextOutput::builder().build());
        let client = mock_client!(aws_sdk_rekognition, RuleMode::MatchAny, [&rule]);
        let reader = AwsReader::from_service(Service::Rekognition(client), Arc::new(Local));
        assert_eq!(reader.read(&page(), Script::Hangul).await.unwrap().raw, "local Hangul");
        assert_eq!(rule.num_calls(), 0, "Rekognition was not asked");
        assert!(reader.detect_layout(&page()).await.unwrap().is_none());
    }
}
