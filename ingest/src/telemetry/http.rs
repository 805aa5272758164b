//! The daemon's HTTP surface: scrapes and probes enter here; `/metrics` leaves
//! the [`Metrics`] registry as OpenMetrics text, `/healthz` says the process
//! runs, `/readyz` reports the shared [`Readiness`].
//!
//! An optional bearer token guards `/metrics` and the reason `/readyz` gives
//! for being unready (it may name topics, brokers or the lake's location).
//! `/healthz` and `/readyz`'s status stay open: orchestrators' probes rarely
//! carry credentials, and a probe needs only the status code. The token is
//! compared as a BLAKE3 digest with constant-time equality, so neither its
//! content nor its length leaks through timing, and it never appears in
//! `Debug` output or logs.
//!
//! The endpoint may listen beyond loopback, so no client may hold what the daemon needs: at
//! most [`MAX_CONNECTIONS`] connections are served at once, and each must send its request
//! head within [`HEADER_READ_TIMEOUT`] (the same bound applies to an idle kept-alive
//! connection), be answered within [`REQUEST_TIMEOUT`], and take each response within
//! [`RESPONSE_WRITE_TIMEOUT`]; a client that does not is disconnected, which frees its slot.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::metrics::Metrics;
use super::text_format;

/// Content type of the OpenMetrics text exposition.
pub const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// How long a client has to send a request's line and headers once the connection is open or
/// its previous answer is sent, so it also closes idle kept-alive connections. A scraper or
/// probe sends its few hundred bytes at once; 10 s absorbs a congested network while a
/// slowloris client loses its slot within seconds. Scrapers that come back less often than
/// this reconnect, which costs a handshake per scrape.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a handler may take before the client gets 503. The handlers compute in
/// milliseconds; 30 s is far beyond any legitimate answer and within scrapers' usual timeouts
/// (Prometheus: 10 s by default), so this only ends a request that is stuck.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How long one response (everything hyper writes before flushing) may take to reach the
/// kernel. Responses are at most a few hundred KiB; a client that reads them slower than this
/// (or not at all, e.g. after pipelining requests) is disconnected instead of keeping its slot.
pub const RESPONSE_WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Connections served at once. A few scrapers and probes need a handful; 256 leaves room for
/// bursts and reconnects while keeping the endpoint's descriptors well under the common soft
/// limit of 1,024 open files, which the lake writer and Kafka client need too.
pub const MAX_CONNECTIONS: usize = 256;

/// At shutdown, how long open connections get to finish the request in hand before they are
/// dropped. Answers take milliseconds; the daemon itself waits only about 1 s for its tasks.
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(5);

/// Pause after an accept error that is not one client's failure, typically "too many open
/// files": retrying at once would spin, and descriptors are freed as connections end.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_secs(1);

/// Settings of the HTTP endpoint (`[http]` in the config file).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address to listen on. Loopback by default: exposing metrics beyond the
    /// host is a deliberate choice (and then a token is advisable).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// When set, `/metrics` requires `Authorization: Bearer <token>`, and `/readyz` shows
    /// why it is unready only to a request that carries it.
    #[serde(default)]
    pub bearer_token: Option<BearerToken>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9464))
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self { listen: default_listen(), bearer_token: None }
    }
}

/// A secret bearer token: deserializes from a plain string, never prints.
#[derive(Clone)]
pub struct BearerToken(String);

impl<'de> serde::Deserialize<'de> for BearerToken {
    /// A string only; any other value is refused without being quoted in the error, because
    /// serde's own message would print it and it is a secret.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::config::secret_string(deserializer, "the bearer token must be a quoted string (its value is not shown)")
            .map(BearerToken)
    }
}

impl BearerToken {
    /// Wrap a token (e.g. from an environment variable).
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// An empty token would make every `Bearer ` header valid.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

/// Errors from the HTTP endpoint.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// A configured but empty token would make every `Bearer ` header valid: fix the config.
    #[error("http.bearer_token is empty; remove it or set a secret")]
    EmptyToken,
    /// The listen address is taken or not permitted: fix the config or free the port.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The configured address.
        addr: SocketAddr,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
}

