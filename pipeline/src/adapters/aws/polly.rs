//! Amazon Polly as the narrator: `SynthesizeSpeech` with neural voices.
//!
//! Each chunk (the stage splits text at sentence ends, under
//! [`MAX_CHUNK_CHARS`]) is sent as SSML, escaped, at a slightly unhurried
//! rate for children. Polly answers with 16 kHz PCM, which the stage joins
//! with pauses and encodes once into the book's MP3.

use async_trait::async_trait;
use aws_sdk_polly::Client;
use aws_sdk_polly::types::{Engine, OutputFormat, SpeechMarkType, TextType, VoiceId};

use super::sdk_errors::classify;
use crate::domain::timings::{self, Span};
use crate::domain::{Language, PortError, Speed};
use crate::metrics;
use crate::ports::{Narrator, Speech, Voice};
use crate::setup::{Finding, Setup};

const WHAT: &str = "Amazon Polly";
/// Polly bills at most 3,000 characters of a request and takes 6,000 with
/// SSML tags; chunks of this size stay under both even when escaping
/// (`&` → `&amp;`) lengthens them.
pub const MAX_CHUNK_CHARS: usize = 1500;
const SAMPLE_RATE: u32 = 16_000;

/// The voices on offer: name, language, and the engines Polly has them in.
/// The first of each language is its default.
const VOICES: &[(&str, Language, &[&str])] = &[
    ("Joanna", Language::English, &["neural", "standard", "generative"]),
    ("Ivy", Language::English, &["neural", "standard"]),
    ("Kevin", Language::English, &["neural"]),
    ("Justin", Language::English, &["neural", "standard"]),
    ("Matthew", Language::English, &["neural", "standard", "generative"]),
    ("Ruth", Language::English, &["neural", "long-form", "generative"]),
    ("Amy", Language::English, &["neural", "standard", "generative"]),
    ("Brian", Language::English, &["neural", "standard"]),
    ("Seoyeon", Language::Korean, &["neural", "standard"]),
];

pub struct PollyNarrator {
    client: Client,
    /// The configured engine (`neural` unless set otherwise).
    engine: String,
}

impl PollyNarrator {
    pub fn new(config: &aws_config::SdkConfig, engine: impl Into<String>) -> Self {
        Self::from_client(Client::new(config), engine)
    }

    pub fn from_client(client: Client, engine: impl Into<String>) -> Self {
        Self { client, engine: engine.into() }
    }

    /// Whether Polly answers, and has the default English voice in the
    /// configured engine.
    pub async fn check(&self) -> Result<(), PortError> {
        let out = self
            .client
            .describe_voices()
            .engine(Engine::from(self.engine.as_str()))
            .language_code(aws_sdk_polly::types::LanguageCode::EnUs)
            .send()
            .await
            .map_err(|e| classify(WHAT, e))?;
        if out.voices().iter().any(|v| v.id().is_some_and(|id| id.as_str() == VOICES[0].0)) {
            Ok(())
        } else {
            Err(PortError::new(
                crate::domain::ErrorKind::Missing,
                WHAT,
                format!("no {} voice {} in this region", self.engine, VOICES[0].0),
            ))
        }
    }

    /// The configured engine if the voice has it, else the best it has.
    fn engine_for(&self, voice: &str) -> &str {
        let engines = VOICES.iter().find(|(name, ..)| *name == voice).map(|(.., e)| *e).unwrap_or(&["neural"]);
        engines.iter().find(|e| **e == self.engine).copied().unwrap_or(engines[0])
    }
}

/// Text as SSML character data: the five characters XML reserves escaped.
fn escape_ssml(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters are not allowed in XML.
            c if c.is_control() && c != '\n' && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The chunk as SSML at a slightly unhurried rate for children, scaled
/// by the reading speed.
fn ssml(text: &str, speed: Speed) -> String {
    let rate = (95.0 * speed.factor()).round() as u32;
    format!("<speak><prosody rate=\"{rate}%\">{}</prosody></speak>", escape_ssml(text))
}

/// Word spans from Polly's speech marks (one JSON object per line, each
/// word's start in milliseconds): a word lasts until the next begins, the
/// last until the end of the sound.
fn word_spans(marks: &[u8], sound_end_ms: u32) -> Vec<Span> {
    #[derive(serde::Deserialize)]
    struct Mark {
        time: u32,
        #[serde(rename = "type")]
        kind: String,
    }
    let starts: Vec<u32> = String::from_utf8_lossy(marks)
        .lines()
        .filter_map(|l| serde_json::from_str::<Mark>(l).ok())
        .filter(|m| m.kind == "word")
        .map(|m| m.time)
        .collect();
    starts
        .iter()
        .enumerate()
        .map(|(i, &start)| Span {
            start_ms: start,
            end_ms: starts.get(i + 1).copied().unwrap_or(sound_end_ms).max(start),
        })
        .collect()
}

#[async_trait]
impl Narrator for PollyNarrator {
    fn engine(&self) -> &'static str {
        "polly"
    }

    fn max_chunk_chars(&self) -> usize {
        MAX_CHUNK_CHARS
    }

    fn voices(&self) -> Vec<Voice> {
        VOICES.iter().map(|(name, language, _)| Voice { name: (*name).to_owned(), language: *language }).collect()
    }

    async fn synthesize(&self, text: &str, voice: &Voice, speed: Speed) -> Result<Speech, PortError> {
        metrics::engine_call("polly", self.speak(text, voice, speed)).await
    }
}

