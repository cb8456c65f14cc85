//! `GET /healthz` and `GET /metrics`.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use storytime_pipeline::Stage;

use crate::state::AppState;

/// Healthy when the job store and every queue answer; the body shows queue
/// depths and job counts.
pub async fn healthz(State(state): State<AppState>) -> Response {
    let p = &state.pipeline;
    let mut queues = serde_json::Map::new();
    for stage in Stage::ALL {
        match p.queue.depth(stage).await {
            Ok(d) => {
                queues.insert(
                    stage.name().into(),
                    json!({ "waiting": d.waiting, "in_flight": d.in_flight, "dead": d.dead }),
                );
            }
            Err(e) => return unhealthy(format!("queue {stage}: {e}")),
        }
    }
    match p.jobs.counts().await {
        Ok(counts) => {
            let jobs: serde_json::Map<_, _> = counts.into_iter().map(|(s, n)| (s, json!(n))).collect();
            Json(json!({ "status": "ok", "queues": queues, "jobs": jobs })).into_response()
        }
        Err(e) => unhealthy(format!("job store: {e}")),
    }
}

fn unhealthy(detail: String) -> Response {
    tracing::error!(%detail, "health check failed");
    (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "unavailable", "detail": detail }))).into_response()
}

/// Prometheus text format: jobs by status, messages by stage and state.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let p = &state.pipeline;
    let mut out = String::from("# HELP storytime_jobs Jobs by status.\n# TYPE storytime_jobs gauge\n");
    if let Ok(counts) = p.jobs.counts().await {
        for (status, n) in counts {
            out.push_str(&format!("storytime_jobs{{status=\"{status}\"}} {n}\n"));
        }
    }
    out.push_str(
        "# HELP storytime_queue_messages Messages by stage and state.\n# TYPE storytime_queue_messages gauge\n",
    );
    for stage in Stage::ALL {
        if let Ok(d) = p.queue.depth(stage).await {
            for (kind, n) in [("waiting", d.waiting), ("in_flight", d.in_flight), ("dead", d.dead)] {
                out.push_str(&format!("storytime_queue_messages{{stage=\"{stage}\",state=\"{kind}\"}} {n}\n"));
            }
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