/// Result of HTTP operations.
pub type Result<T, E = HttpError> = std::result::Result<T, E>;

/// Whether the daemon can do its job, shared between the pipeline (which sets
/// it) and `/readyz` (which reports it). Starts not ready ("starting").
#[derive(Debug, Clone)]
pub struct Readiness {
    /// `None` when ready, else why not.
    not_ready: Arc<Mutex<Option<String>>>,
    /// Flags read at every check, with the reason to give while one is set. They are set by
    /// whoever sees the condition first and hold even while the pipeline loop that calls
    /// [`set_ready`](Self::set_ready) is blocked, e.g. waiting for a lake that does not answer.
    blockers: Arc<Mutex<Vec<Blocker>>>,
}

/// A flag that, while set, makes the daemon not ready, and the reason `/readyz` gives.
type Blocker = (Arc<AtomicBool>, &'static str);

impl Default for Readiness {
    fn default() -> Self {
        Self::new()
    }
}

impl Readiness {
    /// Not ready yet, with reason "starting".
    pub fn new() -> Self {
        Self { not_ready: Arc::new(Mutex::new(Some("starting".to_owned()))), blockers: Arc::default() }
    }

    /// Not ready, with `reason`, whenever `flag` is set.
    pub fn not_ready_while(&self, flag: Arc<AtomicBool>, reason: &'static str) {
        self.blockers.lock().unwrap_or_else(PoisonError::into_inner).push((flag, reason));
    }

    /// Mark ready (logged on the transition only).
    pub fn set_ready(&self) {
        let mut state = self.not_ready.lock().unwrap_or_else(PoisonError::into_inner);
        if state.take().is_some() {
            tracing::info!("Ready.");
        }
    }

    /// Mark not ready with a reason shown by `/readyz`, e.g. "no partitions assigned".
    pub fn set_not_ready(&self, reason: impl Into<String>) {
        let reason = reason.into();
        let mut state = self.not_ready.lock().unwrap_or_else(PoisonError::into_inner);
        if state.as_deref() != Some(reason.as_str()) {
            tracing::warn!(reason = reason.as_str(), "Not ready.");
            *state = Some(reason);
        }
    }

    /// `Ok` when ready, else the reason.
    pub fn check(&self) -> std::result::Result<(), String> {
        let blockers = self.blockers.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, reason)) = blockers.iter().find(|(flag, _)| flag.load(Ordering::Acquire)) {
            return Err((*reason).to_owned());
        }
        drop(blockers);
        match self.not_ready.lock().unwrap_or_else(PoisonError::into_inner).as_ref() {
            None => Ok(()),
            Some(reason) => Err(reason.clone()),
        }
    }
}

#[derive(Clone)]
struct AppState {
    metrics: Metrics,
    readiness: Readiness,
    /// BLAKE3 digest of the token; `blake3::Hash` equality is constant-time.
    token_digest: Option<blake3::Hash>,
}

/// A listening but not yet serving endpoint: lets callers (and tests binding
/// port 0) learn the address before serving.
#[derive(Debug)]
pub struct BoundServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    router: Router,
    limits: Limits,
}

/// The bounds on connections and requests; the constants above in production, shorter in tests.
#[derive(Debug, Clone, Copy)]
struct Limits {
    header_read: Duration,
    request: Duration,
    response_write: Duration,
    max_connections: usize,
    shutdown_drain: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read: HEADER_READ_TIMEOUT,
            request: REQUEST_TIMEOUT,
            response_write: RESPONSE_WRITE_TIMEOUT,
            max_connections: MAX_CONNECTIONS,
            shutdown_drain: SHUTDOWN_DRAIN,
        }
    }
}

