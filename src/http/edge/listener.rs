//! The accept loop: our own hyper-util server (HTTP/1.1 and HTTP/2, plain or TLS) so
//! the edge knows each connection's peer address. Everything is bounded:
//!
//! - at most [`MAX_CONNECTIONS`] open connections (the accept loop waits for a slot;
//!   the kernel's listen backlog is the only queue), and at most
//!   `http.max_connections_per_ip` per client IP ([`super::per_ip`]; trusted proxies
//!   are exempt): a connection past it is closed at once, in the loop, without a task;
//! - the first byte must arrive within `http.first_byte_timeout_ms`, and the first
//!   request must have started by then too (after the TLS handshake, if any): this also
//!   bounds the HTTP/2 preface, which hyper-util's auto builder waits for without a
//!   timeout. Both waits run in the connection's own task, never in the loop;
//! - a TLS handshake gets [`HANDSHAKE_TIMEOUT`];
//! - request headers must arrive within [`HEADER_READ_TIMEOUT`] (HTTP/1);
//! - HTTP/2 pings every [`KEEPALIVE_INTERVAL`] and closes a peer that does not answer
//!   within [`KEEPALIVE_TIMEOUT`];
//! - a connection with no request in flight for `http.idle_timeout_ms` is closed
//!   gracefully (HTTP/1 and HTTP/2), and dropped [`CLOSE_GRACE`] later if it lingers;
//! - on shutdown: stop accepting, let in-flight requests finish for at most the grace
//!   period, then abort what is left.

use super::per_ip::PerIp;
use super::pipeline::Edge;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use metrics::counter;
use parking_lot::Mutex;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

/// Open connections at most (beyond `http.max_in_flight`, which bounds requests).
pub const MAX_CONNECTIONS: usize = 8192;
/// Time a client has to finish the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a client has to send a request's headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// HTTP/2 keep-alive: a ping this often...
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(20);
/// ...answered within this, or the connection is closed.
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a connection closed for idleness may take to go before it is dropped.
pub const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// How often stale rate-limit keys are swept.
pub const SWEEP_EVERY: Duration = Duration::from_secs(60);

type Builder = auto::Builder<TokioExecutor>;

fn builder() -> Builder {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    b.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(256)
        .keep_alive_interval(Some(KEEPALIVE_INTERVAL))
        .keep_alive_timeout(KEEPALIVE_TIMEOUT);
    b
}

/// The connection-level limits of one listener, from `http.*`.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    pub first_byte: Duration,
    pub idle: Duration,
    pub per_ip: usize,
}

