//! `storytime init`: create what the configured backend needs. Running it
//! again changes nothing.

use std::process::ExitCode;

use anyhow::Context;
use storytime_pipeline::settings::Settings;
use storytime_pipeline::wiring;

pub async fn run(settings: Settings) -> anyhow::Result<ExitCode> {
    wiring::build(&settings).context("cannot set up storage")?;
    println!("Storytime is ready in {}", settings.data_dir.display());
    println!("  database   {}", settings.database_path().display());
    println!("  blobs      {}", settings.data_dir.join("blobs").display());
    println!("  outbox     {}", settings.data_dir.join("outbox").display());
    Ok(ExitCode::SUCCESS)
}
