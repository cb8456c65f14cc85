//! espeak-ng as the narrator: text on stdin, a WAV stream on stdout.

use std::time::Duration;

use async_trait::async_trait;

use super::process::Program;
use crate::domain::{Language, PortError, Speed};
use crate::metrics;
use crate::ports::{Narrator, Speech, Voice};
use crate::setup::{Finding, Setup};

/// Storytime's voice names and the espeak-ng voices behind them. The first
/// voice of each language is that language's default.
const VOICES: &[(&str, Language, &str)] = &[
    ("en-us", Language::English, "en-us"),
    ("en-us-f", Language::English, "en-us+f3"),
    ("en-gb", Language::English, "en-gb"),
    ("en-gb-f", Language::English, "en-gb+f3"),
    ("ko", Language::Korean, "ko"),
    ("ko-f", Language::Korean, "ko+f3"),
];

pub struct EspeakNarrator {
    program: Program,
    /// Words per minute; unhurried, for children.
    speed: u32,
}

impl EspeakNarrator {
    pub fn new(program: impl Into<String>) -> Self {
        Self {
            program: Program {
                program: program.into(),
                install_hint: "install it with `sudo apt-get install espeak-ng`",
                timeout: Duration::from_secs(60),
            },
            speed: 150,
        }
    }

    /// Kills a call that takes longer than `timeout` (the work is retried).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.program.timeout = timeout;
        self
    }
}

/// Installed, with the Korean voice.
#[async_trait]
impl Setup for EspeakNarrator {
    async fn check(&self) -> Vec<Finding> {
        let program = &self.program.program;
        let Ok(version) = self.program.output(&["--version"]).await else {
            return vec![Finding::missing(
                "espeak-ng",
                format!("`{program}` not found"),
                "sudo apt-get install espeak-ng",
            )];
        };
        let voices = self.program.output(&["--voices"]).await.unwrap_or_default();
        let has_korean = voices.lines().any(|l| l.split_whitespace().nth(1) == Some("ko"));
        let version = version.lines().next().unwrap_or("").trim().to_owned();
        let names: Vec<&str> = VOICES.iter().map(|(name, ..)| *name).collect();
        vec![if has_korean {
            Finding::ok("espeak-ng", format!("{version}; voices: {}", names.join(", ")))
        } else {
            Finding::note(
                "espeak-ng",
                format!("{version}, without a Korean voice"),
                "sudo apt-get install espeak-ng-data",
            )
        }]
    }
}

#[async_trait]
impl Narrator for EspeakNarrator {
    fn engine(&self) -> &'static str {
        "espeak-ng"
    }

    fn max_chunk_chars(&self) -> usize {
        // espeak-ng has no hard limit; chunks bound the memory of one call.
        4000
    }

    fn voices(&self) -> Vec<Voice> {
        VOICES.iter().map(|(name, language, _)| Voice { name: (*name).to_owned(), language: *language }).collect()
    }

    async fn synthesize(&self, text: &str, voice: &Voice, speed: Speed) -> Result<Speech, PortError> {
        metrics::engine_call("espeak", self.speak(text, voice, speed)).await
    }
}

impl EspeakNarrator {
    async fn speak(&self, text: &str, voice: &Voice, speed: Speed) -> Result<Speech, PortError> {
        let espeak_voice = VOICES
            .iter()
            .find(|(name, ..)| *name == voice.name)
            .map(|(.., v)| *v)
            .ok_or_else(|| PortError::rejected("espeak-ng", format!("unknown voice `{}`", voice.name)))?;
        // espeak-ng takes 80 words a minute at the least.
        let speed = ((self.speed as f32 * speed.factor()).round() as u32).max(80).to_string();
        let out = self
            .program
            .run(&["-v", espeak_voice, "-s", &speed, "--stdin", "--stdout"], &[], text.as_bytes().to_vec())
            .await?;
        if !out.success {
            return Err(PortError::rejected("espeak-ng", out.stderr.trim()));
        }
        let (samples, sample_rate) = parse_wav(&out.stdout).map_err(|e| PortError::rejected("espeak-ng", e))?;
        Ok(Speech { samples, sample_rate, spans: Vec::new() })
    }
}

/// Reads mono 16-bit PCM from a WAV stream. espeak-ng writes to a pipe and
/// cannot seek back, so the data chunk's length may be a placeholder: the
/// data then runs to the end of the stream.
fn parse_wav(bytes: &[u8]) -> Result<(Vec<i16>, u32), String> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err("the output is not a WAV stream".into());
    }
    let u16_at = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]);
    let u32_at = |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    let mut i = 12;
    let mut format = None;
    while i + 8 <= bytes.len() {
        let id = &bytes[i..i + 4];
        let len = u32_at(i + 4) as usize;
        let body = i + 8;
        if id == b"fmt " {
            if body + 16 > bytes.len() {
                return Err("the WAV format chunk is cut off".into());
            }
            format = Some((u16_at(body), u16_at(body + 2), u32_at(body + 4), u16_at(body + 14)));
        } else if id == b"data" {
            let (tag, channels, rate, bits) = format.ok_or("the WAV data comes before its format")?;
            if tag != 1 || channels != 1 || bits != 16 {
                return Err(format!("unexpected WAV format (tag {tag}, {channels} channels, {bits} bits)"));
            }
            let end =
                if len == 0 || len == u32::MAX as usize || body + len > bytes.len() { bytes.len() } else { body + len };
            let samples = bytes[body..end].chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]])).collect();
            return Ok((samples, rate));
        }
        i = body + len + (len & 1);
    }
    Err("the WAV stream has no data".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(samples: &[i16], data_len: u32) -> Vec<u8> {
        let mut v = b"RIFF\0\0\0\0WAVEfmt ".to_vec();
        v.extend(16u32.to_le_bytes());
        v.extend(1u16.to_le_bytes());
        v.extend(1u16.to_le_bytes());
        v.extend(22050u32.to_le_bytes());
        v.extend((22050u32 * 2).to_le_bytes());
        v.extend(2u16.to_le_bytes());
        v.extend(16u16.to_le_bytes());
        v.extend(b"data");
        v.extend(data_len.to_le_bytes());
        for s in samples {
            v.extend(s.to_le_bytes());
        }
        v
    }

    #[test]
    fn wav_streams_with_or_without_a_real_length_are_read() {
        let s = [1i16, -2, 300];
        assert_eq!(parse_wav(&wav(&s, 6)).unwrap(), (s.to_vec(), 22050));
        assert_eq!(parse_wav(&wav(&s, u32::MAX)).unwrap(), (s.to_vec(), 22050));
        assert_eq!(parse_wav(&wav(&s, 0)).unwrap(), (s.to_vec(), 22050));
        assert!(parse_wav(b"nonsense").is_err());
    }

    #[test]
    fn each_language_has_a_default_voice() {
        let n = EspeakNarrator::new("espeak-ng");
        assert_eq!(n.choose_voice(None, Language::Korean).name, "ko");
        assert_eq!(n.choose_voice(Some("EN-GB"), Language::English).name, "en-gb");
        // A requested voice that cannot speak the page's language yields.
        assert_eq!(n.choose_voice(Some("en-gb"), Language::Korean).name, "ko");
    }
}
