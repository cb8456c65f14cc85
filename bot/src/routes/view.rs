//! The JSON shape of a job in the original API (PascalCase fields, links
//! as `OrigURL` and `DownURL`).

use serde::Serialize;
use storytime_pipeline::Job;
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
            message: None,
        }
    }

    /// The view with the results: text, language, voice and duration.
    pub fn with_results(mut self, job: &Job) -> Self {
        self.text = Some(job.text.clone().unwrap_or_default());
        self.language = job.language.map(|l| l.code());
        self.voice = job.audio.as_ref().map(|a| a.voice.clone());
        self.duration = job.audio.as_ref().map(|a| a.seconds);
        if job.status == storytime_pipeline::JobStatus::NoText {
            self.message = Some("No text was found on the page.".into());
        }
        if job.truncated {
            self.message = Some("The text was long; the narration stops at the length limit.".into());
        }
        self
    }
}
