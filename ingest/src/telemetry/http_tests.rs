//! HTTP endpoint tests over a real socket on 127.0.0.1:0, using raw HTTP/1.1.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use super::*;
use crate::telemetry::metrics::MetricsConfig;

type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

struct Server {
    addr: SocketAddr,
    readiness: Readiness,
    shutdown: CancellationToken,
    task: JoinHandle<Result<()>>,
}

async fn start(token: Option<&str>) -> std::result::Result<Server, HttpError> {
    start_limited(token, Limits::default()).await
}

async fn start_limited(token: Option<&str>, limits: Limits) -> std::result::Result<Server, HttpError> {
    let (mut bound, readiness) = bind_local(token).await?;
    bound.limits = limits;
    Ok(spawn((bound, readiness)))
}

async fn bind_local(token: Option<&str>) -> std::result::Result<(BoundServer, Readiness), HttpError> {
    let config =
        HttpConfig { listen: SocketAddr::from(([127, 0, 0, 1], 0)), bearer_token: token.map(BearerToken::new) };
    let readiness = Readiness::new();
    let bound = bind(config, Metrics::new(&MetricsConfig::default()), readiness.clone()).await?;
    Ok((bound, readiness))
}

fn spawn((bound, readiness): (BoundServer, Readiness)) -> Server {
    let shutdown = CancellationToken::new();
    let addr = bound.local_addr();
    let task = tokio::spawn(bound.run(shutdown.clone()));
    Server { addr, readiness, shutdown, task }
}

/// Status code, headers (lower-cased) and body of one GET.
async fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> std::io::Result<(u16, String, String)> {
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    get_with_headers(addr, path, &auth).await
}

/// Like [`get`], with `headers` (each ending in CRLF) sent as they are.
async fn get_with_headers(addr: SocketAddr, path: &str, headers: &str) -> std::io::Result<(u16, String, String)> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(request_text(path, headers).as_bytes()).await?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await?;
    Ok(parse_response(&raw))
}

fn request_text(path: &str, headers: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{headers}Connection: close\r\n\r\n")
}

fn parse_response(raw: &str) -> (u16, String, String) {
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw, ""));
    let status = head.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_owned())
}

/// Far beyond the short limits the tests set, so a slow machine does not fail them, and short
/// enough that a server that never closes fails the test instead of hanging it.
const GENEROUS: Duration = Duration::from_secs(5);

/// Limits short enough for tests; the others stay at their production values.
fn short_header_read() -> Limits {
    Limits { header_read: Duration::from_millis(200), ..Limits::default() }
}

/// What the server sent until it closed the connection, or `None` if it kept it open for `wait`.
async fn read_until_closed(stream: &mut TcpStream, wait: Duration) -> std::io::Result<Option<String>> {
    let mut raw = Vec::new();
    match tokio::time::timeout(wait, stream.read_to_end(&mut raw)).await {
        Ok(read) => {
            read?;
            Ok(Some(String::from_utf8_lossy(&raw).into_owned()))
        }
        Err(_) => Ok(None),
    }
}

#[tokio::test]
async fn routes_answer_without_a_token() -> TestResult {
    let server = start(None).await?;
    let (status, _, body) = get(server.addr, "/healthz", None).await?;
    assert_eq!((status, body.as_str()), (200, "ok\n"));

    // Prometheus asks for OpenMetrics; curl and promtool take the classic text format.
    let accept = "Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5\r\n";
    let (status, head, body) = get_with_headers(server.addr, "/metrics", accept).await?;
    assert_eq!(status, 200);
    assert!(head.contains("content-type: application/openmetrics-text; version=1.0.0; charset=utf-8"), "{head}");
    assert!(body.contains("driftwatch_build_info"), "{body}");
    assert!(body.trim_end().ends_with("# EOF"), "{body}");
    let (status, head, body) = get(server.addr, "/metrics", None).await?;
    assert_eq!(status, 200);
    assert!(head.contains("content-type: text/plain; version=0.0.4; charset=utf-8"), "{head}");
    assert!(body.contains("# TYPE driftwatch_build_info gauge\ndriftwatch_build_info{"), "{body}");
    assert!(!body.contains("# EOF"), "{body}");

    let (status, _, body) = get(server.addr, "/nope", None).await?;
    assert_eq!(status, 404, "{body}");

    server.shutdown.cancel();
    server.task.await??;
    Ok(())
}

