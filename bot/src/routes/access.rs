//! The access log and the HTTP metrics: one line per request at info
//! (method, route, status, duration, request id; never the query string,
//! which may hold a link's signature), and per route template a request
//! counter by status and a latency histogram.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use storytime_pipeline::metrics::{HTTP_DURATION, HTTP_REQUESTS};

/// The header that carries a request's id, taken from the client (or a
/// proxy) when it sends one, else made here; echoed in the answer.
const REQUEST_ID: &str = "x-request-id";

/// The route template a request matched, handed from inside the router to
/// [`log_and_measure`], which runs outside it.
#[derive(Clone)]
struct Route(String);

/// Runs inside the router, where the matched route is known (as a route
/// layer, it runs for matched routes only).
pub async fn remember_route(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let mut response = next.run(request).await;
    if let Some(route) = route {
        response.extensions_mut().insert(Route(route));
    }
    response
}

/// Runs around the whole router.
pub async fn log_and_measure(mut request: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = request.method().clone();
    let id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    if let Ok(value) = HeaderValue::from_str(&id) {
        request.headers_mut().insert(REQUEST_ID, value);
    }
    let mut response = next.run(request).await;
    let elapsed = start.elapsed();
    let route = response.extensions().get::<Route>().map_or("unmatched", |r| r.0.as_str()).to_owned();
    let status = response.status().as_u16();
    metrics::counter!(HTTP_REQUESTS, "route" => route.clone(), "status" => status.to_string()).increment(1);
    metrics::histogram!(HTTP_DURATION, "route" => route.clone()).record(elapsed.as_secs_f64());
    tracing::info!(
        %method,
        route,
        status,
        duration_ms = elapsed.as_secs_f64() * 1000.0,
        request_id = %id,
        "http request"
    );
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}