/// Serves `edge` on `listener` until `shutdown` resolves, then drains for at most
/// `grace`.
pub async fn run(
    edge: Arc<Edge>,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send,
    grace: Duration,
) {
    let sweeper = edge.limits().cloned().map(|limits| {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SWEEP_EVERY);
            tick.tick().await;
            loop {
                tick.tick().await;
                limits.retain_recent();
            }
        })
    });
    let limits = edge.connection_limits();
    let per_ip = PerIp::new(limits.per_ip);
    let (stop_tx, stop_rx) = watch::channel(false);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let builder = Arc::new(builder());
    let mut conns = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // Reap finished connection tasks so the set stays as small as the live ones.
        while conns.try_join_next().is_some() {}
        let slot = tokio::select! {
            () = &mut shutdown => break,
            s = slots.clone().acquire_owned() => match s {
                Ok(s) => s,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(pair) => pair,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
        };
        let ip_slot = if edge.trusted_proxies().contains(peer.ip()) {
            None
        } else {
            match per_ip.try_acquire(peer.ip()) {
                Some(s) => Some(s),
                None => {
                    counter!("emporium_http_connections_refused_total", "reason" => "per_ip_cap")
                        .increment(1);
                    tracing::debug!(%peer, cap = limits.per_ip, "per-IP connection cap; closed");
                    drop(stream);
                    continue;
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let (edge, builder, tls, stop) =
            (edge.clone(), builder.clone(), tls.clone(), stop_rx.clone());
        conns.spawn(async move {
            let _slots = (slot, ip_slot);
            serve_stream(stream, peer, edge, &builder, tls, stop, limits).await;
        });
    }
    drop(listener);
    if let Some(s) = sweeper {
        s.abort();
    }
    tracing::info!(
        connections = conns.len(),
        ?grace,
        "shutting down: no new connections; finishing in-flight requests"
    );
    let _ = stop_tx.send(true);
    let drained =
        tokio::time::timeout(grace, async { while conns.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(?grace, "in-flight requests did not finish in time; closing");
    }
    conns.abort_all();
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while conns.join_next().await.is_some() {}
    })
    .await;
}

/// Resolves once shutdown has begun.
async fn stopping(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// One accepted socket: the first byte, the TLS handshake if any, then HTTP.
async fn serve_stream(
    stream: TcpStream,
    peer: SocketAddr,
    edge: Arc<Edge>,
    builder: &Builder,
    tls: Option<TlsAcceptor>,
    mut stop: watch::Receiver<bool>,
    limits: ConnLimits,
) {
    let accepted = Instant::now();
    let mut probe = [0u8; 1];
    let first = tokio::select! {
        () = stopping(&mut stop) => return,
        r = tokio::time::timeout(limits.first_byte, stream.peek(&mut probe)) => r,
    };
    match first {
        Ok(Ok(n)) if n > 0 => {}
        Ok(Ok(_)) => return,
        Ok(Err(e)) => return tracing::debug!(%peer, error = %e, "connection failed"),
        Err(_) => {
            counter!("emporium_http_connection_timeouts_total", "phase" => "first_byte")
                .increment(1);
            return tracing::debug!(%peer, "no first byte in time; closed");
        }
    }
    let started = match tls {
        None => return connection(stream, peer, edge, builder, stop, limits, accepted).await,
        Some(acceptor) => {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => return tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
            }
        }
    };
    connection(started, peer, edge, builder, stop, limits, Instant::now()).await;
}

/// What one connection is doing: requests in flight, whether one ever started, and
/// when the last one ended.
struct Activity {
    in_flight: AtomicUsize,
    any: AtomicBool,
    last: Mutex<Instant>,
}

/// Held while a request of the connection runs.
struct Busy(Arc<Activity>);

impl Activity {
    fn new(since: Instant) -> Arc<Self> {
        Arc::new(Self {
            in_flight: AtomicUsize::new(0),
            any: AtomicBool::new(false),
            last: Mutex::new(since),
        })
    }

    fn begin(self: &Arc<Self>) -> Busy {
        self.any.store(true, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        Busy(self.clone())
    }

    /// When the connection becomes idle-expired if nothing happens meanwhile; `None`
    /// when a request is in flight (look again after `idle`).
    fn expires(&self, limits: &ConnLimits) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let limit = if self.any.load(Ordering::Relaxed) {
            limits.idle
        } else {
            limits.first_byte
        };
        Some(*self.last.lock() + limit)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        *self.0.last.lock() = Instant::now();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves one connection until it closes, it idles past its limit, or, once shutdown
/// starts, until its in-flight requests are answered.
async fn connection<I>(
    io: I,
    peer: SocketAddr,
    edge: Arc<Edge>,
    builder: &Builder,
    mut stop: watch::Receiver<bool>,
    limits: ConnLimits,
    since: Instant,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let ip = peer.ip();
    let activity = Activity::new(since);
    let svc = {
        let activity = activity.clone();
        hyper::service::service_fn(move |req| {
            let edge = edge.clone();
            let busy = activity.begin();
            async move {
                let resp = edge.handle(req, ip).await;
                drop(busy);
                Ok::<_, Infallible>(resp)
            }
        })
    };
    let conn = builder.serve_connection(TokioIo::new(io), svc);
    let mut conn = std::pin::pin!(conn);
    let mut closing = false;
    let mut drop_at: Option<Instant> = None;
    loop {
        let check = activity
            .expires(&limits)
            .unwrap_or_else(|| Instant::now() + limits.idle);
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            () = stopping(&mut stop), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            () = tokio::time::sleep_until(check), if !closing => {
                if activity.expires(&limits).is_some_and(|at| at <= Instant::now()) {
                    let phase = if activity.any.load(Ordering::Relaxed) { "idle" } else { "first_request" };
                    counter!("emporium_http_connection_timeouts_total", "phase" => phase).increment(1);
                    tracing::debug!(%peer, phase, "connection idle past its limit; closing");
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                    drop_at = Some(Instant::now() + CLOSE_GRACE);
                }
            }
            () = tokio::time::sleep_until(drop_at.unwrap_or_else(Instant::now)), if drop_at.is_some() => {
                return;
            }
        }
    }
}

/// Accept errors: connection-level ones are the client's problem; others (such as
/// running out of file descriptors) get a short pause so the loop does not spin.
async fn accept_error(e: std::io::Error) {
    use std::io::ErrorKind as K;
    if matches!(
        e.kind(),
        K::ConnectionRefused | K::ConnectionAborted | K::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept failed; pausing");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

#[cfg(test)]
#[path = "listener_tests.rs"]
mod tests;
