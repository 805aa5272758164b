//! HTTP endpoint tests over a real socket on 127.0.0.1:0, using raw HTTP/1.1.

use std::net::SocketAddr;

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
    let config =
        HttpConfig { listen: SocketAddr::from(([127, 0, 0, 1], 0)), bearer_token: token.map(BearerToken::new) };
    let readiness = Readiness::new();
    let shutdown = CancellationToken::new();
    let bound = bind(config, Metrics::new(&MetricsConfig::default()), readiness.clone()).await?;
    let addr = bound.local_addr();
    let task = tokio::spawn(bound.run(shutdown.clone()));
    Ok(Server { addr, readiness, shutdown, task })
}

/// Status code, headers (lower-cased) and body of one GET.
async fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> std::io::Result<(u16, String, String)> {
    let mut stream = TcpStream::connect(addr).await?;
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await?;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw.as_str(), ""));
    let status = head.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    Ok((status, head.to_ascii_lowercase(), body.to_owned()))
}

#[tokio::test]
async fn routes_answer_without_a_token() -> TestResult {
    let server = start(None).await?;
    let (status, _, body) = get(server.addr, "/healthz", None).await?;
    assert_eq!((status, body.as_str()), (200, "ok\n"));

    let (status, head, body) = get(server.addr, "/metrics", None).await?;
    assert_eq!(status, 200);
    assert!(head.contains("content-type: application/openmetrics-text; version=1.0.0; charset=utf-8"), "{head}");
    assert!(body.contains("driftwatch_build_info"), "{body}");
    assert!(body.trim_end().ends_with("# EOF"), "{body}");

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
