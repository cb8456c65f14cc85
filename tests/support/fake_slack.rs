//! A stand-in for Slack's servers on loopback: the Web API methods the app
//! calls, the private file host, the upload target, response URLs and a
//! Socket Mode WebSocket. It records every call and can be told to answer
//! a method with a rate limit or an error.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};

/// The bot token the fake expects on file downloads.
pub const BOT_TOKEN: &str = "xoxb-test-token";
pub const SIGNING_SECRET: &str = "test-signing-secret";
pub const TEAM: &str = "T0TEAM";
pub const BOT_USER: &str = "U0BOT";
/// The app's OAuth credentials the fake accepts on `oauth.v2.access`.
pub const CLIENT_ID: &str = "1111.2222";
pub const CLIENT_SECRET: &str = "test-client-secret";

/// The body of a `message` event with files, as Slack sends it for a
/// shared photo.
pub fn photo_event(event_id: &str, channel: &str, ts: &str, files: Vec<Value>) -> String {
    json!({
        "token": "unused", "team_id": TEAM, "api_app_id": "A0APP", "type": "event_callback",
        "event_id": event_id, "event_time": crate::slack_sign::now(),
        "authorizations": [{ "team_id": TEAM, "user_id": BOT_USER, "is_bot": true, "is_enterprise_install": false }],
        "event": {
            "type": "message", "subtype": "file_share", "user": "U0PARENT", "channel": channel,
            "channel_type": "channel", "ts": ts, "event_ts": ts, "text": "", "upload": true, "files": files
        }
    })
    .to_string()
}

/// One recorded call.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub params: Value,
    pub authorization: Option<String>,
}

/// How the fake answers the next call of a method.
#[derive(Debug, Clone)]
pub enum Plan {
    /// HTTP 429 with `Retry-After` in seconds.
    RateLimit(u64),
    /// `{"ok": false, "error": code}`.
    Error(&'static str),
    /// An HTTP status with no Slack answer (a 5xx storm).
    Status(u16),
    /// The call takes effect, but its answer is lost (HTTP 502).
    AnswerLost,
}

struct FakeFile {
    name: String,
    mimetype: String,
    bytes: Vec<u8>,
    /// Answer downloads with a sign-in page, as Slack does without access.
    login_page: bool,
}

#[derive(Default)]
struct Recorded {
    files: HashMap<String, FakeFile>,
    calls: Vec<Call>,
    plans: HashMap<String, VecDeque<Plan>>,
    history: Vec<Value>,
    /// How long each Web API call takes after it took effect.
    latency: Duration,
    uploads: HashMap<String, Vec<u8>>,
    upload_seq: u64,
    /// Messages posted into threads, by (channel, thread ts), in order.
    threads: HashMap<(String, String), Vec<Value>>,
    message_seq: u64,
    sockets: Vec<mpsc::UnboundedSender<String>>,
    acks: Vec<Value>,
    /// Bot tokens issued by installs, with their workspace.
    tokens: HashMap<String, String>,
    /// Authorization codes waiting for `oauth.v2.access`: code → team.
    codes: HashMap<String, String>,
    /// The scopes `auth.test` reports (`x-oauth-scopes`); `None`: all.
    scopes: Option<Vec<String>>,
    /// Home tabs published, by user.
    homes: HashMap<String, Value>,
    /// Token rotation: installs get tokens that expire after this many
    /// seconds, and a refresh token.
    rotation: Option<u64>,
    /// Refresh tokens: refresh token → team.
    refresh: HashMap<String, String>,
}

#[derive(Clone)]
struct Shared {
    state: Arc<Mutex<Recorded>>,
    changed: Arc<Notify>,
    base: String,
}

pub struct FakeSlack {
    shared: Shared,
}

impl FakeSlack {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let shared = Shared { state: Default::default(), changed: Arc::new(Notify::new()), base };
        let app = Router::new()
            .route("/api/{method}", any(api))
            .route("/files/{id}", get(download))
            .route("/upload/{id}", post(upload))
            .route("/response/{id}", post(response_url))
            .route("/socket", get(socket))
            .with_state(shared.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { shared }
    }

    /// `SLACK_API_URL` for the app.
    pub fn api_url(&self) -> String {
        format!("{}/api", self.shared.base)
    }

