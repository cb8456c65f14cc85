//! `storytime serve`: the HTTP API and every stage's workers in one process.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use storytime_pipeline::settings::Settings;
use storytime_pipeline::{Stage, priority, runtime, wiring};
use tokio::sync::watch;

use crate::state::AppState;

/// How long in-flight work may take to finish after a stop signal.
const DRAIN: Duration = Duration::from_secs(20);

pub async fn run(mut settings: Settings) -> anyhow::Result<ExitCode> {
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {} (STORYTIME_LISTEN)", settings.listen))?;
    let addr = listener.local_addr()?;
    settings.listen = addr;
    let wired = wiring::build(&settings).await.context("cannot set up storage")?;
    let slack = super::slack_app(&settings, &wired.pipeline)?;
    let state = AppState {
        pipeline: wired.pipeline.clone(),
        media: wired.media.clone(),
        api_keys: Arc::new(settings.api_keys.clone()),
        slack: slack.clone(),
    };
    if settings.api_keys.is_empty() && !addr.ip().is_loopback() {
        tracing::warn!("the REST API is open to anyone who can reach {addr}; set STORYTIME_API_KEYS");
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    if let (Some(app), Some(token)) = (&slack, settings.slack.as_ref().and_then(|s| s.app_token.clone())) {
        let app = app.clone();
        tokio::spawn(async move {
            if let Err(e) = app.run_socket_mode(&token).await {
                tracing::error!(error = %e, "Socket Mode stopped");
            }
        });
    }
    // The workers run at lower priority: answering requests comes first
    // (see `storytime_pipeline::priority`), the work behind them uses the rest.
    let background = priority::background_runtime().context("cannot start the worker threads")?;
    let workers =
        background.spawn(runtime::run(wired.pipeline, &Stage::ALL, settings.workers.clone(), stop_rx.clone()));
    // Tests and scripts read this line to learn the port.
    println!("Storytime listening on http://{addr}");
    tracing::info!(data_dir = %settings.data_dir.display(), public_url = %settings.public_url(), "serving");

    let mut http_stop = stop_rx.clone();
    let server = axum::serve(listener, crate::router(state)).with_graceful_shutdown(async move {
        let _ = http_stop.wait_for(|stop| *stop).await;
    });
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("stopping: finishing work in progress");
        let _ = stop_tx.send(true);
    });
    server.await.context("the HTTP server failed")?;
    if tokio::time::timeout(DRAIN, workers).await.is_err() {
        tracing::warn!("work still running after {DRAIN:?}; its messages will be retried after a restart");
    }
    background.shutdown_background();
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
