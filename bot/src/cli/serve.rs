use std::process::ExitCode;
use storytime_pipeline::settings::Settings;
pub async fn run(_settings: Settings) -> anyhow::Result<ExitCode> {
    Ok(ExitCode::SUCCESS)
}
