//! The accept loop over real sockets: graceful shutdown lets an in-flight request
//! finish, stops accepting, and is bounded by the grace period.

use crate::app::config::{Config, Secret};
use crate::app::App;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Server {
    app: App,
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

async fn start(grace_ms: u64) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::default();
    cfg.store.data_dir = dir.path().to_owned();
    cfg.auth.admin_token = Secret("t".into());
    cfg.http.shutdown_grace_ms = grace_ms;
    let app = App::build(cfg).await.unwrap();
    app.recover().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let served = app.clone();
    let task = tokio::spawn(async move {
        crate::http::serve(&served, listener, async move {
            let _ = rx.await;
        })
        .await
    });
    Server {
        app,
        addr,
        stop,
        task,
        _dir: dir,
    }
}

/// Sends the headers and the first half of a 30-byte body, then waits.
async fn half_sent_request(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /v1/carts/{}/items HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 30\r\n\r\n",
        uuid::Uuid::new_v4()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(b"{\"sku\":\"P1\",\"qu").await.unwrap();
    s
}

#[tokio::test]
async fn shutdown_finishes_in_flight_requests_and_stops_accepting() {
    let srv = start(5_000).await;
    let mut inflight = half_sent_request(srv.addr).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    srv.stop.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // No new connections once shutdown has begun.
    let refused = tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(srv.addr)).await;
    assert!(!matches!(refused, Ok(Ok(_))), "still accepting");
    // The request in flight still gets its answer.
    inflight.write_all(b"antity\":1}     ").await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), inflight.read_to_end(&mut out))
        .await
        .expect("answered in time")
        .unwrap();
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 "), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("x-request-id: "),
        "{text}"
    );
    let served = tokio::time::timeout(Duration::from_secs(5), srv.task)
        .await
        .expect("serve returned")
        .unwrap();
    assert!(served.is_ok());
    srv.app.shutdown().await;
}

#[tokio::test]
async fn grace_bounds_a_request_that_never_finishes() {
    let srv = start(300).await;
    let _stuck = half_sent_request(srv.addr).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t0 = Instant::now();
    srv.stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), srv.task)
        .await
        .expect("serve returned within the grace period")
        .unwrap()
        .unwrap();
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    srv.app.shutdown().await;
}
