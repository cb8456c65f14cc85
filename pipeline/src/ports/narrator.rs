use async_trait::async_trait;

use crate::domain::timings::Span;
use crate::domain::{Language, PortError, Speed};

/// A voice a narrator can speak with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voice {
    /// The name users pick it by, e.g. `en-us` or `Ivy`.
    pub name: String,
    pub language: Language,
}

/// Synthesized speech for one chunk of text: mono signed 16-bit samples.
#[derive(Debug, Clone)]
pub struct Speech {
    pub samples: Vec<i16>,
    pub sample_rate: u32,
    /// Where the spoken words sound, in order, when the engine says (one
    /// span per word); empty when it does not, and the stage finds the
    /// sounding stretches in the audio instead.
    pub spans: Vec<Span>,
}

impl Speech {
    pub fn duration_ms(&self) -> u32 {
        (self.samples.len() as u64 * 1000 / u64::from(self.sample_rate.max(1))) as u32
    }
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

    /// Speaks `text` with `voice` at `speed` (slower is longer audio).
    async fn synthesize(&self, text: &str, voice: &Voice, speed: Speed) -> Result<Speech, PortError>;
}
