//! A stand-in for the Lambda Runtime API on loopback, as Lambda runs a
//! function's `bootstrap`: the function asks for its next invocation,
//! handles it and posts the answer. Tests hand it events one at a time.
//! A function started through it that exits (a setting it refuses, a
//! crash) fails the invocation at once, with its exit status.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use serde_json::Value;
use tokio::sync::Notify;

#[derive(Default)]
struct Inner {
    pending: Mutex<VecDeque<(String, Value)>>,
    answers: Mutex<HashMap<String, Value>>,
    changed: Notify,
    seq: Mutex<u64>,
    /// How the function's process ended, if it did.
    exited: Mutex<Option<String>>,
}

/// A function's process, killed when dropped.
pub struct FunctionProcess {
    watch: tokio::task::JoinHandle<()>,
}

impl Drop for FunctionProcess {
    fn drop(&mut self) {
        // Drops the child, which kills it.
        self.watch.abort();
    }
}

#[derive(Clone)]
pub struct LambdaRuntime {
    /// `host:port`, for `AWS_LAMBDA_RUNTIME_API`.
    pub address: String,
    inner: Arc<Inner>,
}

impl LambdaRuntime {
    pub async fn start() -> Self {
        let inner = Arc::new(Inner::default());
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("addr").to_string();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { address, inner }
    }

    /// Starts the function (`command`, with `AWS_LAMBDA_RUNTIME_API` set
    /// to this runtime) and watches it: should it exit, invocations fail at
    /// once instead of at their limit.
    pub fn spawn(&self, command: std::process::Command) -> FunctionProcess {
        let mut command = tokio::process::Command::from(command);
        command.env("AWS_LAMBDA_RUNTIME_API", &self.address).kill_on_drop(true);
        let mut child = command.spawn().expect("start the function");
        let inner = self.inner.clone();
        let watch = tokio::spawn(async move {
            let status = child.wait().await.map_or_else(|e| e.to_string(), |s| s.to_string());
            *inner.exited.lock().unwrap() = Some(status);
            inner.changed.notify_waiters();
        });
        FunctionProcess { watch }
    }

    /// Hands `event` to the function and waits for its answer (an error
    /// comes back as `{"errorType": …}`).
    pub async fn invoke(&self, event: Value, limit: Duration) -> Value {
        let id = {
            let mut seq = self.inner.seq.lock().unwrap();
            *seq += 1;
            format!("req-{}", *seq)
        };
        self.inner.pending.lock().unwrap().push_back((id.clone(), event));
        self.inner.changed.notify_waiters();
        let start = Instant::now();
        loop {
            let changed = self.inner.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if let Some(answer) = self.inner.answers.lock().unwrap().remove(&id) {
                return answer;
            }
            if let Some(status) = self.inner.exited.lock().unwrap().as_ref() {
                panic!("the function exited ({status}) before answering {id}; its stderr says why");
            }
            let left =
                limit.checked_sub(start.elapsed()).unwrap_or_else(|| panic!("no answer to {id} within {limit:?}"));
            let _ = tokio::time::timeout(left, changed).await;
        }
    }
}

async fn next(State(inner): State<Arc<Inner>>) -> (HeaderMap, String) {
    loop {
        let changed = inner.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        if let Some((id, event)) = inner.pending.lock().unwrap().pop_front() {
            let mut headers = HeaderMap::new();
            headers.insert("lambda-runtime-aws-request-id", id.parse().unwrap());
            let deadline = (storytime_pipeline::now_ms() + 300_000).to_string();
            headers.insert("lambda-runtime-deadline-ms", deadline.parse().unwrap());
            let arn = "arn:aws:lambda:us-east-1:123456789012:function:storytime";
            headers.insert("lambda-runtime-invoked-function-arn", arn.parse().unwrap());
            return (headers, event.to_string());
        }
        changed.await;
    }
}

fn answer(inner: &Inner, id: String, body: &str) -> &'static str {
    let value = serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_owned()));
    inner.answers.lock().unwrap().insert(id, value);
    inner.changed.notify_waiters();
    "{}"
}

async fn response(State(inner): State<Arc<Inner>>, Path(id): Path<String>, body: String) -> &'static str {
    answer(&inner, id, &body)
}

async fn error(State(inner): State<Arc<Inner>>, Path(id): Path<String>, body: String) -> &'static str {
    let mut value: Value = serde_json::from_str(&body).unwrap_or(Value::String(body));
    if !value.is_object() {
        value = serde_json::json!({ "errorType": "unknown", "errorMessage": value });
    }
    answer(&inner, id, &value.to_string())
}

async fn init_error(body: String) -> &'static str {
    eprintln!("the function failed to start: {body}");
    "{}"
}