impl BoundServer {
    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serve until `shutdown` is cancelled, then finish in-flight requests (each gets at most
    /// a few seconds) and return.
    pub async fn run(self, shutdown: CancellationToken) -> Result<()> {
        let Self { listener, local_addr: addr, router, limits } = self;
        tracing::info!(%addr, "HTTP endpoint listening.");
        let router = router.layer(middleware::from_fn_with_state(limits.request, limit_request_time));
        let slots = Arc::new(Semaphore::new(limits.max_connections));
        let connections = TaskTracker::new();
        loop {
            // At the cap the loop stops accepting rather than accepting and closing: waiting
            // connections sit in the kernel's backlog, holding none of the daemon's descriptors,
            // and a probe among them is answered as soon as a slot frees (slow clients free
            // theirs within HEADER_READ_TIMEOUT) instead of being refused outright.
            let accepted = tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                accepted = accept_within_cap(&listener, &slots) => accepted,
            };
            match accepted {
                Ok((stream, peer, slot)) => {
                    let connection = serve_connection(stream, router.clone(), limits, shutdown.clone());
                    connections.spawn(async move {
                        if let Err(error) = connection.await {
                            // Timeouts and resets are the client's business: logged for debugging only.
                            tracing::debug!(%peer, %error, "HTTP connection ended with an error.");
                        }
                        drop(slot);
                    });
                }
                Err(error) if is_one_clients_failure(&error) => {}
                Err(error) => {
                    tracing::warn!(%addr, %error, "HTTP endpoint cannot accept connections; retrying.");
                    tokio::select! {
                        biased;
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(ACCEPT_ERROR_BACKOFF) => {}
                    }
                }
            }
        }
        // Closing the listener first refuses new connections while the open ones finish.
        drop(listener);
        connections.close();
        connections.wait().await;
        tracing::info!(%addr, "HTTP endpoint stopped.");
        Ok(())
    }
}

/// Wait for a free slot, then for a connection; the slot goes with the connection.
async fn accept_within_cap(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
) -> io::Result<(TcpStream, SocketAddr, OwnedSemaphorePermit)> {
    // The semaphore is never closed, so this cannot fail; the error is mapped rather than
    // unwrapped all the same.
    let slot = Arc::clone(slots).acquire_owned().await.map_err(io::Error::other)?;
    let (stream, peer) = listener.accept().await?;
    Ok((stream, peer, slot))
}

/// Accept errors that concern one connection (reset before it was accepted), not the listener.
fn is_one_clients_failure(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

/// Serve one connection (HTTP/1.1, as before) until the client leaves, breaks a limit, or
/// `shutdown` is cancelled; then the request in hand gets `limits.shutdown_drain` to finish.
async fn serve_connection(
    stream: TcpStream,
    router: Router,
    limits: Limits,
    shutdown: CancellationToken,
) -> std::result::Result<(), hyper::Error> {
    let mut builder = http1::Builder::new();
    // Header-read timeout also bounds idle keep-alive: hyper restarts it after each response.
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_read).keep_alive(true);
    let io = TokioIo::new(WriteDeadline::new(stream, limits.response_write));
    let mut connection = pin!(builder.serve_connection(io, TowerToHyperService::new(router)));
    tokio::select! {
        biased;
        result = connection.as_mut() => result,
        () = shutdown.cancelled() => {
            // Closes an idle connection at once; a busy one closes after its answer.
            connection.as_mut().graceful_shutdown();
            // Past the drain the connection is dropped, which closes the socket.
            tokio::time::timeout(limits.shutdown_drain, connection).await.unwrap_or(Ok(()))
        }
    }
}

/// A socket whose writes must reach the kernel in time: each response (everything written
/// between two flushes) gets `limit` from its first write, so a client that reads slowly or not
/// at all cannot keep its connection, and its slot, for ever.
struct WriteDeadline<S> {
    inner: S,
    limit: Duration,
    /// Armed by the first write after a flush, disarmed by the next flush that completes.
    deadline: Option<Pin<Box<Sleep>>>,
}

