//! `storytime worker <stage|all>`: workers without the HTTP API, for
//! running stages in their own processes or containers.

use std::process::ExitCode;

use anyhow::{Context, bail};
use storytime_pipeline::settings::Settings;
use storytime_pipeline::{Stage, runtime, wiring};
use tokio::sync::watch;

pub async fn run(settings: Settings, stage: &str) -> anyhow::Result<ExitCode> {
    let stages: Vec<Stage> = match stage {
        "all" => Stage::ALL.to_vec(),
        name => match Stage::parse(name) {
            Some(s) => vec![s],
            None => bail!("unknown stage `{name}`: use inbound, read, narrate, deliver or all"),
        },
    };
    let wired = wiring::build(&settings).await.context("cannot set up storage")?;
    super::slack_app(&settings, &wired.pipeline)?;
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        super::serve::shutdown_signal().await;
        tracing::info!("stopping: finishing work in progress");
        let _ = stop_tx.send(true);
    });
    let names: Vec<&str> = stages.iter().map(|s| s.name()).collect();
    tracing::info!(stages = ?names, "worker running");
    runtime::run(wired.pipeline, &stages, settings.workers.clone(), stop_rx).await;
    Ok(ExitCode::SUCCESS)
}
