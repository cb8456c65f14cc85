//! Logs and metrics, set up first thing by every command.
//!
//! Logs go to stderr, filtered by `RUST_LOG` (default: info for Storytime,
//! warnings for libraries), as plain text or one JSON object per line with
//! the current span's fields (a stage's job, stage and attempt; a request's
//! route and id), ready for CloudWatch Logs Insights or OpenSearch.
//!
//! Metrics go to a Prometheus recorder, read at `/metrics`, or on Lambda to
//! CloudWatch's embedded metric format: JSON lines in the function's log,
//! which CloudWatch turns into metrics. Their names are in
//! `storytime_pipeline::metrics`.

use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use storytime_pipeline::metrics;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

use crate::settings::{LogFormat, TelemetrySettings};

/// The Prometheus recorder's handle, once installed.
static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// Sets up logging. Keep what it returns until the process ends: dropping
/// it writes out the lines still on their way.
///
/// Outside Lambda a thread of its own writes the lines, in batches, so a
/// request or a stage never waits for stderr (a file, a pipe to journald, a
/// terminal): at thousands of requests a second, one `write(2)` per access
/// log line on the request path cost a fifth of the Slack acknowledgements'
/// throughput (docs/benchmarks.md). Nothing is dropped: when the writer
/// falls behind by many lines, loggers wait for it. On Lambda lines are
/// written at once, as the function may be frozen right after it answers.
#[must_use = "dropping the guard stops the log writer"]
pub fn init_logs(settings: &TelemetrySettings) -> LogGuard {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .and_then(|v| EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| EnvFilter::new("warn,storytime_bot=info,storytime_pipeline=info,storytime=info"));
    let (writer, guard) = if settings.lambda {
        (BoxMakeWriter::new(std::io::stderr), None)
    } else {
        let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
            .lossy(false)
            .thread_name("log-writer")
            .finish(std::io::BufWriter::new(std::io::stderr()));
        (BoxMakeWriter::new(writer), Some(guard))
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(!settings.lambda && std::io::stderr().is_terminal())
        .with_writer(writer);
    let _ = match settings.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).with_span_list(false).try_init(),
    };
    LogGuard { _writer: guard }
}

/// Keeps the log writer running; see [`init_logs`].
pub struct LogGuard {
    _writer: Option<tracing_appender::non_blocking::WorkerGuard>,
}

/// Installs the Prometheus recorder for this process (once; later calls
/// return the same handle), describes every metric and keeps the recorder
/// tidy. `None` when metrics are off.
pub fn prometheus(settings: &TelemetrySettings) -> Option<PrometheusHandle> {
    if !settings.metrics {
        return None;
    }
    let handle = PROMETHEUS.get_or_init(|| {
        let recorder =
            PrometheusBuilder::new().set_buckets(metrics::BUCKETS).expect("the buckets are not empty").build_recorder();
        let handle = recorder.handle();
        if ::metrics::set_global_recorder(recorder).is_ok() {
            metrics::describe(env!("CARGO_PKG_VERSION"));
        }
        let upkeep = handle.clone();
        std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_secs(5));
                    upkeep.run_upkeep();
                }
            })
            .expect("a thread for the metrics' upkeep");
        handle
    });
    Some(handle.clone())
}

/// The Prometheus recorder's handle, if this process installed one.
pub fn installed_prometheus() -> Option<PrometheusHandle> {
    PROMETHEUS.get().cloned()
}

/// On Lambda: installs the embedded-metric-format recorder, whose
/// collected metrics [`flush_lambda_metrics`] writes to the log.
#[cfg(feature = "aws")]
pub fn lambda_metrics(settings: &TelemetrySettings, function: &str) {
    if !settings.metrics {
        return;
    }
    match metrics_cloudwatch_embedded::Builder::new()
        .cloudwatch_namespace("Storytime")
        .with_dimension("function", function.to_owned())
        .init()
    {
        Ok(collector) => {
            let _ = LAMBDA.set(collector);
            metrics::describe(env!("CARGO_PKG_VERSION"));
        }
        Err(e) => tracing::warn!(error = %e, "metrics are off: the embedded metric format recorder did not start"),
    }
}

#[cfg(feature = "aws")]
static LAMBDA: OnceLock<&'static metrics_cloudwatch_embedded::Collector> = OnceLock::new();

/// Writes the metrics collected since the last flush as embedded-metric-
/// format lines on stdout (after each Lambda invocation).
#[cfg(feature = "aws")]
pub fn flush_lambda_metrics() {
    if let Some(collector) = LAMBDA.get()
        && let Err(e) = collector.flush(std::io::stdout())
    {
        tracing::warn!(error = %e, "could not write the invocation's metrics");
    }
}