#[tokio::test]
async fn readyz_goes_from_503_with_reason_to_200_and_back() -> TestResult {
    let server = start(None).await?;
    let (status, _, body) = get(server.addr, "/readyz", None).await?;
    assert_eq!((status, body.as_str()), (503, "not ready: starting\n"));

    server.readiness.set_ready();
    let (status, _, _) = get(server.addr, "/readyz", None).await?;
    assert_eq!(status, 200);

    server.readiness.set_not_ready("no partitions assigned");
    let (status, _, body) = get(server.addr, "/readyz", None).await?;
    assert_eq!(status, 503);
    assert!(body.contains("no partitions assigned"), "{body}");

    server.shutdown.cancel();
    server.task.await??;
    Ok(())
}

#[tokio::test]
async fn bearer_token_guards_metrics_and_readiness_reasons_not_probes() -> TestResult {
    let server = start(Some("s3cret")).await?;
    let path = "/metrics";
    let (status, head, _) = get(server.addr, path, None).await?;
    assert_eq!(status, 401, "{path} without token");
    assert!(head.contains("www-authenticate: bearer"), "{head}");
    let (status, _, _) = get(server.addr, path, Some("wrong")).await?;
    assert_eq!(status, 401, "{path} with a wrong token");
    let (status, _, _) = get(server.addr, path, Some("s3cret-and-more")).await?;
    assert_eq!(status, 401, "{path} with a longer token");
    let (status, _, _) = get(server.addr, path, Some("s3cret")).await?;
    assert_eq!(status, 200, "{path} with the token");

    // The probes stay open; why the daemon is unready is told only to the token's holder.
    let (status, _, _) = get(server.addr, "/healthz", None).await?;
    assert_eq!(status, 200);
    server.readiness.set_not_ready("lake not writable: s3://private-bucket/lake");
    for token in [None, Some("wrong")] {
        let (status, _, body) = get(server.addr, "/readyz", token).await?;
        assert_eq!((status, body.as_str()), (503, "not ready\n"), "{token:?}");
    }
    let (status, _, body) = get(server.addr, "/readyz", Some("s3cret")).await?;
    assert_eq!((status, body.as_str()), (503, "not ready: lake not writable: s3://private-bucket/lake\n"));
    server.readiness.set_ready();
    let (status, _, body) = get(server.addr, "/readyz", None).await?;
    assert_eq!((status, body.as_str()), (200, "ready\n"));

    server.shutdown.cancel();
    server.task.await??;
    Ok(())
}

#[tokio::test]
async fn empty_token_is_a_config_error() {
    assert!(matches!(start(Some("")).await, Err(HttpError::EmptyToken)));
}

