//! The narrate stage: join the pages' text, pick the voice for its
//! language, synthesize it in chunks the narrator accepts, and store one
//! MP3, shared by every job with the same text and voice.

use bytes::Bytes;

use super::Pipeline;
use crate::audio::{self, Mp3};
use crate::domain::narration_text::{split_for_narration, truncate_at_sentence};
use crate::domain::timings::{self, Span, WordTiming};
use crate::domain::{
    AudioRef, BlobKey, ContentId, Failure, JobId, JobStatus, Language, Snapshot, Speed, StageError, StageMessage,
};
use crate::ports::{Narrator, Reusable, Speech, Voice};

impl Pipeline {
    /// Narrates the job, working from `snapshot` (the job as the message
    /// carried it) when there is one.
    pub(super) async fn narrate(&self, job_id: &JobId, snapshot: Option<Snapshot>) -> Result<(), StageError> {
        let from_snapshot = snapshot.is_some();
        let Some(job) = self.job_for(job_id, snapshot, "narrate").await? else { return Ok(()) };
        match job.status {
            JobStatus::Failed => return Ok(()),
            // Finished before: a repeated message, or a crash before the
            // deliveries were queued. Queue whatever is still pending.
            JobStatus::Done | JobStatus::NoText => return self.enqueue_deliveries(&job).await,
            _ => {}
        }
        if !job.all_pages_read() {
            for (page, _) in job.pages.iter().enumerate().filter(|(_, p)| p.reading.is_none()) {
                self.send(&StageMessage::read(job.id.clone(), page)).await?;
            }
            return Ok(());
        }
        let full: Vec<&str> = job
            .pages
            .iter()
            .filter_map(|p| p.reading.as_ref().map(|r| r.text.trim()))
            .filter(|t| !t.is_empty())
            .collect();
        if full.is_empty() {
            let finished = self
                .update_job_from(job_id, Some(job.clone()), None, |j| {
                    (!j.status.is_finished()).then(|| j.status = JobStatus::NoText)
                })
                .await?;
            if let Some((job, ())) = finished {
                tracing::info!(job = %job.id, "no text on the pages");
                self.job_finished(&job);
                self.enqueue_deliveries(&job).await?;
            }
            return Ok(());
        }
        let (text, truncated) = truncate_at_sentence(&full.join("\n"), self.config.limits.max_text_chars);
        let language = Language::detect(&text);
        let voice = self.narrator.choose_voice(job.voice.as_deref(), language);
        let speed = job.speed.unwrap_or_default();
        self.report(&job, crate::ports::Progress::Narrating).await;
        let key = narration_key(self.narrator.engine(), &voice, speed, &text);

        // Narrations from before word timings were kept are made again.
        let cached = match (job.fresh, self.jobs.narration(&key).await?) {
            (false, Some(audio)) if !audio.words.is_empty() && self.blobs.exists(&audio.key).await? => Some(audio),
            _ => None,
        };
        let made = cached.is_none();
        let audio = match cached {
            Some(audio) => {
                tracing::info!(job = %job_id, "reusing an earlier narration of the same text");
                audio
            }
            None => {
                let Book { mp3, words } = synthesize_book(self.narrator.as_ref(), &text, &voice, speed).await?;
                // The stored name is random: knowing a page's text does not
                // give the address of its narration. The narration is found
                // again through its key in the job store.
                let stored = ContentId::combine([key.as_str(), &uuid::Uuid::new_v4().to_string()]);
                let audio = AudioRef {
                    key: BlobKey::audio(&stored),
                    seconds: mp3.seconds,
                    voice: voice.name.clone(),
                    bytes: mp3.bytes.len() as u64,
                    captions: Some(BlobKey::captions(&stored)),
                    words,
                };
                if let Some(captions) = &audio.captions {
                    self.blobs.put(captions, Bytes::from(timings::webvtt(&audio.words))).await?;
                }
                self.blobs.put(&audio.key, Bytes::from(mp3.bytes)).await?;
                audio
            }
        };
        // A new narration is remembered for its key in the same write.
        let remember = made.then_some(Reusable::Narration(&key, &audio));
        let finished = self
            .update_job_from(job_id, Some(job), remember, |j| {
                if j.status.is_finished() {
                    return None;
                }
                j.text = Some(text.clone());
                j.language = Some(language);
                j.truncated = truncated;
                j.audio = Some(audio.clone());
                j.status = JobStatus::Done;
                j.last_error = None;
                Some(())
            })
            .await?;
        match finished {
            Some((job, ())) => {
                tracing::info!(job = %job.id, seconds = audio.seconds, voice = %audio.voice, "narration ready");
                self.job_finished(&job);
                self.enqueue_deliveries(&job).await?;
            }
            // A repeated message whose copy was older than the job: the job
            // finished meanwhile, and its deliveries may not be queued yet.
            None if from_snapshot => {
                if let Some(job) = self.jobs.get(job_id).await?
                    && job.status.is_finished()
                    && job.status != JobStatus::Failed
                {
                    self.enqueue_deliveries(&job).await?;
                }
            }
            None => {}
        }
        Ok(())
    }
}

