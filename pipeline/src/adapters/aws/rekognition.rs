//! Rekognition `DetectText`: cheap, for picture-book pages (it stops at 100
//! words).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_rekognition::primitives::Blob;
use aws_sdk_rekognition::types::{Image, TextDetection, TextTypes};

use super::cloud_reader::{CloudReader, Detected, Line, LineDetector};
use super::sdk_errors::classify;
use crate::domain::PortError;
use crate::ports::TextReader;

pub struct Rekognition {
    client: aws_sdk_rekognition::Client,
}

/// Reads Latin pages with Rekognition, the rest with the local reader.
pub type RekognitionReader = CloudReader<Rekognition>;

impl RekognitionReader {
    pub fn new(config: &aws_config::SdkConfig, local: Arc<dyn TextReader>) -> Self {
        Self::with_client(aws_sdk_rekognition::Client::new(config), local)
    }

    pub(super) fn with_client(client: aws_sdk_rekognition::Client, local: Arc<dyn TextReader>) -> Self {
        CloudReader::with_detector(Rekognition { client }, local)
    }
}

fn detected(d: &TextDetection) -> Option<Detected> {
    let b = d.geometry().and_then(|g| g.bounding_box())?;
    Some(Detected {
        text: d.detected_text()?.to_owned(),
        confidence: d.confidence().unwrap_or(0.0),
        left: b.left()?,
        top: b.top()?,
        width: b.width()?,
        height: b.height()?,
    })
}

#[async_trait]
impl LineDetector for Rekognition {
    fn engine(&self) -> &'static str {
        "rekognition"
    }

    async fn detect_lines(&self, jpeg: Vec<u8>) -> Result<(Vec<Line>, String), PortError> {
        let out = self
            .client
            .detect_text()
            .image(Image::builder().bytes(Blob::new(jpeg)).build())
            .send()
            .await
            .map_err(|e| classify("Amazon Rekognition", e))?;
        let detections = out.text_detections();
        let mut words: HashMap<i32, Vec<Detected>> = HashMap::new();
        for d in detections.iter().filter(|d| d.r#type() == Some(&TextTypes::Word)) {
            if let (Some(parent), Some(word)) = (d.parent_id(), detected(d)) {
                words.entry(parent).or_default().push(word);
            }
        }
        let lines = detections
            .iter()
            .filter(|d| d.r#type() == Some(&TextTypes::Line))
            .filter_map(|d| Some((detected(d)?, d.id().and_then(|id| words.remove(&id)).unwrap_or_default())))
            .collect();
        let raw = detections.iter().filter_map(|d| d.detected_text()).collect::<Vec<_>>().join("\n");
        Ok((lines, raw))
    }
}

#[cfg(all(test, feature = "aws-mocks"))]
mod tests {
    use std::sync::Mutex;

    use aws_sdk_rekognition::operation::detect_text::DetectTextOutput;
    use aws_sdk_rekognition::types::{BoundingBox, Geometry};
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    use super::super::cloud_reader::tests::{Local, page, texts};
    use super::*;
    use crate::ports::Script;

    fn detection(text: &str, kind: TextTypes, id: i32, parent: Option<i32>, left: f32, top: f32) -> TextDetection {
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
                .text_detections(detection("but keep", TextTypes::Line, 2, None, 0.1, 0.5))
                .text_detections(detection("IT'S", TextTypes::Line, 0, None, 0.1, 0.1))
                .text_detections(detection("MONDAY", TextTypes::Line, 1, None, 0.5, 0.11))
                .text_detections(detection("but", TextTypes::Word, 5, Some(2), 0.1, 0.5))
                .text_detections(detection("keep", TextTypes::Word, 6, Some(2), 0.3, 0.5))
                .text_detections(detection("IT'S", TextTypes::Word, 3, Some(0), 0.1, 0.1))
                .text_detections(detection("MONDAY", TextTypes::Word, 4, Some(1), 0.5, 0.11))
                .build()
        });
        let client = mock_client!(aws_sdk_rekognition, RuleMode::MatchAny, [&rule]);
        let reader = RekognitionReader::with_client(client, Arc::new(Local));
        let reading = reader.read(&page(), Script::Latin).await.unwrap();
        assert_eq!(texts(&reading), [vec!["IT'S"], vec!["MONDAY"], vec!["but", "keep"]]);
        let keep = &reading.fragments[2].words[1];
        assert_eq!((keep.bbox.left, keep.bbox.top, keep.bbox.width, keep.bbox.height), (300, 250, 200, 25));
        assert_eq!(keep.confidence, 97.5);
        let sent = sent.lock().unwrap();
        assert_eq!(&sent[0][..2], &[0xFF, 0xD8], "the page goes as JPEG bytes");
    }

    #[tokio::test]
    async fn korean_pages_and_layout_go_to_the_local_reader() {
        let rule = mock!(aws_sdk_rekognition::Client::detect_text).then_output(|| DetectTextOutput::builder().build());
        let client = mock_client!(aws_sdk_rekognition, RuleMode::MatchAny, [&rule]);
        let reader = RekognitionReader::with_client(client, Arc::new(Local));
        assert_eq!(reader.read(&page(), Script::Hangul).await.unwrap().raw, "local Hangul");
        assert_eq!(rule.num_calls(), 0, "Rekognition was not asked");
        assert!(reader.detect_layout(&page()).await.unwrap().is_none());
    }
}
