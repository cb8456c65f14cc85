//! The JSON shape of a job in the original API (PascalCase fields, links
//! as `OrigURL` and `DownURL`).

use serde::Serialize;
use storytime_pipeline::Job;
use storytime_pipeline::domain::timings::WordTiming;
use storytime_pipeline::stages::Links;

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct JobView {
    #[serde(rename = "ID")]
    pub id: String,
    pub timestamp: String,
    #[serde(rename = "ContentID")]
    pub content_id: String,
    pub name: String,
    pub content_type: String,
    #[serde(rename = "OrigURL")]
    pub orig_url: String,
    #[serde(rename = "DownURL")]
    pub down_url: String,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub need_noti: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub need_dup_chk: Option<bool>,
    /// True when the upload matched an earlier one and this is that job.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub voice: Option<String>,
    /// Length of the narration in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<f32>,
    /// The reading speed, 0.5 to 1.5.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speed: Option<f32>,
    /// When each word of `Text` is spoken, in reading order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub words: Option<Vec<WordView>>,
    /// Where each page's words begin in `Words` and in the audio.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pages: Option<Vec<PageView>>,
    /// The word timings as WebVTT captions.
    #[serde(rename = "CaptionsURL", skip_serializing_if = "Option::is_none")]
    pub captions_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl JobView {
    pub fn new(job: &Job, links: &Links) -> Self {
        let first = job.pages.first();
        Self {
            id: job.id.to_string(),
            timestamp: job.timestamp.clone(),
            content_id: first.map(|p| p.content_id.to_string()).unwrap_or_default(),
            name: job.name.clone(),
            content_type: first.map(|p| p.content_type.clone()).unwrap_or_default(),
            orig_url: links.original.clone(),
            down_url: links.audio.clone().unwrap_or_default(),
            status: job.status.as_str(),
            need_noti: None,
            need_dup_chk: None,
            duplicate: None,
            text: None,
            language: None,
            voice: None,
            duration: None,
            speed: None,
            words: None,
            pages: None,
            captions_url: links.captions.clone(),
            message: None,
        }
    }

    /// The view with the results: text, language, voice and duration.
    pub fn with_results(mut self, job: &Job) -> Self {
        self.text = Some(job.text.clone().unwrap_or_default());
        self.language = job.language.map(|l| l.code());
        self.voice = job.audio.as_ref().map(|a| a.voice.clone());
        self.duration = job.audio.as_ref().map(|a| a.seconds);
        self.speed = Some(job.speed.unwrap_or_default().factor());
        if let Some(audio) = job.audio.as_ref().filter(|a| !a.words.is_empty()) {
            self.words = Some(audio.words.iter().map(WordView::from).collect());
            self.pages = Some(page_starts(job, &audio.words));
        }
        if job.status == storytime_pipeline::JobStatus::NoText {
            self.message = Some("No text was found on the page.".into());
        }
        if job.truncated {
            self.message = Some("The text was long; the narration stops at the length limit.".into());
        }
        self
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct WordView {
    pub text: String,
    pub start_ms: u32,
    pub end_ms: u32,
}

impl From<&WordTiming> for WordView {
    fn from(w: &WordTiming) -> Self {
        Self { text: w.text.clone(), start_ms: w.start_ms, end_ms: w.end_ms }
    }
}

/// Where one page's words begin: the index of its first word in `Words`
/// and the time it is spoken.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PageView {
    pub page: usize,
    pub first_word: usize,
    pub start_ms: u32,
}

/// The pages' starts: each page with text contributes its words to the
/// narrated text in order (a cut at the length limit ends the count).
fn page_starts(job: &Job, words: &[WordTiming]) -> Vec<PageView> {
    let mut out = Vec::new();
    let mut first = 0;
    for (i, page) in job.pages.iter().enumerate() {
        let count = page.reading.as_ref().map_or(0, |r| r.text.split_whitespace().count());
        if count == 0 {
            continue;
        }
        let Some(word) = words.get(first) else { break };
        out.push(PageView { page: i + 1, first_word: first, start_ms: word.start_ms });
        first += count;
    }
    out
}
