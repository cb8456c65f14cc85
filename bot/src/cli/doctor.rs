//! `storytime doctor`: what is present, what is missing, and how to fix it.
//! Each configured adapter answers for itself; the settings that belong to
//! no adapter are checked here.

use std::process::ExitCode;

use storytime_pipeline::setup::{Finding, Verdict};

use crate::app;
use crate::settings::Settings;

pub async fn run(settings: Settings) -> anyhow::Result<ExitCode> {
    let (items, failure) = app::setup(&settings).await;
    let mut findings = Vec::new();
    if let Some(e) = failure {
        findings.push(Finding::missing(
            "storage",
            format!("{e:#}"),
            "set STORYTIME_DATA_DIR to a writable directory, or check the backend settings",
        ));
    }
    for item in &items {
        findings.extend(item.check().await);
    }
    findings.extend([mp3_encoder(), listen(&settings), api_keys(&settings)]);
    if let Some(source) = &settings.secrets {
        findings.push(Finding::ok("secrets", source.clone()));
    }
    if settings.slack.is_none() {
        findings.push(Finding::note(
            "slack",
            "not configured: only the REST API is served",
            "create the app from manifest.yml and set SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN (docs/slack.md)",
        ));
    }
    for (name, closest) in &settings.unknown {
        findings.push(Finding::note(
            "settings",
            format!("{name} is not a Storytime setting"),
            format!("did you mean {closest}?"),
        ));
    }
    let mut missing = 0;
    for f in &findings {
        let mark = match f.verdict {
            Verdict::Ok => "ok     ",
            Verdict::Note => "note   ",
            Verdict::Missing => {
                missing += 1;
                "MISSING"
            }
        };
        println!("{mark} {:<12} {}", f.what, f.detail);
        if let Some(fix) = &f.fix {
            println!("        {:<12} fix: {fix}", "");
        }
    }
    if missing > 0 {
        println!("\n{missing} problem(s) found.");
        Ok(ExitCode::FAILURE)
    } else {
        println!("\nEverything Storytime needs is here.");
        Ok(ExitCode::SUCCESS)
    }
}

fn mp3_encoder() -> Finding {
    match storytime_pipeline::audio::encode(&[0; 2205], 22050) {
        Ok(bytes) if !bytes.is_empty() => Finding::ok("mp3", "LAME encoder built in"),
        Ok(_) | Err(_) => Finding::missing("mp3", "the built-in MP3 encoder does not work", "rebuild storytime"),
    }
}

fn listen(settings: &Settings) -> Finding {
    Finding::ok("http", format!("serves on {}, links start with {}", settings.http.listen, settings.http.public_url()))
}

fn api_keys(settings: &Settings) -> Finding {
    let http = &settings.http;
    if !http.api_keys.is_empty() {
        Finding::ok("api keys", format!("{} key(s) required on /upload, /retrieve, /bulk", http.api_keys.len()))
    } else if http.listen.ip().is_loopback() {
        Finding::ok("api keys", "none set; the API is open, which is fine on loopback")
    } else {
        Finding::note(
            "api keys",
            "none set, and the API listens beyond this machine",
            "set STORYTIME_API_KEYS=key1,key2",
        )
    }
}