    /// Environment for `storytime serve` talking to this fake.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("SLACK_API_URL".into(), self.api_url()),
            ("SLACK_BOT_TOKEN".into(), BOT_TOKEN.into()),
            ("SLACK_SIGNING_SECRET".into(), SIGNING_SECRET.into()),
        ]
    }

    /// A response URL on this fake, for slash commands and shortcuts.
    pub fn response_url(&self, id: &str) -> String {
        format!("{}/response/{id}", self.shared.base)
    }

    /// Hosts a file and returns its object as Slack puts it in events.
    pub fn add_file(&self, id: &str, name: &str, mimetype: &str, bytes: Vec<u8>) -> Value {
        self.lock()
            .files
            .insert(id.into(), FakeFile { name: name.into(), mimetype: mimetype.into(), bytes, login_page: false });
        file_json(&self.shared.base, id, name, mimetype)
    }

    /// Plays the user's side of an install in `team`: Slack's authorize
    /// page would send the browser back with this code.
    pub fn authorize(&self, team: &str) -> String {
        let mut s = self.lock();
        let code = format!("code-{team}-{}", s.codes.len() + s.tokens.len());
        s.codes.insert(code.clone(), team.to_owned());
        code
    }

    /// Turns on token rotation: tokens expire `seconds` after they are
    /// issued and come with a refresh token.
    pub fn rotate_tokens(&self, seconds: u64) {
        self.lock().rotation = Some(seconds);
    }

    /// The bot token an install gave `team`, if it has one.
    pub fn token_of(&self, team: &str) -> Option<String> {
        self.lock().tokens.iter().find(|(_, t)| *t == team).map(|(k, _)| k.clone())
    }

    /// Issues `team` a new bot token, as reinstalling the app does.
    pub fn issue_token(&self, team: &str) -> String {
        let mut s = self.lock();
        let token = format!("xoxb-{team}-reissued-{}", s.tokens.len() + 1);
        s.tokens.insert(token.clone(), team.to_owned());
        token
    }

    /// Revokes `team`'s token, as uninstalling the app does.
    pub fn revoke(&self, team: &str) {
        self.lock().tokens.retain(|_, t| t != team);
    }

    /// The scopes `auth.test` reports as granted.
    pub fn grant_scopes(&self, scopes: &[&str]) {
        self.lock().scopes = Some(scopes.iter().map(|s| s.to_string()).collect());
    }

    /// The Home tab last published for `user`.
    pub fn home_of(&self, user: &str) -> Option<Value> {
        self.lock().homes.get(user).cloned()
    }

    /// Makes downloads of a file answer with a sign-in page.
    pub fn deny_download(&self, id: &str) {
        if let Some(f) = self.lock().files.get_mut(id) {
            f.login_page = true;
        }
    }

    pub fn plan(&self, method: &str, plan: Plan) {
        self.lock().plans.entry(method.into()).or_default().push_back(plan);
    }

    pub fn set_history(&self, messages: Vec<Value>) {
        self.lock().history = messages;
    }

    pub fn calls(&self, method: &str) -> Vec<Call> {
        self.lock().calls.iter().filter(|c| c.method == method).cloned().collect()
    }

    pub fn all_calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// Every Web API call takes `latency` to answer, after it took effect
    /// (as Slack's own calls take a few hundred milliseconds).
    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    /// The messages posted into a thread (file shares and replies).
    pub fn thread(&self, channel: &str, thread_ts: &str) -> Vec<Value> {
        self.lock().threads.get(&(channel.to_owned(), thread_ts.to_owned())).cloned().unwrap_or_default()
    }

    /// The results delivered into a thread: messages whose first block is
    /// named for a delivery (`storytime-<job>-<recipient>`), not status
    /// lines or what is offered next.
    pub fn deliveries(&self, channel: &str, thread_ts: &str) -> Vec<Value> {
        self.thread(channel, thread_ts)
            .into_iter()
            .filter(|m| first_block_id(m).is_some_and(|id| id.starts_with("storytime-") && !id.ends_with("-next")))
            .collect()
    }

    /// The bytes uploaded for a file id.
    pub fn uploaded(&self, file_id: &str) -> Option<Vec<u8>> {
        self.lock().uploads.get(file_id).cloned()
    }

    /// Waits until `method` was called at least `n` times.
    pub async fn wait_for(&self, method: &str, n: usize, limit: Duration) -> Vec<Call> {
        self.wait_until(limit, |s| {
            let calls: Vec<Call> = s.calls.iter().filter(|c| c.method == method).cloned().collect();
            (calls.len() >= n).then_some(calls)
        })
        .await
        .unwrap_or_else(|| panic!("{method} was not called {n} times within {limit:?}; calls: {:?}", self.methods()))
    }

    fn methods(&self) -> Vec<String> {
        self.lock().calls.iter().map(|c| c.method.clone()).collect()
    }

    /// Socket Mode: waits for a connection, sends an envelope, and waits
    /// for its acknowledgement.
    pub async fn socket_send(&self, envelope: Value, limit: Duration) -> Value {
        let id = envelope["envelope_id"].as_str().expect("envelope_id").to_owned();
        let sender = self
            .wait_until(limit, |s| s.sockets.iter().find(|t| !t.is_closed()).cloned())
            .await
            .expect("the app never connected over Socket Mode");
        sender.send(envelope.to_string()).expect("socket open");
        self.wait_until(limit, |s| s.acks.iter().find(|a| a["envelope_id"] == id.as_str()).cloned())
            .await
            .unwrap_or_else(|| panic!("envelope {id} was not acknowledged within {limit:?}"))
    }

    async fn wait_until<T>(&self, limit: Duration, mut check: impl FnMut(&Recorded) -> Option<T>) -> Option<T> {
        let start = Instant::now();
        loop {
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if let Some(v) = check(&self.lock()) {
                return Some(v);
            }
            let left = limit.checked_sub(start.elapsed())?;
            let _ = tokio::time::timeout(left, changed).await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recorded> {
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn file_json(base: &str, id: &str, name: &str, mimetype: &str) -> Value {
    json!({
        "id": id, "name": name, "title": name, "mimetype": mimetype,
        "filetype": mimetype.rsplit('/').next().unwrap_or("bin"),
        "url_private": format!("{base}/files/{id}"),
        "url_private_download": format!("{base}/files/{id}?download=1"),
    })
}

/// The mrkdwn a message shows: its section blocks' text, one after the
/// other, or its plain text.
pub fn shown_text(params: &Value) -> String {
    let blocks = json_param(&params["blocks"]);
    match blocks.as_array() {
        Some(blocks) => blocks.iter().filter_map(|b| b["text"]["text"].as_str()).collect::<Vec<_>>().join("\n"),
        None => params["text"].as_str().or(params["initial_comment"].as_str()).unwrap_or_default().to_owned(),
    }
}

/// The name of a message's first block: the delivery it belongs to.
pub fn first_block_id(params: &Value) -> Option<String> {
    json_param(&params["blocks"])[0]["block_id"].as_str().map(str::to_owned)
}

/// A parameter that is JSON, sent as a string in a form or as JSON.
fn json_param(v: &Value) -> Value {
    match v {
        Value::String(s) => serde_json::from_str(s).unwrap_or(Value::Null),
        other => other.clone(),
    }
}

impl Shared {
    /// Keeps a message posted into a thread; returns its ts.
    fn post_in_thread(&self, channel: &Value, thread: &Value, mut message: Value) -> String {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.message_seq += 1;
        let ts = format!("1700000000.{:06}", 200 + s.message_seq);
        if let (Some(channel), Some(thread)) = (channel.as_str(), thread.as_str()) {
            message["type"] = json!("message");
            message["ts"] = json!(ts);
            message["thread_ts"] = json!(thread);
            message["user"] = json!(BOT_USER);
            message["bot_id"] = json!("B0BOT");
            if message["blocks"].is_null() {
                message.as_object_mut().expect("object").remove("blocks");
            }
            s.threads.entry((channel.to_owned(), thread.to_owned())).or_default().push(message);
        }
        ts
    }

    fn record(&self, call: Call) -> Option<Plan> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let plan = s.plans.get_mut(&call.method).and_then(VecDeque::pop_front);
        s.calls.push(call);
        drop(s);
        self.changed.notify_waiters();
        plan
    }
}

/// Parameters from the query string, a form body or a JSON body.
fn params(query: &HashMap<String, String>, headers: &HeaderMap, body: &Bytes) -> Value {
    let mut out = serde_json::Map::new();
    for (k, v) in query {
        out.insert(k.clone(), json!(v));
    }
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if ct.starts_with("application/json") {
        if let Ok(Value::Object(m)) = serde_json::from_slice(body) {
            out.extend(m);
        }
    } else if let Ok(form) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(body) {
        for (k, v) in form {
            out.insert(k, json!(v));
        }
    }
    Value::Object(out)
}

async fn api(
    State(shared): State<Shared>,
    Path(method): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = params(&query, &headers, &body);
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let plan =
        shared.record(Call { method: method.clone(), params: params.clone(), authorization: authorization.clone() });
    match plan {
        Some(Plan::RateLimit(secs)) => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, secs.to_string())],
                axum::Json(json!({ "ok": false, "error": "ratelimited" })),
            )
                .into_response();
        }
        Some(Plan::Error(code)) => return axum::Json(json!({ "ok": false, "error": code })).into_response(),
        Some(Plan::Status(status)) => {
            return StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR).into_response();
        }
        Some(Plan::AnswerLost) | None => {}
    }
    if method == "oauth.v2.access" {
        return axum::Json(shared.exchange(&params)).into_response();
    }
    let known = shared.known_token(authorization.as_deref());
    if !known && method != "apps.connections.open" {
        return axum::Json(json!({ "ok": false, "error": "invalid_auth" })).into_response();
    }
    let base = &shared.base;
    let answer = match method.as_str() {
        "files.info" => {
            let id = params["file"].as_str().unwrap_or_default().to_owned();
            let s = shared.state.lock().unwrap();
            match s.files.get(&id) {
                Some(f) => json!({ "ok": true, "file": file_json(base, &id, &f.name, &f.mimetype) }),
                None => json!({ "ok": false, "error": "file_not_found" }),
            }
        }
        "files.getUploadURLExternal" => {
            let mut s = shared.state.lock().unwrap();
            s.upload_seq += 1;
            let id = format!("F0UP{}", s.upload_seq);
            json!({ "ok": true, "upload_url": format!("{base}/upload/{id}"), "file_id": id })
        }
        "files.completeUploadExternal" => {
            let files = json_param(&params["files"]);
            let message =
                json!({ "files": files, "blocks": json_param(&params["blocks"]), "text": params["initial_comment"] });
            shared.post_in_thread(&params["channel_id"], &params["thread_ts"], message);
            json!({ "ok": true, "files": files })
        }
        "chat.postMessage" => {
            let message = json!({ "text": params["text"], "blocks": json_param(&params["blocks"]) });
            let ts = shared.post_in_thread(&params["channel"], &params["thread_ts"], message);
            json!({
                "ok": true, "channel": params["channel"], "ts": ts,
                "message": { "type": "message", "text": params["text"], "ts": ts, "user": BOT_USER, "bot_id": "B0BOT" }
            })
        }
        "conversations.replies" => {
            let key = (
                params["channel"].as_str().unwrap_or_default().to_owned(),
                params["ts"].as_str().unwrap_or_default().to_owned(),
            );
            let s = shared.state.lock().unwrap();
            json!({ "ok": true, "messages": s.threads.get(&key).cloned().unwrap_or_default(), "has_more": false })
        }
        "conversations.history" => {
            let s = shared.state.lock().unwrap();
            json!({ "ok": true, "messages": s.history, "has_more": false })
        }
        "apps.connections.open" => {
            json!({ "ok": true, "url": format!("{}/socket", base.replacen("http://", "ws://", 1)) })
        }
        "auth.test" => {
            let scopes = shared.state.lock().unwrap().scopes.clone();
            let scopes = scopes.map(|s| s.join(",")).unwrap_or_else(|| ALL_SCOPES.join(","));
            let answer = json!({ "ok": true, "user_id": BOT_USER, "bot_id": "B0BOT", "team_id": TEAM, "team": "Test", "url": "https://test.slack.com/" });
            return ([("x-oauth-scopes", scopes)], axum::Json(answer)).into_response();
        }
        "chat.update" => {
            let mut s = shared.state.lock().unwrap();
            let ts = params["ts"].clone();
            for message in s.threads.values_mut().flatten().filter(|m| m["ts"] == ts) {
                message["text"] = params["text"].clone();
                message["blocks"] = json_param(&params["blocks"]);
            }
            json!({ "ok": true, "channel": params["channel"], "ts": ts })
        }
        "views.publish" => {
            let user = params["user_id"].as_str().unwrap_or_default().to_owned();
            let view = json_param(&params["view"]);
            shared.state.lock().unwrap().homes.insert(user, view.clone());
            json!({ "ok": true, "view": view })
        }
        _ => json!({ "ok": true }),
    };
    let latency = shared.state.lock().unwrap_or_else(|p| p.into_inner()).latency;
    tokio::time::sleep(latency).await;
    if matches!(plan, Some(Plan::AnswerLost)) {
        return StatusCode::BAD_GATEWAY.into_response();
    }
    axum::Json(answer).into_response()
}

