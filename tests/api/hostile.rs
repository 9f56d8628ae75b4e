//! Hostile input at the HTTP edge (issue 14): raw malformed request lines, panics in a
//! request task, silent sockets and forged forwarding headers. Raw requests go over a
//! `TcpStream` so nothing on the client side cleans them up.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

/// The bound address of `app`'s HTTP listener.
pub fn socket_addr(app: &TestApp) -> SocketAddr {
    app.address
        .trim_start_matches("http://")
        .parse()
        .expect("http address")
}

/// A raw HTTP/1.1 exchange: the status and the body parsed as JSON (`Null` if not).
#[derive(Debug)]
pub struct Raw {
    pub status: u16,
    pub head: String,
    pub json: Value,
    pub text: String,
}

/// Writes `bytes` on a fresh connection and reads until the server closes it (the
/// request should say `Connection: close`), within 10 s.
pub async fn raw_exchange(addr: SocketAddr, bytes: &[u8]) -> Raw {
    let mut s = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))
        .await
        .expect("connect in time")
        .expect("connect");
    s.write_all(bytes).await.expect("write");
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("answered and closed in time")
        .expect("read");
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in the answer: {text:?}"));
    Raw {
        status,
        head: head.to_string(),
        json: serde_json::from_str(body).unwrap_or(Value::Null),
        text,
    }
}

/// `GET <path> HTTP/1.1` with `path` sent byte for byte.
fn raw_get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_percent_escapes_next_to_multibyte_characters_are_400_validation_not_a_panic() {
    let app = spawn_app(AppOpts::new()).await;
    let addr = socket_addr(&app);
    // The line of the report. hyper refuses `<` and `>` in a request target before any
    // route runs: a 400 (hyper's own, with an empty body) and the server lives on.
    let r = raw_exchange(addr, &raw_get("/v1/products/%a<é>")).await;
    assert_eq!(r.status, 400, "{}", r.text);
    // Raw bytes >= 0x80 do pass hyper and reach the SKU decoder: `%aé` made the old
    // decoder slice inside `é`. Each is a typed 400 `validation`, on every route that
    // decodes a SKU segment.
    let cart = uuid_like();
    for path in [
        "/v1/products/%aé".to_string(),
        "/v1/products/é%2".to_string(),
        "/v1/products/%a%3Cé%3E".to_string(),
    ] {
        let r = raw_exchange(addr, &raw_get(&path)).await;
        assert_eq!(r.status, 400, "{path}: {}", r.text);
        assert_eq!(r.json["error"]["code"], "validation", "{path}: {}", r.text);
    }
    for path in [format!("/v1/carts/{cart}/items/%aé")] {
        let req = format!("DELETE {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let r = raw_exchange(addr, req.as_bytes()).await;
        assert_eq!(r.status, 400, "{path}: {}", r.text);
        assert_eq!(r.json["error"]["code"], "validation", "{path}: {}", r.text);
    }
    app.get("/health/live").await.expect(200);
    assert!(!app.logs().contains("panicked"), "{}", app.logs());
}

fn uuid_like() -> String {
    "00000000-0000-4000-8000-000000000001".to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_request_is_a_500_internal_counted_and_logged_with_its_id() {
    let app = spawn_app(AppOpts::new()).await;
    let addr = socket_addr(&app);
    let r = raw_exchange(
        addr,
        b"GET /v1/products HTTP/1.1\r\nHost: x\r\nX-Request-Id: boom-1\r\nX-Emporium-Fault: panic\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 500, "{}", r.text);
    assert_eq!(r.json["error"]["code"], "internal", "{}", r.text);
    assert!(
        r.head.to_ascii_lowercase().contains("x-request-id: boom-1"),
        "{}",
        r.head
    );
    // The same over a kept-alive connection: the answer comes and the connection lives.
    let resp = send(
        app.request(reqwest::Method::GET, "/v1/products")
            .header("x-emporium-fault", "panic"),
    )
    .await;
    resp.expect_error(500, "internal");
    app.get("/v1/products").await.expect(200);

    let text = app.metrics_text().await;
    let panics: f64 = samples(&text, "emporium_http_panics_total")
        .iter()
        .map(|(_, v)| v)
        .sum();
    assert_eq!(panics, 2.0, "emporium_http_panics_total:\n{text}");
    let deadline = Deadline::new(Duration::from_secs(10), "the panic's log line");
    loop {
        let log = std::fs::read_to_string(app.stdout_log()).unwrap_or_default();
        if log
            .lines()
            .any(|l| l.contains("request panicked") && l.contains("boom-1"))
        {
            break;
        }
        deadline.tick(Duration::from_millis(50)).await;
    }
}