/// The key of a narration: the same engine, voice, speed and text give
/// the same audio. Normal speed adds nothing, so keys made before speeds
/// existed still match.
fn narration_key(engine: &str, voice: &Voice, speed: Speed, text: &str) -> ContentId {
    if speed.is_normal() {
        ContentId::combine([engine, voice.name.as_str(), text])
    } else {
        ContentId::combine([engine, voice.name.as_str(), &format!("speed {speed}"), text])
    }
}

/// A narrated book: the MP3 and when each word of the text is spoken.
pub struct Book {
    pub mp3: Mp3,
    pub words: Vec<WordTiming>,
}

/// Synthesizes a whole text with a narrator into one MP3, splitting it
/// into chunks the narrator accepts, and times its words. Shared by the
/// narrate stage and `storytime narrate`.
pub async fn synthesize_book(
    narrator: &dyn Narrator,
    text: &str,
    voice: &Voice,
    speed: Speed,
) -> Result<Book, StageError> {
    let chunks = split_for_narration(text, narrator.max_chunk_chars());
    let mut speech = Vec::with_capacity(chunks.len());
    for chunk in &chunks {
        speech.push(narrator.synthesize(chunk, voice, speed).await?);
    }
    if speech.is_empty() {
        return Err(StageError::Permanent(Failure::new("no_text", "There is no text to narrate.")));
    }
    let text = text.to_owned();
    tokio::task::spawn_blocking(move || {
        let mp3 = audio::join(&speech)?;
        Ok::<_, String>(Book { words: time_words(&text, &chunks, &speech, &mp3.offsets_ms), mp3 })
    })
    .await
    .map_err(|e| StageError::retry("encoding", format!("it stopped: {e}")))?
    .map_err(|e| StageError::Permanent(Failure::internal(format!("the audio could not be encoded ({e})"))))
}

/// Places the text's words on the joined audio, chunk by chunk: each
/// chunk's words on its own sounding spans (the engine's, or those found
/// in its samples). Chunks hold the text's words in order; should they
/// not, the text's words are laid over all the spans at once.
fn time_words(text: &str, chunks: &[String], speech: &[Speech], offsets_ms: &[u32]) -> Vec<WordTiming> {
    let spans_of =
        |s: &Speech| if s.spans.is_empty() { timings::sounding(&s.samples, s.sample_rate) } else { s.spans.clone() };
    let mut out = Vec::new();
    for ((chunk, s), offset) in chunks.iter().zip(speech).zip(offsets_ms) {
        out.extend(
            timings::place(&timings::words(chunk), &spans_of(s), s.duration_ms()).into_iter().map(|w| WordTiming {
                start_ms: w.start_ms + offset,
                end_ms: w.end_ms + offset,
                text: w.text,
            }),
        );
    }
    let expected = timings::words(text);
    if out.len() == expected.len() && out.iter().zip(&expected).all(|(w, e)| w.text == *e) {
        return out;
    }
    let mut all = Vec::new();
    for (s, offset) in speech.iter().zip(offsets_ms) {
        all.extend(spans_of(s).into_iter().map(|p| Span { start_ms: p.start_ms + offset, end_ms: p.end_ms + offset }));
    }
    let end = offsets_ms.last().zip(speech.last()).map_or(0, |(o, s)| o + s.duration_ms());
    timings::place(&expected, &all, end)
}
