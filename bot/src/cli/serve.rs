//! `storytime serve`: the HTTP API and every stage's workers in one process.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use storytime_pipeline::Stage;
use storytime_pipeline::runtime::{self, priority};

use super::signal::stop_on_signal;
use crate::app::{App, Role};
use crate::settings::Settings;

/// How long the workers may take to drain and hand back their work after a
/// stop signal (see `runtime::DRAIN`) before the process leaves anyway.
const STOP_WITHIN: Duration = Duration::from_secs(30);

pub async fn run(mut settings: Settings) -> anyhow::Result<ExitCode> {
    let listen = settings.http.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen} (STORYTIME_LISTEN)"))?;
    let addr = listener.local_addr()?;
    // Port 0 picks a free port: links must name the one picked.
    settings.http.listen = addr;
    crate::telemetry::prometheus(&settings.telemetry);
    let app = App::build(settings, &Role::Serve).await?;
    let settings = &app.settings;
    if settings.http.api_keys.is_empty() && !addr.ip().is_loopback() {
        tracing::warn!("the REST API is open to anyone who can reach {addr}; set STORYTIME_API_KEYS");
    }

    let stop = stop_on_signal();
    if let (Some(slack), Some(token)) = (&app.slack, settings.slack.as_ref().and_then(|s| s.app_token.clone())) {
        let slack = slack.clone();
        tokio::spawn(async move {
            if let Err(e) = slack.run_socket_mode(&token).await {
                tracing::error!(error = %e, "Socket Mode stopped");
            }
        });
    }
    // The workers run at lower priority: answering requests comes first
    // (see `storytime_pipeline::runtime::priority`), the work behind them
    // uses the rest.
    let background = priority::background_runtime().context("cannot start the worker threads")?;
    let workers = background.spawn(runtime::run(
        app.handlers.clone(),
        &Stage::ALL,
        settings.pipeline.workers.clone(),
        stop.clone(),
    ));
    // Tests and scripts read this line to learn the port.
    println!("Storytime listening on http://{addr}");
    tracing::info!(data_dir = %settings.pipeline.data_dir.display(), public_url = %settings.http.public_url(), "serving");

    crate::listener::serve(listener, app.router(), settings.http.limits.clone(), stop.clone(), STOP_WITHIN)
        .await
        .context("the HTTP server failed")?;
    // The HTTP server has stopped accepting; the workers finish what they
    // hold, or hand it back to the queue (runtime::DRAIN).
    if tokio::time::timeout(STOP_WITHIN, workers).await.is_err() {
        tracing::warn!(
            "the workers did not stop within {STOP_WITHIN:?}; their messages return after the visibility timeout"
        );
    }
    background.shutdown_background();
    Ok(ExitCode::SUCCESS)
}
