//! A proxy in front of moto that records every AWS request: who signed it
//! (the access key ID, so each process can sign with its own), the service
//! and call, and the IAM actions that call needs. The AWS benchmark counts
//! calls with it; the permission test checks each function's actions
//! against its role in the template.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// One request as the proxy saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The access key ID that signed it.
    pub key: String,
    /// `service:Call`, e.g. `sqs:SendMessageBatch`, `s3:PUT`.
    pub call: String,
    /// The IAM actions the call needs, e.g. `sqs:SendMessage`.
    pub actions: Vec<String>,
}

#[derive(Clone)]
pub struct RecordingProxy {
    pub url: String,
    seen: Arc<Mutex<Vec<Recorded>>>,
}

#[derive(Clone)]
struct Upstream {
    url: String,
    http: reqwest::Client,
    seen: Arc<Mutex<Vec<Recorded>>>,
}

impl RecordingProxy {
    /// A proxy in front of `upstream` on a free loopback port.
    pub async fn start(upstream: &str) -> Self {
        let seen: Arc<Mutex<Vec<Recorded>>> = Default::default();
        let state = Upstream { url: upstream.to_owned(), http: reqwest::Client::new(), seen: seen.clone() };
        let app = axum::Router::new().fallback(forward).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, seen }
    }

    /// Everything recorded so far, which is then forgotten.
    pub fn take(&self) -> Vec<Recorded> {
        std::mem::take(&mut *self.seen.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// [`Self::take`], counted by call.
    pub fn take_counts(&self) -> BTreeMap<String, u64> {
        let mut counts = BTreeMap::new();
        for r in self.take() {
            *counts.entry(r.call).or_default() += 1;
        }
        counts
    }
}

/// The access key ID and service of a SigV4 signature, in the
/// `Authorization` header or, for a presigned link, in its query (the
/// process that signed the link answers for what it allows).
fn signer(headers: &HeaderMap, uri: &axum::http::Uri) -> (String, String) {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
    let presigned = uri
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("X-Amz-Credential=")))
        .map(|c| c.replace("%2F", "/").replace("%2f", "/"));
    let credential = match &presigned {
        Some(c) => c.as_str(),
        None => auth.split("Credential=").nth(1).unwrap_or(""),
    };
    let mut scope = credential.split(['/', ',']);
    let key = scope.next().unwrap_or("").to_owned();
    let service = scope.nth(2).map(str::to_owned);
    (key, service.unwrap_or_else(|| "?".into()))
}

/// `service:Call` and the IAM actions a request needs.
fn classify(
    service: &str,
    headers: &HeaderMap,
    uri: &axum::http::Uri,
    method: &str,
    body: &[u8],
) -> (String, Vec<String>) {
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).and_then(|t| t.rsplit('.').next());
    let form_action = || {
        std::str::from_utf8(body).unwrap_or("").split('&').find_map(|kv| kv.strip_prefix("Action=")).map(str::to_owned)
    };
    let Some(call) = target.map(str::to_owned).or_else(form_action) else {
        // S3's REST calls: by method and whether a key is named.
        let object = uri.path().trim_start_matches('/').contains('/');
        let listing = uri.query().is_some_and(|q| q.contains("list-type") || q.contains("prefix"));
        let action = match (method, object) {
            ("GET" | "HEAD", true) => "GetObject",
            ("PUT", true) => "PutObject",
            ("DELETE", true) => "DeleteObject",
            ("GET", false) if listing => "ListBucket",
            ("HEAD", false) => "ListBucket",
            ("PUT", false) => "CreateBucket",
            _ => "?",
        };
        return (format!("{service}:{method}"), vec![format!("{service}:{action}")]);
    };
    let actions = match (service, call.as_str()) {
        // A batch is authorised as its single call.
        ("sqs", batch) if batch.ends_with("Batch") => vec![format!("sqs:{}", batch.trim_end_matches("Batch"))],
        // A transaction needs the action of each of its items.
        ("dynamodb", "TransactWriteItems") => {
            let items: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            let mut actions: Vec<String> = items["TransactItems"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|i| i.as_object()?.keys().next().cloned())
                .map(|kind| match kind.as_str() {
                    "Put" => "dynamodb:PutItem".to_owned(),
                    "ConditionCheck" => "dynamodb:ConditionCheckItem".to_owned(),
                    "Update" => "dynamodb:UpdateItem".to_owned(),
                    "Delete" => "dynamodb:DeleteItem".to_owned(),
                    other => format!("dynamodb:{other}?"),
                })
                .collect();
            actions.sort();
            actions.dedup();
            actions
        }
        (service, call) => vec![format!("{service}:{call}")],
    };
    (format!("{service}:{call}"), actions)
}

async fn forward(State(up): State<Upstream>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body: Bytes = match axum::body::to_bytes(body, 64 << 20).await {
        Ok(b) => b,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let (key, service) = signer(&parts.headers, &parts.uri);
    let (call, actions) = classify(&service, &parts.headers, &parts.uri, parts.method.as_str(), &body);
    up.seen.lock().unwrap_or_else(|p| p.into_inner()).push(Recorded { key, call, actions });
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut upstream = up.http.request(parts.method.clone(), format!("{}{path}", up.url)).body(body);
    for (k, v) in parts.headers.iter().filter(|(k, _)| *k != "host" && *k != "content-length") {
        upstream = upstream.header(k, v);
    }
    match upstream.send().await {
        Ok(r) => {
            let status = r.status();
            let headers = r.headers().clone();
            let bytes = r.bytes().await.unwrap_or_default();
            let mut response = (status, bytes).into_response();
            for (k, v) in headers.iter().filter(|(k, _)| *k != "content-length" && *k != "transfer-encoding") {
                response.headers_mut().insert(k, v.clone());
            }
            response
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}