impl<S> WriteDeadline<S> {
    fn new(inner: S, limit: Duration) -> Self {
        Self { inner, limit, deadline: None }
    }
}

impl<S: AsyncWrite + Unpin> WriteDeadline<S> {
    /// Run one write operation unless the deadline has passed; polling the deadline also
    /// registers the wake-up that ends a write that stays pending.
    fn poll_in_time<T>(
        &mut self,
        cx: &mut Context<'_>,
        write: impl FnOnce(Pin<&mut S>, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        let limit = self.limit;
        let deadline = self.deadline.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        if deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "client did not take the response in time",
            )));
        }
        write(Pin::new(&mut self.inner), cx)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteDeadline<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_in_time(cx, |inner, cx| inner.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_in_time(cx, |inner, cx| inner.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let flushed = self.poll_in_time(cx, |inner, cx| inner.poll_flush(cx));
        if matches!(flushed, Poll::Ready(Ok(()))) {
            self.deadline = None;
        }
        flushed
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Answer 503 to a request whose handler runs past `limit`, so it cannot hold its connection.
async fn limit_request_time(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(limit_ms = limit.as_millis() as u64, "HTTP request timed out.");
            (StatusCode::SERVICE_UNAVAILABLE, "request timed out\n").into_response()
        }
    }
}

/// Validate the config and bind the listener.
pub async fn bind(config: HttpConfig, metrics: Metrics, readiness: Readiness) -> Result<BoundServer> {
    let token_digest = match &config.bearer_token {
        Some(BearerToken(token)) if token.is_empty() => return Err(HttpError::EmptyToken),
        Some(BearerToken(token)) => Some(blake3::hash(token.as_bytes())),
        None => None,
    };
    let addr = config.listen;
    let listener = TcpListener::bind(addr).await.map_err(|source| HttpError::Bind { addr, source })?;
    let local_addr = listener.local_addr().map_err(|source| HttpError::Bind { addr, source })?;
    let router = router(AppState { metrics, readiness, token_digest });
    Ok(BoundServer { listener, local_addr, router, limits: Limits::default() })
}

/// Bind and serve until `shutdown` is cancelled.
pub async fn serve(
    config: HttpConfig,
    metrics: Metrics,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> Result<()> {
    bind(config, metrics, readiness).await?.run(shutdown).await
}

fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        // Applies to the routes above only: the probes stay open.
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token))
        .route("/readyz", get(readyz))
        .route("/healthz", get(healthz))
        .with_state(state)
}

impl AppState {
    /// Whether the request carries the configured token (true when none is configured).
    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(expected) = self.token_digest else { return true };
        // RFC 7235 §2.1: the scheme is case-insensitive (`bearer` is as good as `Bearer`);
        // RFC 6750 allows one or more spaces before the token.
        headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("Bearer"))
            .is_some_and(|(_, token)| blake3::hash(token.trim_start_matches(' ').as_bytes()) == expected)
    }
}

async fn require_token(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if state.authorized(request.headers()) {
        return next.run(request).await;
    }
    let mut response = (StatusCode::UNAUTHORIZED, "unauthorized\n").into_response();
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

async fn metrics_handler(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|value| value.to_str().ok());
    match state.metrics.encode() {
        Ok(text) if text_format::accepts_openmetrics(accept) => {
            ([(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)], text).into_response()
        }
        Ok(text) => ([(header::CONTENT_TYPE, text_format::TEXT_CONTENT_TYPE)], text_format::from_openmetrics(&text))
            .into_response(),
        Err(error) => {
            tracing::error!(%error, "Metrics scrape failed.");
            (StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics\n").into_response()
        }
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match state.readiness.check() {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(reason) if state.authorized(&headers) => {
            (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {reason}\n")).into_response()
        }
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response(),
    }
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
