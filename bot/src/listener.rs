//! The HTTP listener of `storytime serve`: HTTP/1.1 connections with the
//! limits servers facing the internet keep (nginx's `client_header_timeout`,
//! `keepalive_timeout`, `send_timeout`, `worker_connections`), so that slow
//! or idle clients cannot hold connections and file descriptors forever.
//!
//! - A request's headers must arrive within [`Limits::header_timeout`] of
//!   its first byte (or of the connection opening).
//! - A connection with no request in progress is closed after
//!   [`Limits::idle_timeout`]; so is one whose client stops reading the
//!   answer for that long.
//! - At most [`Limits::max_connections`] are open at once; past that, new
//!   connections get `503` with `Retry-After` and are closed.
//! - Request bodies must keep up an average of [`MIN_BODY_RATE`] after a
//!   grace period ([`TimedBody`]), so the time a body may take grows with
//!   its size.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use http_body::{Frame, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore, watch};
use tower::ServiceExt;

/// How long a request body may take before it is held to [`MIN_BODY_RATE`].
pub const BODY_GRACE: Duration = Duration::from_secs(10);
/// The slowest average a request body may arrive at after [`BODY_GRACE`]:
/// 32 KiB/s (a phone on a poor mobile link), so a 20 MB photo has about
/// ten minutes and a 1 MiB Slack request 42 s.
pub const MIN_BODY_RATE: u64 = 32 * 1024;
/// How long a connection being closed for idleness may take to finish
/// writing before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(10);
/// After the last answer on a connection, how long what the client still
/// sends (the rest of a refused upload) is read and dropped before the
/// socket is closed; closing with it unread would reset the connection,
/// and the client could lose the answer.
const LINGER: Duration = Duration::from_secs(2);
/// Connections answered `503` at once while at the cap; beyond these, new
/// connections are closed without an answer.
const REFUSING_AT_ONCE: usize = 64;
/// File descriptors kept free for everything that is not a connection
/// (the database, the journal, blobs, engines, logs).
const SPARE_DESCRIPTORS: u64 = 256;

/// The limits of the listener (`STORYTIME_HEADER_TIMEOUT`,
/// `STORYTIME_IDLE_TIMEOUT`, `STORYTIME_MAX_CONNECTIONS`).
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { header_timeout: Duration::from_secs(10), idle_timeout: Duration::from_secs(60), max_connections: 1024 }
    }
}

/// Serves `router` on `listener` until `stop` turns true, then stops
/// accepting, lets requests in progress finish (closing idle connections
/// at once) and returns once every connection is closed or `drain` passed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
    drain: Duration,
) -> io::Result<()> {
    let cap = connection_cap(limits.max_connections);
    let open = Arc::new(Semaphore::new(cap));
    let refusing = Arc::new(Semaphore::new(REFUSING_AT_ONCE));
    let limits = Arc::new(limits);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|s| *s) => break,
        };
        let (stream, peer) = match accepted {
            Ok(conn) => conn,
            Err(e) => {
                // Out of file descriptors or a connection reset before it
                // was accepted: wait a little rather than spin.
                tracing::warn!(error = %e, "could not accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        match open.clone().try_acquire_owned() {
            Ok(permit) => {
                let (router, limits, stop) = (router.clone(), limits.clone(), stop.clone());
                tokio::spawn(async move {
                    connection(stream, peer, router, &limits, stop).await;
                    drop(permit);
                });
            }
            Err(_) => {
                metrics::counter!("storytime_http_connections_refused_total").increment(1);
                if let Ok(permit) = refusing.clone().try_acquire_owned() {
                    tokio::spawn(async move {
                        refuse(stream).await;
                        drop(permit);
                    });
                }
            }
        }
    }
    // Every connection holds one permit: all of them back means all closed.
    let all = u32::try_from(cap).unwrap_or(u32::MAX);
    if tokio::time::timeout(drain, open.acquire_many(all)).await.is_err() {
        tracing::warn!("some connections were still open {drain:?} after the stop signal; closing them");
    }
    Ok(())
}

/// The connection cap: the setting, lowered if the process may not open
/// that many file descriptors (after raising its own soft limit as far as
/// the hard one allows).
fn connection_cap(wanted: usize) -> usize {
    let Some(descriptors) = raise_descriptor_limit() else { return wanted.max(1) };
    let fits = descriptors.saturating_sub(SPARE_DESCRIPTORS).max(16) as usize;
    if wanted > fits {
        tracing::warn!(
            wanted,
            allowed = fits,
            "STORYTIME_MAX_CONNECTIONS is more than the open-file limit allows; raise `ulimit -n` to serve that many"
        );
    }
    wanted.min(fits).max(1)
}

/// Raises the soft limit on open files to the hard one; returns the limit.
#[allow(unsafe_code)]
fn raise_descriptor_limit() -> Option<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `limit` is a valid rlimit for getrlimit to fill in.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
        // SAFETY: `raised` is a valid rlimit within the hard limit.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit = raised;
        }
    }
    Some(limit.rlim_cur)
}

