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

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::metrics::Metrics;

/// Content type of the OpenMetrics text exposition.
pub const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

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
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = BearerToken;
            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("a quoted string")
            }
            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<BearerToken, E> {
                Ok(BearerToken(value.to_owned()))
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<BearerToken, E> {
                Err(E::custom(NOT_TEXT))
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<BearerToken, E> {
                Err(E::custom(NOT_TEXT))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<BearerToken, E> {
                Err(E::custom(NOT_TEXT))
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<BearerToken, E> {
                Err(E::custom(NOT_TEXT))
            }
        }
        const NOT_TEXT: &str = "the bearer token must be a quoted string (its value is not shown)";
        deserializer.deserialize_any(Text)
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
    /// The server stopped with an I/O error.
    #[error("http server on {addr} failed: {source}")]
    Serve {
        /// The bound address.
        addr: SocketAddr,
        /// What failed.
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
}

impl BoundServer {
    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serve until `shutdown` is cancelled, then finish in-flight requests.
    pub async fn run(self, shutdown: CancellationToken) -> Result<()> {
        let addr = self.local_addr;
        tracing::info!(%addr, "HTTP endpoint listening.");
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
            .map_err(|source| HttpError::Serve { addr, source })?;
        tracing::info!(%addr, "HTTP endpoint stopped.");
        Ok(())
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
    Ok(BoundServer { listener, local_addr, router })
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
        headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .is_some_and(|token| blake3::hash(token.as_bytes()) == expected)
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

async fn metrics_handler(State(state): State<AppState>) -> Response {
    match state.metrics.encode() {
        Ok(text) => ([(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)], text).into_response(),
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
