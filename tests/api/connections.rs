//! Connection-level limits (issue 14): silent sockets are closed after the first-byte
//! timeout, one address cannot hold more than `http.max_connections_per_ip`, and the
//! accept loop keeps serving everyone else meanwhile.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::helpers::*;
use crate::hostile::socket_addr;

const FIRST_BYTE_MS: u64 = 1500;

/// A connection to `addr` from `source` (a loopback address other than 127.0.0.1).
pub async fn connect_from(source: &str, addr: SocketAddr) -> TcpStream {
    let sock = TcpSocket::new_v4().expect("socket");
    sock.bind(format!("{source}:0").parse().unwrap())
        .expect("bind the source address");
    tokio::time::timeout(Duration::from_secs(5), sock.connect(addr))
        .await
        .expect("connect in time")
        .expect("connect")
}

/// Waits (at most `within`) for the server to close `s`: EOF or a reset.
async fn closed_by_server(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(within, s.read(&mut buf)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_sockets_from_one_address_lock_out_nobody_and_are_closed() {
    let app = spawn_app(
        AppOpts::new()
            .env("EMPORIUM_HTTP__MAX_CONNECTIONS_PER_IP", 64)
            .env("EMPORIUM_HTTP__FIRST_BYTE_TIMEOUT_MS", FIRST_BYTE_MS),
    )
    .await;
    let addr = socket_addr(&app);
    let opened = Instant::now();
    let mut silent = Vec::new();
    for _ in 0..64 {
        silent.push(connect_from("127.0.0.2", addr).await);
    }
    // Someone else is answered at once.
    let quick = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let resp = quick
        .get(app.url("/v1/products"))
        .send()
        .await
        .expect("a request from 127.0.0.1 is answered within 2 s");
    assert_eq!(resp.status().as_u16(), 200);

    // The 65th from the same address is closed without waiting for anything.
    let mut extra = connect_from("127.0.0.2", addr).await;
    assert!(
        closed_by_server(&mut extra, Duration::from_secs(10)).await,
        "the 65th connection from 127.0.0.2 was not closed"
    );
    let text = app.metrics_text().await;
    let refused: f64 = samples(&text, "emporium_http_connections_refused_total")
        .iter()
        .filter(|(l, _)| l.get("reason").map(String::as_str) == Some("per_ip_cap"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(refused, 1.0, "{text}");

    // A client that starts the HTTP/2 preface and stops is closed too.
    let mut preface = TcpStream::connect(addr).await.unwrap();
    preface.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();

    // Every silent socket is closed, and not before the first-byte timeout.
    for (i, s) in silent.iter_mut().enumerate() {
        assert!(
            closed_by_server(s, Duration::from_secs(15)).await,
            "silent socket {i} still open"
        );
    }
    assert!(
        opened.elapsed() >= Duration::from_millis(FIRST_BYTE_MS),
        "closed before the first-byte timeout: {:?}",
        opened.elapsed()
    );
    assert!(
        closed_by_server(&mut preface, Duration::from_secs(15)).await,
        "a half-sent HTTP/2 preface kept its connection"
    );
    // The slots came back: 127.0.0.2 is served again.
    let mut again = connect_from("127.0.0.2", addr).await;
    again
        .write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), again.read_to_end(&mut out))
        .await
        .expect("answered")
        .unwrap();
    assert!(
        out.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    let text = app.metrics_text().await;
    let timeouts = |phase: &str| -> f64 {
        samples(&text, "emporium_http_connection_timeouts_total")
            .iter()
            .filter(|(l, _)| l.get("phase").map(String::as_str) == Some(phase))
            .map(|(_, v)| v)
            .sum()
    };
    assert_eq!(timeouts("first_byte"), 64.0, "{text}");
    assert_eq!(timeouts("first_request"), 1.0, "{text}");
}
