//! `storytime narrate`: read page photos and write one MP3, in-process, with
//! the configured engines and no stored state.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use bytes::Bytes;
use storytime_pipeline::domain::narration_text::truncate_at_sentence;
use storytime_pipeline::image::inspect;
use storytime_pipeline::stages::{read_page, synthesize_book};
use storytime_pipeline::{Language, Speed, StageError};

use crate::app;
use crate::settings::Settings;

pub async fn run(
    settings: Settings,
    images: Vec<PathBuf>,
    out: PathBuf,
    voice: Option<String>,
    speed: Speed,
) -> anyhow::Result<ExitCode> {
    let settings = settings.pipeline;
    let limits = settings.limits;
    if images.len() > limits.max_pages {
        bail!("a book holds at most {} pages (STORYTIME_MAX_PAGES); {} were given", limits.max_pages, images.len());
    }
    let (reader, narrator) = app::engines(&settings).await?;
    let total = images.len();
    let mut texts = Vec::new();
    for (i, path) in images.iter().enumerate() {
        eprintln!("[{}/{total}] reading {}", i + 1, path.display());
        let bytes = Bytes::from(std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?);
        inspect(&bytes, &limits.image).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let decoded = storytime_pipeline::image::decode(&bytes, &limits.image)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let page = read_page(reader.as_ref(), decoded).await.map_err(|e| stage_error(path, e))?;
        let r = &page.reading;
        let words = r.text.split_whitespace().count();
        eprintln!(
            "[{}/{total}] {words} words, {} (turned {}°, confidence {:.0})",
            i + 1,
            r.language.code(),
            r.rotation,
            r.confidence
        );
        if words == 0 {
            eprintln!("[{}/{total}] no text found on {}", i + 1, path.display());
        }
        texts.push(r.text.clone());
    }
    let full: Vec<&str> = texts.iter().map(|t| t.trim()).filter(|t| !t.is_empty()).collect();
    if full.is_empty() {
        eprintln!("No text found on any page; no MP3 written. Try a closer, sharper photo in good light.");
        return Ok(ExitCode::from(3));
    }
    let (text, truncated) = truncate_at_sentence(&full.join("\n"), limits.max_text_chars);
    println!("{text}");
    if truncated {
        eprintln!("The text was cut to {} characters (STORYTIME_MAX_TEXT_CHARS).", limits.max_text_chars);
    }
    let language = Language::detect(&text);
    let voice = narrator.choose_voice(voice.as_deref().or(settings.default_voice.as_deref()), language);
    eprintln!("narrating with voice {}", voice.name);
    let book = synthesize_book(narrator.as_ref(), &text, &voice, speed).await.map_err(|e| stage_error(&out, e))?;
    let mp3 = book.mp3;
    write_atomically(&out, &mp3.bytes)?;
    eprintln!("wrote {} ({:.1} s of audio)", out.display(), mp3.seconds);
    Ok(ExitCode::SUCCESS)
}

fn stage_error(path: &std::path::Path, e: StageError) -> anyhow::Error {
    match e {
        StageError::Permanent(f) => anyhow::anyhow!("{}: {}", path.display(), f.message),
        StageError::Retry(e) => anyhow::anyhow!("{}: {e} (try again)", path.display()),
    }
}

fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    let tmp = dir.join(format!(".{}.part", path.file_name().and_then(|n| n.to_str()).unwrap_or("out")));
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
