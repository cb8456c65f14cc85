use async_trait::async_trait;
use bytes::Bytes;

use crate::domain::{Language, PortError};

/// A voice a narrator can speak with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voice {
    /// The name users pick it by, e.g. `en-us` or `Ivy`.
    pub name: String,
    pub language: Language,
}

/// Synthesized speech for one chunk of text.
#[derive(Debug, Clone)]
pub enum Speech {
    /// Mono signed 16-bit samples; the stage encodes them to MP3.
    Pcm { samples: Vec<i16>, sample_rate: u32 },
    /// Ready MP3 frames; chunks are joined by concatenation.
    Mp3 { bytes: Bytes, seconds: f32 },
}

/// Turns text into speech.
#[async_trait]
pub trait Narrator: Send + Sync {
    /// The engine's name, part of every narration key.
    fn engine(&self) -> &'static str;

    /// The longest text one `synthesize` call accepts, in characters. The
    /// stage splits longer text at sentence boundaries.
    fn max_chunk_chars(&self) -> usize;

    /// The voices on offer.
    fn voices(&self) -> Vec<Voice>;

    /// Picks the voice for a text: the requested one when it speaks the
    /// text's language, otherwise the default voice for that language.
    fn choose_voice(&self, requested: Option<&str>, language: Language) -> Voice {
        let voices = self.voices();
        requested
            .and_then(|r| voices.iter().find(|v| v.name.eq_ignore_ascii_case(r) && v.language == language))
            .or_else(|| voices.iter().find(|v| v.language == language))
            .or_else(|| voices.first())
            .cloned()
            .unwrap_or(Voice { name: "default".into(), language })
    }

    async fn synthesize(&self, text: &str, voice: &Voice) -> Result<Speech, PortError>;
}
