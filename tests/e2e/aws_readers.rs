//! The Rekognition reader against moto. moto answers every image with the
//! same canned detections ("IT'S", "MONDAY", "but keep", "Smiling"), so
//! this checks the request the adapter makes and how it parses the answer,
//! not reading itself.

use std::sync::Arc;

use storytime_pipeline::adapters::aws::RekognitionReader;
use storytime_pipeline::adapters::local::TesseractReader;
use storytime_pipeline::domain::page_text::assemble;
use storytime_pipeline::image::{ReaderNeeds, prepare};
use storytime_pipeline::ports::{Script, TextReader};
use storytime_tests::moto::Moto;
use storytime_tests::{Page, render_page};

#[tokio::test]
async fn rekognition_answers_become_lines_in_reading_order() {
    let moto = Moto::start();
    let reader = RekognitionReader::new(&moto.sdk_config().await, Arc::new(TesseractReader::new("tesseract")));
    let png = render_page(&Page::new(&["Any page at all."]));
    let gray = image::load_from_memory(&png).unwrap().to_luma8();
    let page = prepare(&gray, &ReaderNeeds { text_height: 28.0, max_side: 4000 });
    let reading = reader.read(&page, Script::Latin).await.unwrap();
    let lines: Vec<String> = reading
        .fragments
        .iter()
        .map(|f| f.words.iter().map(|w| w.text.as_str()).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(lines, ["IT'S", "MONDAY", "but keep", "Smiling"], "{}", reading.raw);
    assert!(reading.fragments.iter().flat_map(|f| &f.words).all(|w| w.confidence > 50.0 && w.bbox.width > 0));
    let text = assemble(reading.fragments);
    assert!(text.text.contains("MONDAY"), "{text:?}");
}