impl PollyNarrator {
    async fn speak(&self, text: &str, voice: &Voice, speed: Speed) -> Result<Speech, PortError> {
        let ssml = ssml(text, speed);
        let request = |format: OutputFormat| {
            self.client
                .synthesize_speech()
                .engine(Engine::from(self.engine_for(&voice.name)))
                .voice_id(VoiceId::from(voice.name.as_str()))
                .output_format(format)
                .text_type(TextType::Ssml)
                .text(ssml.clone())
        };
        let out = request(OutputFormat::Pcm)
            .sample_rate(SAMPLE_RATE.to_string())
            .send()
            .await
            .map_err(|e| classify(WHAT, e))?;
        let bytes = out.audio_stream.collect().await.map_err(|e| PortError::unavailable(WHAT, e))?.into_bytes();
        // Signed 16-bit little-endian mono.
        let samples: Vec<i16> = bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
        let sound_end = timings::sounding(&samples, SAMPLE_RATE).last().map_or(0, |s| s.end_ms);
        // Word timings come from a second request for speech marks; without
        // them the stage finds the words' places in the audio.
        let marks = match request(OutputFormat::Json).speech_mark_types(SpeechMarkType::Word).send().await {
            Ok(out) => out.audio_stream.collect().await.map(|b| b.into_bytes()).ok(),
            Err(e) => {
                tracing::warn!(error = %classify(WHAT, e), "Polly gave no speech marks; word timings are estimated");
                None
            }
        };
        let spans = marks.map(|m| word_spans(&m, sound_end)).unwrap_or_default();
        Ok(Speech { samples, sample_rate: SAMPLE_RATE, spans })
    }
}

#[async_trait]
impl Setup for PollyNarrator {
    async fn check(&self) -> Vec<Finding> {
        let resource = format!("{} voices", self.engine);
        vec![Finding::of("polly", resource, self.check().await, "polly:DescribeVoices")]
    }
}

#[cfg(all(test, feature = "aws-mocks"))]
mod tests {
    use std::sync::{Arc, Mutex};

    use aws_sdk_polly::operation::synthesize_speech::{SynthesizeSpeechError, SynthesizeSpeechOutput};
    use aws_sdk_polly::primitives::ByteStream;
    use aws_sdk_polly::types::error::TextLengthExceededException;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    use super::*;
    use crate::stages::synthesize_book;

    type Sent = Arc<Mutex<Vec<(String, String, String, String)>>>;

    /// A Polly that records each request (voice, engine, format, text) and
    /// answers with 100 ms of PCM.
    fn recording_polly(engine: &str) -> (PollyNarrator, Sent) {
        let sent: Sent = Default::default();
        let log = sent.clone();
        let rule = mock!(Client::synthesize_speech).then_compute_output(move |input| {
            log.lock().unwrap().push((
                input.voice_id().map(|v| v.as_str().to_owned()).unwrap_or_default(),
                input.engine().map(|e| e.as_str().to_owned()).unwrap_or_default(),
                format!(
                    "{}@{}",
                    input.output_format().map(|f| f.as_str()).unwrap_or(""),
                    input.sample_rate().unwrap_or("")
                ),
                input.text().unwrap_or_default().to_owned(),
            ));
            SynthesizeSpeechOutput::builder().audio_stream(ByteStream::from(vec![0u8; 3200])).build()
        });
        let client = mock_client!(aws_sdk_polly, RuleMode::MatchAny, [&rule]);
        (PollyNarrator::from_client(client, engine), sent)
    }

