//! A real HTTP sink on loopback for webhook, SMS-provider and push-service tests: it
//! records every request (path, headers and body) and answers with the next status of its script (200 once the script is used
//! up), or never answers at all (a dead endpoint).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::{engine::general_purpose::STANDARD, Engine};
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use crate::helpers::Deadline;

/// One request the sink received.
#[derive(Clone, Debug)]
pub struct Received {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: String,
    pub path: String,
    /// Every header, names lowercase.
    pub headers: Vec<(String, String)>,
    /// The body's bytes (a push message's is binary).
    pub raw: Vec<u8>,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }

    /// The value of header `name` (lowercase), if it came.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A form-encoded body's field `name`.
    pub fn form(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(&self.raw)
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

#[derive(Default)]
struct State {
    script: VecDeque<u16>,
    then: u16,
    hang: bool,
    got: Vec<Received>,
}

/// The sink; it stops when dropped.
pub struct Sink {
    pub url: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Sink {
    /// A sink answering `script` in order, then `then` to every later request.
    pub async fn start(script: &[u16], then: u16) -> Sink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State {
            script: script.iter().copied().collect(),
            then,
            ..Default::default()
        }));
        let st = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((conn, _)) = listener.accept().await else {
                    return;
                };
                let st = st.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let st = st.clone();
                        async move { Ok::<_, Infallible>(answer(st, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(conn), svc)
                        .await;
                });
            }
        });
        Sink { url, state, task }
    }

    /// A sink that takes every request and never answers.
    pub async fn hanging() -> Sink {
        let s = Sink::start(&[], 200).await;
        s.state.lock().unwrap().hang = true;
        s
    }

    /// From now on, answer `status` to every request.
    pub fn answer_always(&self, status: u16) {
        let mut s = self.state.lock().unwrap();
        s.script.clear();
        s.then = status;
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().got.clone()
    }

    /// Waits until at least `n` requests arrived (at most `secs` seconds).
    pub async fn wait_for(&self, n: usize, secs: u64) -> Vec<Received> {
        let deadline = Deadline::new(
            Duration::from_secs(secs),
            format!("{n} webhook requests at {}", self.url),
        );
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            deadline.tick(Duration::from_millis(25)).await;
        }
    }
}

async fn answer(
    st: Arc<Mutex<State>>,
    req: Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (id, timestamp, signature) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    );
    let path = req.uri().path().to_owned();
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                v.to_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let raw = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    let body = String::from_utf8_lossy(&raw).into_owned();
    let (status, hang) = {
        let mut s = st.lock().unwrap();
        s.got.push(Received {
            id,
            timestamp,
            signature,
            body,
            path,
            headers,
            raw,
        });
        let status = s.script.pop_front().unwrap_or(s.then);
        (status, s.hang)
    };
    if hang {
        std::future::pending::<()>().await;
    }
    let mut r = Response::new(Full::new(Bytes::from(format!("sink says {status}"))));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
    r
}

/// Whether `r` carries a valid Standard Webhooks signature for `secret` (`whsec_...`),
/// by [`verify`], the receiver's check that `docs/WEBHOOKS.md` shows.
pub fn verifies(r: &Received, secret: &str) -> bool {
    verify(secret, &r.id, &r.timestamp, &r.signature, r.body.as_bytes())
}

/// `docs/WEBHOOKS.md`'s Rust example, verbatim, so the documented check is the one the
/// tests run against real deliveries.
fn verify(secret: &str, id: &str, ts: &str, sig_header: &str, body: &[u8]) -> bool {
    let Some(key) = secret
        .strip_prefix("whsec_")
        .and_then(|s| STANDARD.decode(s).ok())
    else {
        return false;
    };
    sig_header
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .any(|sig| {
            let Ok(sig) = STANDARD.decode(sig) else {
                return false;
            };
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).expect("any key length");
            mac.update(format!("{id}.{ts}.").as_bytes());
            mac.update(body);
            mac.verify_slice(&sig).is_ok() // constant time
        })
}