/// Every scope a full install grants (as `manifest.yml` asks).
const ALL_SCOPES: &[&str] = &[
    "app_mentions:read",
    "channels:history",
    "chat:write",
    "commands",
    "files:read",
    "files:write",
    "groups:history",
    "im:history",
    "mpim:history",
    "reactions:write",
];

impl Shared {
    /// The configured bot token, or one an install issued.
    fn known_token(&self, authorization: Option<&str>) -> bool {
        let Some(token) = authorization.and_then(|a| a.strip_prefix("Bearer ")) else { return false };
        token == BOT_TOKEN || self.state.lock().unwrap_or_else(|p| p.into_inner()).tokens.contains_key(token)
    }

    /// `oauth.v2.access`: the app's credentials and a code from an install.
    fn exchange(&self, params: &Value) -> Value {
        if params["client_id"] != CLIENT_ID || params["client_secret"] != CLIENT_SECRET {
            return json!({ "ok": false, "error": "invalid_client_id" });
        }
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if params["grant_type"] == "refresh_token" {
            let Some(team) = params["refresh_token"].as_str().and_then(|r| s.refresh.get(r).cloned()) else {
                return json!({ "ok": false, "error": "invalid_refresh_token" });
            };
            // As Slack does, the old token stays good until it expires.
            let token = format!("xoxe.xoxb-{team}-{}", s.tokens.len() + s.refresh.len() + 1);
            s.tokens.insert(token.clone(), team);
            return json!({ "ok": true, "access_token": token, "token_type": "bot", "expires_in": s.rotation.unwrap_or(43_200),
                           "refresh_token": params["refresh_token"] });
        }
        let Some(team) = params["code"].as_str().and_then(|c| s.codes.remove(c)) else {
            return json!({ "ok": false, "error": "invalid_code" });
        };
        let token = format!("xoxb-{team}-{}", s.tokens.len() + 1);
        s.tokens.insert(token.clone(), team.clone());
        let mut answer = json!({
            "ok": true, "access_token": token, "token_type": "bot", "scope": ALL_SCOPES.join(","),
            "bot_user_id": format!("U{team}BOT"), "app_id": "A0APP", "team": { "id": team, "name": format!("Team {team}") },
            "enterprise": null, "authed_user": { "id": format!("U{team}ADMIN") }, "is_enterprise_install": false
        });
        if let Some(seconds) = s.rotation {
            let refresh = format!("xoxe-1-refresh-{team}");
            s.refresh.insert(refresh.clone(), team);
            answer["refresh_token"] = json!(refresh);
            answer["expires_in"] = json!(seconds);
        }
        answer
    }
}

