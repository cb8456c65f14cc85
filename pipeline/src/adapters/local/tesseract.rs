//! Tesseract 5 as the text reader, run as `tesseract stdin stdout`.
//!
//! Orientation and script come from Tesseract's OSD mode (`--psm 0`), the
//! text from automatic page segmentation (`--psm 3`) as TSV, which gives
//! every word with its box and confidence for [`crate::domain::page_text`].

use std::time::Duration;

use async_trait::async_trait;

use super::process::Program;
use crate::domain::PortError;
use crate::domain::page_text::{Fragment, Rect, Word};
use crate::image::{PreparedImage, ReaderNeeds, Rotation, encode_pgm};
use crate::metrics;
use crate::ports::{PageLayout, Reading, Script, TextReader};
use crate::setup::{Finding, Setup};

const INSTALL: &str = "sudo apt-get install tesseract-ocr tesseract-ocr-eng tesseract-ocr-kor tesseract-ocr-osd";

pub struct TesseractReader {
    program: Program,
}

impl TesseractReader {
    pub fn new(program: impl Into<String>) -> Self {
        Self {
            program: Program {
                program: program.into(),
                install_hint: "install it with `sudo apt-get install tesseract-ocr tesseract-ocr-eng tesseract-ocr-kor tesseract-ocr-osd`",
                timeout: Duration::from_secs(120),
            },
        }
    }

    /// Kills a call that takes longer than `timeout` (the work is retried).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.program.timeout = timeout;
        self
    }

    async fn run(&self, page: &PreparedImage, args: &[&str]) -> Result<super::process::Output, PortError> {
        let mut full = vec!["stdin", "stdout"];
        full.extend_from_slice(args);
        // Storytime runs several readers at once; one thread each keeps them
        // from fighting over the cores.
        self.program.run(&full, &[("OMP_THREAD_LIMIT", "1")], encode_pgm(&page.gray)).await
    }
}

/// Version 5 or newer, with the English, Korean and orientation data.
#[async_trait]
impl Setup for TesseractReader {
    async fn check(&self) -> Vec<Finding> {
        let program = &self.program.program;
        let Ok(version) = self.program.output(&["--version"]).await else {
            return vec![Finding::missing("tesseract", format!("`{program}` not found"), INSTALL)];
        };
        let version = version.lines().next().unwrap_or("").trim().to_owned();
        let major: u32 = version
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.split('.').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if major < 5 {
            return vec![Finding::missing("tesseract", format!("{version}: version 5 or newer is needed"), INSTALL)];
        }
        let langs = self.program.output(&["--list-langs"]).await.unwrap_or_default();
        let have: Vec<&str> = langs.lines().skip(1).map(str::trim).collect();
        let lacking: Vec<&str> = ["eng", "kor", "osd"].into_iter().filter(|l| !have.contains(l)).collect();
        if lacking.is_empty() {
            return vec![Finding::ok("tesseract", format!("{version} with eng, kor, osd"))];
        }
        let packages: Vec<String> = lacking.iter().map(|l| format!("tesseract-ocr-{l}")).collect();
        vec![Finding::missing(
            "tesseract",
            format!("{version}, but language data is missing: {}", lacking.join(", ")),
            format!("sudo apt-get install {}", packages.join(" ")),
        )]
    }
}

#[async_trait]
impl TextReader for TesseractReader {
    fn engine(&self) -> &'static str {
        "tesseract"
    }

    fn needs(&self) -> ReaderNeeds {
        ReaderNeeds { text_height: 22.0, max_side: 8000 }
    }

    async fn detect_layout(&self, page: &PreparedImage) -> Result<Option<PageLayout>, PortError> {
        metrics::engine_call("tesseract", self.detect(page)).await
    }

    async fn read(&self, page: &PreparedImage, script: Script) -> Result<Reading, PortError> {
        metrics::engine_call("tesseract", self.read_text(page, script)).await
    }
}

impl TesseractReader {
    async fn detect(&self, page: &PreparedImage) -> Result<Option<PageLayout>, PortError> {
        let out = self.run(page, &["--psm", "0"]).await?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.success {
            // "Too few characters" is Tesseract's way of saying it cannot tell.
            if out.stderr.contains("Too few characters") || out.stderr.contains("Skipping") {
                return Ok(None);
            }
            if out.stderr.contains("osd.traineddata") {
                return Err(PortError::rejected(
                    "tesseract",
                    "orientation data is missing; install it with `sudo apt-get install tesseract-ocr-osd`",
                ));
            }
            return Ok(None);
        }
        Ok(parse_osd(&text))
    }

