//! Stand-ins for the reading and narrating engines: fast, deterministic,
//! and honest about what they were asked.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use bytes::Bytes;

use super::faults::Faults;
use crate::domain::page_text::{Fragment, Rect, Word};
use crate::domain::timings::Span;
use crate::domain::{ErrorKind, Language, PortError, Speed};
use crate::image::{PreparedImage, ReaderNeeds};
use crate::ports::{Narrator, PageLayout, Reading, Script, Speech, TextReader, Voice};

/// A reader that knows its pages: [`StandInReader::page`] makes a photo of
/// its own (a blank image of a size no other page has) for a text, and
/// reading that photo gives the text back, word by word, upright and sure.
/// Any other image reads as a page without text; so does a page turned on
/// its side.
#[derive(Default)]
pub struct StandInReader {
    pages: Mutex<HashMap<(u32, u32), String>>,
    reads: AtomicUsize,
    faults: Faults,
}

impl StandInReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// A PNG photo whose reading is `text`; the same text gives the same
    /// photo.
    pub fn page(&self, text: &str) -> Bytes {
        let mut pages = self.pages.lock().expect("pages lock");
        let size = match pages.iter().find(|(_, t)| *t == text) {
            Some((size, _)) => *size,
            None => {
                let size = (200 + pages.len() as u32, 120);
                pages.insert(size, text.to_owned());
                size
            }
        };
        let image = image::GrayImage::from_pixel(size.0, size.1, image::Luma([250]));
        let mut png = std::io::Cursor::new(Vec::new());
        image.write_to(&mut png, image::ImageFormat::Png).expect("a PNG encodes");
        Bytes::from(png.into_inner())
    }

    /// How many times a page was read (each turn of a page counts).
    pub fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }

    /// The next `times` readings fail with `kind`.
    pub fn fail(&self, kind: ErrorKind, times: usize) {
        self.faults.push(kind, times);
    }
}

#[async_trait]
impl TextReader for StandInReader {
    fn engine(&self) -> &'static str {
        "stand-in"
    }

    fn needs(&self) -> ReaderNeeds {
        // Blank pages are not scaled below this side: the size names them.
        ReaderNeeds { text_height: 20.0, max_side: 10_000 }
    }

    async fn detect_layout(&self, _: &PreparedImage) -> Result<Option<PageLayout>, PortError> {
        Ok(None)
    }

    async fn read(&self, page: &PreparedImage, _: Script) -> Result<Reading, PortError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.faults.next("the reading stand-in")?;
        let text = self.pages.lock().expect("pages lock").get(&page.gray.dimensions()).cloned().unwrap_or_default();
        let words = text
            .split_whitespace()
            .enumerate()
            .map(|(i, w)| Word {
                text: w.to_owned(),
                confidence: 95.0,
                bbox: Rect { left: 10 + 60 * i as i32, top: 10, width: 50, height: 20 },
            })
            .collect::<Vec<_>>();
        let fragments = if words.is_empty() { Vec::new() } else { vec![Fragment { words, block: 1, paragraph: 1 }] };
        Ok(Reading { fragments, raw: text })
    }
}

/// A narrator that "speaks" a quarter second of quiet tone per word, at
/// 16 kHz, in an English and a Korean voice.
#[derive(Default)]
pub struct StandInNarrator {
    calls: AtomicUsize,
    faults: Faults,
}

/// Samples per second of the stand-in's speech.
const RATE: u32 = 16_000;

impl StandInNarrator {
    pub fn new() -> Self {
        Self::default()
    }

    /// How many chunks were synthesized.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// The next `times` syntheses fail with `kind`.
    pub fn fail(&self, kind: ErrorKind, times: usize) {
        self.faults.push(kind, times);
    }
}

#[async_trait]
impl Narrator for StandInNarrator {
    fn engine(&self) -> &'static str {
        "stand-in"
    }

    fn max_chunk_chars(&self) -> usize {
        200
    }

    fn voices(&self) -> Vec<Voice> {
        vec![
            Voice { name: "en-us".into(), language: Language::English },
            Voice { name: "en-gb".into(), language: Language::English },
            Voice { name: "ko".into(), language: Language::Korean },
        ]
    }

    /// A quarter of a second of tone per word (slower speeds stretch it),
    /// each word its own span.
    async fn synthesize(&self, text: &str, _: &Voice, speed: Speed) -> Result<Speech, PortError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.faults.next("the narrating stand-in")?;
        let word_ms = (250.0 / speed.factor()) as u32;
        let words = text.split_whitespace().count() as u32;
        let samples = (words * word_ms * RATE / 1000) as usize;
        let tone = (0..samples).map(|i| if (i / 20) % 2 == 0 { 300 } else { -300 }).collect();
        let spans = (0..words).map(|i| Span { start_ms: i * word_ms, end_ms: (i + 1) * word_ms - 20 }).collect();
        Ok(Speech { samples: tone, sample_rate: RATE, spans })
    }
}
