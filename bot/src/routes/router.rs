//! The whole HTTP surface in one router.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};

use super::{access, bulk, health, media, page, retrieve, upload, uploads};
use crate::error::ApiError;
use crate::state::AppState;

const MAX_CONCURRENT_UPLOADS: usize = 32;

/// The whole HTTP surface, shared by `storytime serve` and the tests.
pub fn router(state: AppState) -> Router {
    let slack = match &state.slack {
        Some(app) => app.routes(),
        None => Router::new().route("/slack/{*rest}", post(slack_not_configured)),
    };
    Router::new()
        // Each upload body is held in memory while it is checked: bound how
        // many are read at once (the rest wait their turn).
        .route("/upload", post(upload::upload).layer(tower::limit::ConcurrencyLimitLayer::new(MAX_CONCURRENT_UPLOADS)))
        .route("/uploads", post(uploads::expect))
        .route("/retrieve", get(retrieve::retrieve))
        .route("/", get(page::index))
        .route("/app.js", get(page::script))
        .route("/app.css", get(page::style))
        .route("/bulk", post(bulk::bulk).get(bulk::bulk))
        .route(
            "/media/{*key}",
            get(media::media)
                .put(uploads::receive)
                .layer(tower::limit::ConcurrencyLimitLayer::new(MAX_CONCURRENT_UPLOADS)),
        )
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(health::metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .merge(slack)
        .route_layer(axum::middleware::from_fn(access::remember_route))
        // Handlers read bodies themselves, each with its own limit, so that
        // an oversized body gets a JSON answer.
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn(access::log_and_measure))
}

async fn not_found() -> ApiError {
    ApiError::not_found(
        "no_such_path",
        "no such path; the API has /upload, /retrieve and /bulk, and the web page is at /",
    )
}

async fn slack_not_configured() -> ApiError {
    ApiError::not_found(
        "slack_not_configured",
        "Slack is not configured here: set SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this path does not accept that method")
}
