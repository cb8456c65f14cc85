//! `storytime worker <stage|all>`: workers without the HTTP API, for
//! running stages in their own processes or containers.

use std::process::ExitCode;

use anyhow::bail;
use storytime_pipeline::{Stage, runtime};

use super::signal::stop_on_signal;
use crate::app::{App, Role};
use crate::settings::Settings;

pub async fn run(settings: Settings, stage: &str) -> anyhow::Result<ExitCode> {
    let stages: Vec<Stage> = match stage {
        "all" => Stage::ALL.to_vec(),
        name => match Stage::parse(name) {
            Some(s) => vec![s],
            None => bail!("unknown stage `{name}`: use inbound, read, narrate, deliver or all"),
        },
    };
    let app = App::build(settings, &Role::Workers(stages.clone())).await?;
    let stop = stop_on_signal();
    let names: Vec<&str> = stages.iter().map(|s| s.name()).collect();
    tracing::info!(stages = ?names, "worker running");
    runtime::run(app.handlers.clone(), &stages, app.settings.pipeline.workers.clone(), stop).await;
    Ok(ExitCode::SUCCESS)
}