    #[test]
    fn ocr_text_is_escaped_for_ssml() {
        assert_eq!(
            ssml("Tom & Jerry said \"don't\" <3", Speed::NORMAL),
            "<speak><prosody rate=\"95%\">Tom &amp; Jerry said &quot;don&apos;t&quot; &lt;3</prosody></speak>"
        );
        assert!(ssml("slow", "0.7".parse().unwrap()).contains("rate=\"67%\""));
    }

    #[test]
    fn speech_marks_give_one_span_per_word() {
        let marks = br#"{"time":6,"type":"word","start":0,"end":4,"value":"Once"}
{"time":300,"type":"sentence","start":0,"end":9,"value":"Once upon"}
{"time":310,"type":"word","start":5,"end":9,"value":"upon"}"#;
        let spans = word_spans(marks, 700);
        assert_eq!(spans, [Span { start_ms: 6, end_ms: 310 }, Span { start_ms: 310, end_ms: 700 }]);
    }

    #[tokio::test]
    async fn a_long_book_is_sent_in_chunks_under_the_limit_and_joined() {
        let (polly, sent) = recording_polly("neural");
        let sentence = "The little fox & the bear walked <slowly> home. ";
        let text = sentence.repeat(200);
        let voice = polly.choose_voice(None, Language::English);
        let book = synthesize_book(&polly, &text, &voice, Speed::NORMAL).await.unwrap();
        let mp3 = book.mp3;
        let sent = sent.lock().unwrap();
        // Each chunk is asked for its audio and then for its speech marks.
        let (audio, marks): (Vec<_>, Vec<_>) = sent.iter().partition(|s| s.2 == "pcm@16000");
        assert!(audio.len() >= 7 && marks.len() == audio.len(), "{} requests", sent.len());
        assert!(marks.iter().all(|m| m.2 == "json@"));
        assert_eq!(book.words.len(), text.split_whitespace().count());
        let sent = audio;
        for (voice, engine, format, ssml) in sent.iter() {
            assert_eq!((voice.as_str(), engine.as_str(), format.as_str()), ("Joanna", "neural", "pcm@16000"));
            assert!(ssml.starts_with("<speak>") && ssml.ends_with("</speak>"));
            assert!(ssml.len() < 6000 && ssml.contains("&amp;") && !ssml.contains(" & "));
            // Each chunk ends at a sentence end.
            assert!(ssml.trim_end_matches("</prosody></speak>").trim_end().ends_with("home."), "{ssml}");
        }
        assert!(mp3.seconds >= 0.1 * sent.len() as f32, "{}", mp3.seconds);
        assert!(mp3.bytes.len() > 1000 && mp3.bytes[0] == 0xFF, "one MP3 stream");
    }

    #[tokio::test]
    async fn korean_text_gets_seoyeon_and_voices_keep_an_engine_they_have() {
        let (polly, sent) = recording_polly("generative");
        let voice = polly.choose_voice(Some("Joanna"), Language::Korean);
        assert_eq!(voice.name, "Seoyeon");
        polly.synthesize("옛날 옛적에", &voice, Speed::NORMAL).await.unwrap();
        let kevin = polly.choose_voice(Some("kevin"), Language::English);
        polly.synthesize("Hi.", &kevin, Speed::NORMAL).await.unwrap();
        let sent = sent.lock().unwrap();
        assert_eq!((sent[0].0.as_str(), sent[0].1.as_str()), ("Seoyeon", "neural"));
        // Each narration is followed by its speech marks request.
        assert_eq!((sent[2].0.as_str(), sent[2].1.as_str()), ("Kevin", "neural"));
    }

    #[tokio::test]
    async fn throttling_is_retryable_and_too_long_text_is_permanent() {
        let throttled = mock!(Client::synthesize_speech)
            .sequence()
            .http_status(400, Some(r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#.into()))
            .times(5)
            .build();
        let polly =
            PollyNarrator::from_client(mock_client!(aws_sdk_polly, RuleMode::Sequential, [&throttled]), "neural");
        let voice = polly.choose_voice(None, Language::English);
        let e = polly.synthesize("Hello.", &voice, Speed::NORMAL).await.unwrap_err();
        assert!(e.is_retryable(), "{e:?}");

        let too_long = mock!(Client::synthesize_speech).then_error(|| {
            SynthesizeSpeechError::TextLengthExceededException(
                TextLengthExceededException::builder().message("Maximum text length has been exceeded").build(),
            )
        });
        let polly = PollyNarrator::from_client(mock_client!(aws_sdk_polly, RuleMode::MatchAny, [&too_long]), "neural");
        let e = polly.synthesize("Hello.", &voice, Speed::NORMAL).await.unwrap_err();
        assert!(!e.is_retryable(), "{e:?}");
        assert!(e.detail().contains("Maximum text length"), "{e}");
    }
}
