//! One keep-alive HTTP/1.1 connection per simulated user, on hyper's low-level client:
//! no pool and no per-request allocation beyond the request itself, so the load
//! generator spends as little of the shared CPU as it can.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::time::Duration;

/// What a request got back, or why it got nothing.
pub enum Reply {
    Status(u16, Bytes),
    /// No answer within the request timeout; the connection is dropped.
    Timeout,
    /// The connection failed (refused, reset, closed).
    Io(String),
}

impl Reply {
    /// The error key of a non-2xx answer: `"<status> <code>"` from our JSON error body,
    /// or the bare status when the body has no code.
    pub fn error_key(status: u16, body: &[u8]) -> String {
        let code = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v["error"]["code"].as_str().map(str::to_string));
        match code {
            Some(c) => format!("{status} {c}"),
            None => status.to_string(),
        }
    }
}

/// A user's connection; it re-dials after a failure.
pub struct Conn {
    /// `host:port`: dialled, and sent as the `Host` header.
    addr: String,
    token: Option<String>,
    timeout: Duration,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    /// `addr` is `host:port`. `token`, when set, goes out as a bearer token.
    pub fn new(addr: &str, token: Option<String>, timeout: Duration) -> Self {
        Self {
            addr: addr.to_string(),
            token,
            timeout,
            sender: None,
        }
    }

    async fn connect(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, String> {
        if self.sender.as_ref().is_some_and(|s| !s.is_closed()) {
            return Ok(self.sender.as_mut().expect("checked above"));
        }
        let stream = tokio::time::timeout(self.timeout, tokio::net::TcpStream::connect(&self.addr))
            .await
            .map_err(|_| "connect timeout".to_string())?
            .map_err(|e| format!("connect: {}", e.kind()))?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(self.sender.insert(sender))
    }

    /// Sends one request and reads the whole answer, within the timeout.
    pub async fn send(&mut self, method: &http::Method, path: &str, body: Option<Bytes>) -> Reply {
        match self
            .builder(method, path)
            .body(Full::new(body.unwrap_or_default()))
        {
            Ok(req) => self.send_request(req).await,
            Err(e) => Reply::Io(format!("request: {e}")),
        }
    }

    /// A request to `path` with the connection's headers (host, JSON, bearer token), for
    /// callers that add their own (such as `Idempotency-Key`).
    pub fn builder(&self, method: &http::Method, path: &str) -> http::request::Builder {
        let b = http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, &self.addr)
            .header(http::header::CONTENT_TYPE, "application/json");
        match &self.token {
            Some(t) => b.header(http::header::AUTHORIZATION, format!("Bearer {t}")),
            None => b,
        }
    }

    /// Sends a request made with [`Conn::builder`] and reads the whole answer.
    pub async fn send_request(&mut self, req: http::Request<Full<Bytes>>) -> Reply {
        let timeout = self.timeout;
        let result = tokio::time::timeout(timeout, async {
            let sender = self.connect().await?;
            sender.ready().await.map_err(|e| format!("ready: {e}"))?;
            let resp = sender
                .send_request(req)
                .await
                .map_err(|e| format!("send: {e}"))?;
            let status = resp.status().as_u16();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("body: {e}"))?
                .to_bytes();
            Ok::<_, String>((status, body))
        })
        .await;
        match result {
            Ok(Ok((status, body))) => Reply::Status(status, body),
            Ok(Err(e)) => {
                self.sender = None;
                Reply::Io(e)
            }
            Err(_) => {
                self.sender = None;
                Reply::Timeout
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_keys_carry_the_status_and_our_error_code() {
        let body = br#"{"error":{"code":"out_of_stock","message":"x"}}"#;
        assert_eq!(Reply::error_key(409, body), "409 out_of_stock");
        assert_eq!(Reply::error_key(502, b"<html>bad gateway</html>"), "502");
    }
}