/// Answers a connection over the cap with `503` and closes it, without
/// reading its request.
async fn refuse(mut stream: TcpStream) {
    const BODY: &str = "{\"Error\":\"busy\",\"Message\":\"too many connections are open; try again shortly\"}";
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
}

/// Where a connection is, as its limits see it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
enum Phase {
    /// Waiting for (the rest of) a request's headers.
    Headers = 0,
    /// A request is with its handler, which reads the body itself.
    Handling = 1,
    /// No request in progress (an answer may still be being written).
    Idle = 2,
}

/// The state a connection's timers watch, updated by its reads, writes
/// and requests.
struct Watch {
    phase: AtomicU8,
    /// When the phase began or, while idle, when the answer last made
    /// progress; milliseconds since `epoch`.
    since: AtomicU64,
    epoch: Instant,
    /// Woken when a deadline may have come closer.
    changed: Notify,
}

impl Watch {
    fn new() -> Self {
        Self {
            phase: AtomicU8::new(Phase::Headers as u8),
            since: AtomicU64::new(0),
            epoch: Instant::now(),
            changed: Notify::new(),
        }
    }

    fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Acquire) {
            0 => Phase::Headers,
            1 => Phase::Handling,
            _ => Phase::Idle,
        }
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn enter(&self, phase: Phase) {
        self.since.store(self.now(), Ordering::Release);
        self.phase.store(phase as u8, Ordering::Release);
        self.changed.notify_one();
    }

    /// Bytes arrived: an idle connection starts a new request.
    fn read_some(&self) {
        if self.phase() == Phase::Idle {
            self.enter(Phase::Headers);
        }
    }

    /// Bytes left: an answer is making progress.
    fn wrote_some(&self) {
        if self.phase() == Phase::Idle {
            self.since.store(self.now(), Ordering::Release);
        }
    }

    /// When the current phase runs out, if it can.
    fn deadline(&self, limits: &Limits) -> Option<Instant> {
        let limit = match self.phase() {
            Phase::Headers => limits.header_timeout,
            Phase::Idle => limits.idle_timeout,
            Phase::Handling => return None,
        };
        Some(self.epoch + Duration::from_millis(self.since.load(Ordering::Acquire)) + limit)
    }
}

