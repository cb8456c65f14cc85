//! `GET /`: the web page, built into the binary: photograph pages, follow
//! the reading, and listen with the spoken word highlighted. Plain HTML,
//! CSS and one script, served with a strict content security policy (no
//! inline script, nothing from other sites but the media links).

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::upload::book_bytes;
use crate::state::AppState;

const INDEX: &str = include_str!("page/index.html");
const SCRIPT: &str = include_str!("page/app.js");
const STYLE: &str = include_str!("page/app.css");

/// Media may come from a CDN on AWS; everything else from this server.
const POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob:; \
media-src 'self' https: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
frame-ancestors 'none'";

/// With a cloud store, a large photo is sent to the store's upload link.
const CLOUD_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob:; \
media-src 'self' https: blob:; connect-src 'self' https:; object-src 'none'; base-uri 'none'; \
form-action 'self'; frame-ancestors 'none'";

/// The page, told how large a photo and a whole book's photos may be in
/// one request, so it can make photos smaller rather than be refused.
pub async fn index(State(state): State<AppState>) -> Response {
    let limits = &state.pipeline.config.limits;
    let book = state.request_limit.map_or(book_bytes(limits), |front| front.min(book_bytes(limits)));
    let body = format!("<body data-photo-bytes=\"{}\" data-book-bytes=\"{book}\">", limits.image.max_bytes);
    let mut page = asset("text/html; charset=utf-8", INDEX.replacen("<body>", &body, 1));
    if state.media_links.is_none() {
        page.headers_mut().insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CLOUD_POLICY));
    }
    page
}

pub async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

pub async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

fn asset(content_type: &'static str, body: impl IntoResponse) -> Response {
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    // The page changes with the binary: revalidate, but cache briefly.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
