//! `GET /healthz` and `GET /metrics`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::request::bearer;
use crate::error::ApiError;
use crate::state::AppState;

/// Each part the process needs, and whether it works: the storage (every
/// queue and the job store answer), the engines, the workers this process
/// runs, and the Slack connection in Socket Mode. 503 when one is down.
/// The body shows queue depths and job counts too; it names what is down,
/// never an internal error (those go to the log).
pub async fn healthz(State(state): State<AppState>) -> Response {
    let storage = state.storage.read(&state.pipeline).await;
    let mut healthy = true;
    let mut parts = serde_json::Map::new();
    let mut queues = serde_json::Map::new();
    for (stage, d) in storage.depths.iter().filter_map(|(s, d)| Some((s, d.as_ref()?))) {
        queues.insert(stage.name().into(), json!({ "waiting": d.waiting, "in_flight": d.in_flight, "dead": d.dead }));
    }
    let jobs: serde_json::Map<_, _> = storage.counts.iter().flatten().map(|(s, n)| (s.clone(), json!(n))).collect();
    let storage_ok = storage.answered();
    healthy &= storage_ok;
    parts.insert("storage".into(), json!(if storage_ok { "ok" } else { "unavailable" }));
    if let Some(engines) = &state.engines {
        let mut status = serde_json::Map::new();
        for (name, ok) in engines.status().await {
            healthy &= ok;
            status.insert(name, json!(if ok { "ok" } else { "missing" }));
        }
        parts.insert("engines".into(), status.into());
    }
    if let Some(workers) = &state.workers {
        let mut status = serde_json::Map::new();
        for (stage, running) in workers.status() {
            healthy &= running;
            status.insert(stage.name().into(), json!(if running { "running" } else { "stopped" }));
        }
        parts.insert("workers".into(), status.into());
    }
    if let Some(connection) = state.slack.as_ref().and_then(|s| s.socket_mode_status()) {
        healthy &= connection == "connected";
        parts.insert("slack".into(), json!(connection));
    }
    let status = if healthy { "ok" } else { "unavailable" };
    let body = json!({ "status": status, "parts": parts, "queues": queues, "jobs": jobs });
    let code = if healthy { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, Json(body)).into_response()
}

/// Prometheus text format: the recorded metrics (see
/// `storytime_pipeline::metrics`), with the queue gauges refreshed now, and
/// the older gauges of jobs by status and messages by stage. Behind a
/// bearer token when `STORYTIME_METRICS_TOKEN` is set.
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    if let Some(token) = &state.metrics_token {
        bearer(&headers, [token.as_ref()])?;
    }
    let storage = state.storage.read(&state.pipeline).await;
    let mut out = String::from("# HELP storytime_jobs Jobs by status.\n# TYPE storytime_jobs gauge\n");
    for (status, n) in storage.counts.iter().flatten() {
        out.push_str(&format!("storytime_jobs{{status=\"{status}\"}} {n}\n"));
    }
    out.push_str(
        "# HELP storytime_queue_messages Messages by stage and state.\n# TYPE storytime_queue_messages gauge\n",
    );
    for (stage, d) in storage.depths.iter().filter_map(|(s, d)| Some((*s, d.as_ref()?))) {
        storytime_pipeline::metrics::queue_depth(stage, d);
        for (kind, n) in [("waiting", d.waiting), ("in_flight", d.in_flight), ("dead", d.dead)] {
            out.push_str(&format!("storytime_queue_messages{{stage=\"{stage}\",state=\"{kind}\"}} {n}\n"));
        }
    }
    if let Some(recorder) = &state.metrics {
        out.push_str(&recorder.render());
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response())
}