/// Serves one connection, closing it when a limit runs out or the server
/// stops.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: &Limits,
    mut stop: watch::Receiver<bool>,
) {
    let watch = Arc::new(Watch::new());
    let io = TokioIo::new(Watched { inner: stream, watch: watch.clone() });
    let service = {
        let watch = watch.clone();
        hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            watch.enter(Phase::Handling);
            request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
            let (parts, incoming) = request.into_parts();
            let body = TimedBody::new(incoming);
            let read_to_end = body.read_to_end();
            let request = hyper::Request::from_parts(parts, Body::new(body));
            let (router, watch) = (router.clone(), watch.clone());
            Box::pin(async move {
                let mut response = router.oneshot(request).await.unwrap_or_else(|e: Infallible| match e {});
                // An answer given without reading the whole body (a
                // refusal) leaves the connection unable to carry another
                // request: say so, or the client would send its next one
                // into a closing socket.
                if !read_to_end.load(Ordering::Acquire) {
                    response
                        .headers_mut()
                        .insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
                }
                watch.enter(Phase::Idle);
                Ok::<_, Infallible>(response)
            })
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The header limit is ours (it also covers a connection that sends
    // nothing); hyper's would restart on every read of an idle connection.
    builder.timer(TokioTimer::new()).header_read_timeout(None).max_buf_size(64 * 1024);
    let mut conn = builder.serve_connection(io, service);
    let mut closing: Option<Instant> = None;
    let answered = loop {
        let deadline = closing.or_else(|| watch.deadline(limits));
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            result = std::future::poll_fn(|cx| conn.poll_without_shutdown(cx)) => {
                if let Err(e) = &result {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                break result.is_ok();
            }
            _ = watch.changed.notified() => {}
            _ = stop.wait_for(|s| *s), if closing.is_none() => {
                Pin::new(&mut conn).graceful_shutdown();
                closing = Some(Instant::now() + CLOSE_GRACE.max(limits.idle_timeout));
            }
            _ = sleep => {
                if closing.is_some() {
                    return;
                }
                // The deadline may have moved since the timer was set.
                if watch.deadline(limits).is_some_and(|at| at <= Instant::now()) {
                    match watch.phase() {
                        Phase::Headers => {
                            metrics::counter!("storytime_http_connections_timed_out_total", "phase" => "headers").increment(1);
                            return;
                        }
                        _ => {
                            metrics::counter!("storytime_http_connections_timed_out_total", "phase" => "idle").increment(1);
                            Pin::new(&mut conn).graceful_shutdown();
                            closing = Some(Instant::now() + CLOSE_GRACE);
                        }
                    }
                }
            }
        }
    };
    if answered {
        linger(conn.into_parts().io.into_inner().inner).await;
    }
}

/// Closes a connection whose last answer has been sent: our side first,
/// then what the client still sends is read and dropped until it closes
/// its side or [`LINGER`] runs out, so that the close does not reset the
/// connection under an answer the client has not read yet.
async fn linger(mut stream: TcpStream) {
    use tokio::io::AsyncReadExt;
    if stream.shutdown().await.is_err() {
        return;
    }
    let mut sink = [0u8; 16 * 1024];
    let _ =
        tokio::time::timeout(LINGER, async { while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {} }).await;
}

/// A socket that tells its connection's [`Watch`] about reads and writes.
struct Watched {
    inner: TcpStream,
    watch: Arc<Watch>,
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.watch.read_some();
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.watch.wrote_some();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.watch.wrote_some();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A request body that fails once it falls behind [`MIN_BODY_RATE`] after
/// [`BODY_GRACE`]: a client may take longer for a larger body, but cannot
/// hold a handler (and the memory it has read so far) by trickling bytes.
pub struct TimedBody<B> {
    inner: B,
    started: Instant,
    received: u64,
    timer: Pin<Box<tokio::time::Sleep>>,
    /// Set once the body has been read to its end (at once for none).
    ended: Arc<AtomicBool>,
}

/// What a request body that fell behind fails with.
#[derive(Debug, thiserror::Error)]
#[error("the request body arrived too slowly (under {} KiB/s)", MIN_BODY_RATE / 1024)]
pub struct TooSlow;

impl<B: http_body::Body> TimedBody<B> {
    pub fn new(inner: B) -> Self {
        let started = Instant::now();
        let ended = Arc::new(AtomicBool::new(inner.is_end_stream()));
        let timer = Box::pin(tokio::time::sleep_until((started + BODY_GRACE).into()));
        Self { inner, started, received: 0, timer, ended }
    }

    /// Whether the body has been read to its end, to look at once the
    /// body has gone to its reader.
    pub fn read_to_end(&self) -> Arc<AtomicBool> {
        self.ended.clone()
    }

    /// When the body falls behind, given what has arrived.
    fn due(&self) -> Instant {
        self.started + BODY_GRACE + Duration::from_secs_f64(self.received as f64 / MIN_BODY_RATE as f64)
    }
}

impl<B> http_body::Body for TimedBody<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            if frame.is_none() || this.inner.is_end_stream() {
                this.ended.store(true, Ordering::Release);
            }
            if let Some(Ok(data)) = frame.as_ref().map(|f| f.as_ref().map(|f| f.data_ref().map_or(0, |d| d.len()))) {
                this.received += data as u64;
                let due = this.due();
                this.timer.as_mut().reset(due.into());
            }
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        ready!(this.timer.as_mut().poll(cx));
        metrics::counter!("storytime_http_connections_timed_out_total", "phase" => "body").increment(1);
        Poll::Ready(Some(Err(Box::new(TooSlow))))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test(start_paused = true)]
    async fn a_body_that_keeps_up_is_read_and_one_that_trickles_fails() {
        let (mut tx, body) = http_body_util::channel::Channel::<Bytes, Infallible>::new(4);
        let mut timed = TimedBody::new(body);
        // 10 s of grace, then 64 KiB buys two more seconds.
        tx.send_data(Bytes::from(vec![0; 64 * 1024])).await.unwrap();
        let frame = timed.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap().len(), 64 * 1024);
        tokio::time::advance(Duration::from_millis(11_900)).await;
        tx.send_data(Bytes::from_static(b"x")).await.unwrap();
        assert!(timed.frame().await.unwrap().is_ok(), "still within 10 s + 64 KiB at 32 KiB/s");
        // Nothing more arrives: the body fails once it falls behind.
        let waited = Instant::now();
        let err = timed.frame().await.unwrap().unwrap_err();
        assert!(err.is::<TooSlow>(), "{err}");
        let after = waited.elapsed();
        assert!(after <= Duration::from_millis(200), "failed {after:?} after falling behind");
    }

    #[test]
    fn idle_connections_wait_longer_than_headers_and_requests_have_no_deadline() {
        let limits = Limits::default();
        let watch = Watch::new();
        let start = watch.epoch;
        assert_eq!(watch.deadline(&limits), Some(start + limits.header_timeout));
        watch.enter(Phase::Handling);
        assert_eq!(watch.deadline(&limits), None);
        watch.enter(Phase::Idle);
        let idle_until = watch.deadline(&limits).unwrap();
        assert!(idle_until >= start + limits.idle_timeout);
        // The next request's first byte starts its header clock.
        watch.read_some();
        assert_eq!(watch.phase(), Phase::Headers);
        assert!(watch.deadline(&limits).unwrap() < idle_until);
    }
}
