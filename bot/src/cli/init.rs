//! `storytime init`: create what the configured backends need, asking each
//! adapter in turn. Running it again changes nothing.

use std::process::ExitCode;

use crate::app;
use crate::settings::Settings;

pub async fn run(settings: Settings) -> anyhow::Result<ExitCode> {
    let (items, failure) = app::setup(&settings).await;
    if let Some(e) = failure {
        return Err(e.context("cannot set up storage"));
    }
    println!("Storytime's storage and resources:");
    for item in items {
        for ensured in item.ensure().await? {
            println!("  {ensured}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
