//! Textract `DetectDocumentText`: for dense pages (no word limit).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_textract::primitives::Blob;
use aws_sdk_textract::types::{Block, BlockType, Document, RelationshipType};

use super::cloud_reader::{CloudReader, Detected, Line, LineDetector};
use super::sdk_errors::classify;
use crate::domain::PortError;
use crate::ports::TextReader;

pub struct Textract {
    client: aws_sdk_textract::Client,
}

/// Reads Latin pages with Textract, the rest with the local reader.
pub type TextractReader = CloudReader<Textract>;

impl TextractReader {
    pub fn new(config: &aws_config::SdkConfig, local: Arc<dyn TextReader>) -> Self {
        Self::with_client(aws_sdk_textract::Client::new(config), local)
    }

    pub(super) fn with_client(client: aws_sdk_textract::Client, local: Arc<dyn TextReader>) -> Self {
        CloudReader::with_detector(Textract { client }, local)
    }
}

fn detected(b: &Block) -> Option<Detected> {
    let bb = b.geometry().and_then(|g| g.bounding_box())?;
    Some(Detected {
        text: b.text()?.to_owned(),
        confidence: b.confidence().unwrap_or(0.0),
        left: bb.left(),
        top: bb.top(),
        width: bb.width(),
        height: bb.height(),
    })
}

#[async_trait]
impl LineDetector for Textract {
    fn engine(&self) -> &'static str {
        "textract"
    }

    async fn detect_lines(&self, jpeg: Vec<u8>) -> Result<(Vec<Line>, String), PortError> {
        let out = self
            .client
            .detect_document_text()
            .document(Document::builder().bytes(Blob::new(jpeg)).build())
            .send()
            .await
            .map_err(|e| classify("Amazon Textract", e))?;
        let blocks = out.blocks();
        let by_id: HashMap<&str, &Block> = blocks.iter().filter_map(|b| Some((b.id()?, b))).collect();
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
                    .filter_map(|b| detected(b))
                    .collect();
                Some((detected(line)?, words))
            })
            .collect::<Vec<_>>();
        let raw = lines.iter().map(|(l, _)| l.text.as_str()).collect::<Vec<_>>().join("\n");
        Ok((lines, raw))
    }
}

#[cfg(all(test, feature = "aws-mocks"))]
mod tests {
    use aws_sdk_textract::operation::detect_document_text::DetectDocumentTextOutput;
    use aws_sdk_textract::types::{BoundingBox, Geometry, Relationship};
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    use super::super::cloud_reader::tests::{Local, page, texts};
    use super::*;
    use crate::ports::Script;

    #[tokio::test]
    async fn textract_words_are_found_through_their_lines() {
        let block = |id: &str, kind: BlockType, text: Option<&str>, top: f32, children: &[&str]| {
            let b = BoundingBox::builder().left(0.1).top(top).width(0.5).height(0.04).build();
            let mut block = Block::builder()
                .id(id)
                .block_type(kind)
                .confidence(99.0)
                .geometry(Geometry::builder().bounding_box(b).build());
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
        let reader = TextractReader::with_client(client, Arc::new(Local));
        let reading = reader.read(&page(), Script::Latin).await.unwrap();
        assert_eq!(texts(&reading), [vec!["The", "fox", "ran"], vec!["over", "the", "hill."]]);
        // The raw answer keeps the service's own order.
        assert_eq!(reading.raw, "over the hill.\nThe fox ran");
    }
}