#[test]
fn token_never_shows_in_debug_and_config_parses() -> TestResult {
    let config: HttpConfig = serde_json::from_str(r#"{"bearer_token": "hunter2"}"#)?;
    assert_eq!(config.listen, SocketAddr::from(([127, 0, 0, 1], 9464)));
    let debug = format!("{config:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(debug.contains("redacted"), "{debug}");
    assert!(serde_json::from_str::<HttpConfig>(r#"{"listen": "0.0.0.0:1", "token": "x"}"#).is_err());
    Ok(())
}

#[tokio::test]
async fn a_blocking_flag_makes_readyz_unready_whatever_the_pipeline_last_said() -> TestResult {
    let server = start(None).await?;
    let lake_failing = Arc::new(AtomicBool::new(false));
    server.readiness.not_ready_while(Arc::clone(&lake_failing), "lake not writable");
    server.readiness.set_ready();
    assert_eq!(get(server.addr, "/readyz", None).await?.0, 200);

    lake_failing.store(true, Ordering::Release);
    let (status, _, body) = get(server.addr, "/readyz", None).await?;
    assert_eq!(status, 503);
    assert!(body.contains("lake not writable"), "{body}");

    lake_failing.store(false, Ordering::Release);
    assert_eq!(get(server.addr, "/readyz", None).await?.0, 200);
    server.shutdown.cancel();
    server.task.await??;
    Ok(())
}

#[tokio::test]
async fn half_sent_request_line_is_closed_after_the_header_read_timeout() -> TestResult {
    let server = start_limited(None, short_header_read()).await?;
    let mut slow = TcpStream::connect(server.addr).await?;
    slow.write_all(b"GET /heal").await?;
    let closed = read_until_closed(&mut slow, GENEROUS).await?;
    assert!(closed.is_some(), "a half-sent request line kept its connection open for {GENEROUS:?}");

    // The slot it held is free, and well-behaved clients are still answered.
    assert_eq!(get(server.addr, "/healthz", None).await?.0, 200);
    server.shutdown.cancel();
    server.task.await??;
    Ok(())
}

#[tokio::test]
async fn idle_kept_alive_connection_is_closed_after_the_header_read_timeout() -> TestResult {
    let server = start_limited(None, short_header_read()).await?;
    let mut idle = TcpStream::connect(server.addr).await?;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").await?;
    let answered = read_until_closed(&mut idle, GENEROUS).await?.ok_or("kept-alive connection never closed")?;
    assert_eq!(parse_response(&answered).0, 200, "{answered}");
    server.shutdown.cancel();
    server.task.await??;
    Ok(())
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_for_a_free_slot() -> TestResult {
    let server = start_limited(None, Limits { max_connections: 2, ..Limits::default() }).await?;
    // Two silent clients take both slots (the header-read timeout is 10 s here).
    let first_holder = TcpStream::connect(server.addr).await?;
    let _second_holder = TcpStream::connect(server.addr).await?;

    let mut waiting = TcpStream::connect(server.addr).await?;
    waiting.write_all(request_text("/healthz", "").as_bytes()).await?;
    let early = read_until_closed(&mut waiting, Duration::from_millis(300)).await?;
    assert_eq!(early, None, "a connection beyond the cap was served");

    drop(first_holder);
    let answered = read_until_closed(&mut waiting, GENEROUS).await?.ok_or("not served after a slot freed")?;
    assert_eq!(parse_response(&answered).0, 200, "{answered}");

    server.shutdown.cancel();
    server.task.await??;
    Ok(())
}

#[tokio::test]
async fn bearer_scheme_is_case_insensitive_and_the_token_is_not() -> TestResult {
    let server = start(Some("s3cret")).await?;
    for accepted in ["bearer s3cret", "BEARER s3cret", "Bearer  s3cret"] {
        let (status, _, _) =
            get_with_headers(server.addr, "/metrics", &format!("Authorization: {accepted}\r\n")).await?;
        assert_eq!(status, 200, "{accepted}");
    }
    for refused in ["bearer wrong", "bearer S3CRET", "Basic s3cret", "Bearers3cret", "bearer"] {
        let (status, _, _) =
            get_with_headers(server.addr, "/metrics", &format!("Authorization: {refused}\r\n")).await?;
        assert_eq!(status, 401, "{refused}");
    }
    server.shutdown.cancel();
    server.task.await??;
    Ok(())
}

#[tokio::test]
async fn a_handler_past_the_request_timeout_gets_503() -> TestResult {
    let (mut bound, readiness) = bind_local(None).await?;
    bound.limits.request = Duration::from_millis(200);
    bound.router = Router::new().route(
        "/stuck",
        axum::routing::get(|| async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            "late\n"
        }),
    );
    let server = spawn((bound, readiness));
    let (status, _, body) = tokio::time::timeout(GENEROUS, get(server.addr, "/stuck", None)).await??;
    assert_eq!((status, body.as_str()), (503, "request timed out\n"));
    server.shutdown.cancel();
    server.task.await??;
    Ok(())
}

#[tokio::test]
async fn shutdown_does_not_wait_for_a_client_that_never_finishes_its_request() -> TestResult {
    let server =
        start_limited(None, Limits { shutdown_drain: Duration::from_millis(200), ..Limits::default() }).await?;
    let mut slow = TcpStream::connect(server.addr).await?;
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: loc").await?;
    // Answered and closed, so the server has surely taken the slow connection in.
    assert_eq!(get(server.addr, "/healthz", None).await?.0, 200);

    server.shutdown.cancel();
    tokio::time::timeout(GENEROUS, server.task).await???;
    assert!(read_until_closed(&mut slow, GENEROUS).await?.is_some(), "connection left open after shutdown");
    Ok(())
}

#[tokio::test]
async fn a_response_nobody_reads_fails_after_the_write_timeout() -> TestResult {
    // A 64-byte pipe whose reader never reads stands for a client that does not take its answer.
    let (server_side, _unread_client) = tokio::io::duplex(64);
    let mut socket = WriteDeadline::new(server_side, Duration::from_millis(200));
    let written = tokio::time::timeout(GENEROUS, socket.write_all(&[b'x'; 4096])).await?;
    let error = written.err().ok_or("a write nobody read succeeded")?;
    assert_eq!(error.kind(), std::io::ErrorKind::TimedOut);

    // A client that reads gets everything, however many write-and-flush rounds it takes.
    let (server_side, mut client) = tokio::io::duplex(64);
    let mut socket = WriteDeadline::new(server_side, Duration::from_millis(200));
    let reader = tokio::spawn(async move {
        let mut received = Vec::new();
        client.read_to_end(&mut received).await.map(|_| received.len())
    });
    for _ in 0..3 {
        socket.write_all(&[b'x'; 4096]).await?;
        socket.flush().await?;
    }
    socket.shutdown().await?;
    drop(socket);
    assert_eq!(reader.await??, 3 * 4096);
    Ok(())
}