    async fn read_text(&self, page: &PreparedImage, script: Script) -> Result<Reading, PortError> {
        // Automatic segmentation copes best with Latin pages that mix text
        // and pictures; on Hangul it mistakes parts of syllables for
        // diacritics and breaks lines apart, so those pages are read as one
        // block of text.
        let (lang, psm) = match script {
            Script::Latin => ("eng", "3"),
            Script::Hangul => ("kor+eng", "6"),
        };
        let out = self.run(page, &["-l", lang, "--psm", psm, "tsv"]).await?;
        if !out.success {
            let detail = out.stderr.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("failed").to_owned();
            if out.stderr.contains("Failed loading language") || out.stderr.contains("traineddata") {
                return Err(PortError::rejected(
                    "tesseract",
                    format!(
                        "language data for `{lang}` is missing ({detail}); install `tesseract-ocr-eng` and `tesseract-ocr-kor`"
                    ),
                ));
            }
            return Err(PortError::rejected("tesseract", detail));
        }
        let raw = String::from_utf8_lossy(&out.stdout).into_owned();
        Ok(Reading { fragments: parse_tsv(&raw), raw })
    }
}

/// Reads `Rotate`, `Orientation confidence` and `Script` from OSD output.
fn parse_osd(text: &str) -> Option<PageLayout> {
    let field = |name: &str| {
        text.lines().find_map(|l| l.strip_prefix(name).map(|v| v.trim_start_matches(':').trim().to_owned()))
    };
    let rotation = Rotation::from_degrees(field("Rotate")?.parse().ok()?)?;
    let confidence = field("Orientation confidence")?.parse().ok()?;
    let script = match field("Script")?.as_str() {
        "Hangul" | "Korean" => Script::Hangul,
        _ => Script::Latin,
    };
    Some(PageLayout { rotation, script, confidence })
}

/// Groups TSV word rows (level 5) into fragments by block, paragraph and
/// line, in Tesseract's order.
fn parse_tsv(tsv: &str) -> Vec<Fragment> {
    let mut fragments: Vec<Fragment> = Vec::new();
    let mut current: Option<(u32, u32, u32)> = None;
    for row in tsv.lines().skip(1) {
        let cols: Vec<&str> = row.split('\t').collect();
        if cols.len() < 12 || cols[0] != "5" {
            continue;
        }
        let text = cols[11].trim();
        let num = |i: usize| cols[i].parse::<i64>().unwrap_or(0);
        let confidence: f32 = cols[10].parse().unwrap_or(-1.0);
        if text.is_empty() || confidence < 0.0 {
            continue;
        }
        let key = (num(2) as u32, num(3) as u32, num(4) as u32);
        let word = Word {
            text: text.to_owned(),
            confidence,
            bbox: Rect { left: num(6) as i32, top: num(7) as i32, width: num(8) as i32, height: num(9) as i32 },
        };
        if current == Some(key) {
            fragments.last_mut().expect("current fragment exists").words.push(word);
        } else {
            current = Some(key);
            fragments.push(Fragment { words: vec![word], block: key.0, paragraph: key.1 });
        }
    }
    fragments
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn osd_output_is_parsed() {
        let out = "Page number: 0\nOrientation in degrees: 180\nRotate: 180\nOrientation confidence: 7.62\nScript: Latin\nScript confidence: 3.21\n";
        let l = parse_osd(out).unwrap();
        assert_eq!(l.rotation, Rotation::Cw180);
        assert_eq!(l.script, Script::Latin);
        assert!((l.confidence - 7.62).abs() < 1e-4);
        assert_eq!(parse_osd("Script: Hangul\nRotate: 0\nOrientation confidence: 3\n").unwrap().script, Script::Hangul);
        assert!(parse_osd("garbage").is_none());
    }

    #[test]
    fn tsv_words_are_grouped_into_fragments() {
        let tsv = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n\
            1\t1\t0\t0\t0\t0\t0\t0\t100\t100\t-1\t\n\
            5\t1\t1\t1\t1\t1\t10\t20\t30\t15\t96.5\tOnce\n\
            5\t1\t1\t1\t1\t2\t45\t20\t30\t15\t91\tupon\n\
            5\t1\t2\t1\t1\t1\t10\t60\t20\t15\t88\ta\n\
            5\t1\t2\t1\t1\t2\t35\t60\t20\t15\t95\t \n";
        let f = parse_tsv(tsv);
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].words.iter().map(|w| w.text.as_str()).collect::<Vec<_>>(), ["Once", "upon"]);
        assert_eq!(f[1].block, 2);
        assert_eq!(f[0].words[1].bbox, Rect { left: 45, top: 20, width: 30, height: 15 });
    }
}