async fn download(State(shared): State<Shared>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
    shared.record(Call {
        method: "download".into(),
        params: json!({ "file": id }),
        authorization: authorization.clone(),
    });
    let known = shared.known_token(authorization.as_deref());
    let s = shared.state.lock().unwrap();
    let Some(file) = s.files.get(&id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if file.login_page || !known {
        // Slack's answer to a download without access: a sign-in page.
        let page = "<!DOCTYPE html><html><head><title>Slack</title></head><body>Sign in to continue</body></html>";
        return ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response();
    }
    ([(header::CONTENT_TYPE, file.mimetype.clone())], file.bytes.clone()).into_response()
}

async fn upload(State(shared): State<Shared>, Path(id): Path<String>, body: Bytes) -> Response {
    shared.state.lock().unwrap().uploads.insert(id.clone(), body.to_vec());
    shared.record(Call {
        method: "upload".into(),
        params: json!({ "file": id, "bytes": body.len() }),
        authorization: None,
    });
    format!("OK - {}", body.len()).into_response()
}

async fn response_url(State(shared): State<Shared>, Path(id): Path<String>, body: Bytes) -> Response {
    let mut params: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    params["id"] = json!(id);
    shared.record(Call { method: "response_url".into(), params, authorization: None });
    StatusCode::OK.into_response()
}

async fn socket(State(shared): State<Shared>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| serve_socket(shared, socket))
}

async fn serve_socket(shared: Shared, mut socket: WebSocket) {
    let hello = json!({
        "type": "hello", "num_connections": 1,
        "debug_info": { "host": "fake-slack", "build_number": 1, "approximate_connection_time": 3600 },
        "connection_info": { "app_id": "A0APP" }
    });
    if socket.send(Message::Text(hello.to_string().into())).await.is_err() {
        return;
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    shared.state.lock().unwrap().sockets.push(tx);
    shared.changed.notify_waiters();
    loop {
        tokio::select! {
            outgoing = rx.recv() => match outgoing {
                Some(text) => if socket.send(Message::Text(text.into())).await.is_err() { return },
                None => return,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    if let Ok(ack) = serde_json::from_str::<Value>(&text) {
                        shared.state.lock().unwrap().acks.push(ack);
                        shared.changed.notify_waiters();
                    }
                }
                Some(Ok(Message::Ping(p))) => { let _ = socket.send(Message::Pong(p)).await; }
                Some(Ok(_)) => {}
                _ => return,
            },
        }
    }
}
