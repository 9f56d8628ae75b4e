//! The accept loop: our own hyper-util server (HTTP/1.1 and HTTP/2, plain or TLS) so
//! the edge knows each connection's peer address. Everything is bounded:
//!
//! - at most [`MAX_CONNECTIONS`] open connections (the accept loop waits for a slot;
//!   the kernel's listen backlog is the only queue);
//! - a TLS handshake gets [`HANDSHAKE_TIMEOUT`], in the connection's own task, so a slow
//!   client never blocks the loop;
//! - request headers must arrive within [`HEADER_READ_TIMEOUT`];
//! - on shutdown: stop accepting, let in-flight requests finish for at most the grace
//!   period, then abort what is left.

use super::pipeline::Edge;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

/// Open connections at most (beyond `http.max_in_flight`, which bounds requests).
pub const MAX_CONNECTIONS: usize = 8192;
/// Time a client has to finish the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a client has to send a request's headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
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
        .max_concurrent_streams(256);
    b
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
    let graceful = GracefulShutdown::new();
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
        let _ = stream.set_nodelay(true);
        let watcher = graceful.watcher();
        let (edge, builder, tls) = (edge.clone(), builder.clone(), tls.clone());
        conns.spawn(async move {
            let _slot = slot;
            match tls {
                None => connection(stream, peer, edge, &builder, watcher).await,
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => connection(tls, peer, edge, &builder, watcher).await,
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
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
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(?grace, "in-flight requests did not finish in time; closing");
    }
    conns.abort_all();
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while conns.join_next().await.is_some() {}
    })
    .await;
}

/// Serves one connection until it closes or, once shutdown starts, until its in-flight
/// requests are answered.
async fn connection<I>(
    io: I,
    peer: SocketAddr,
    edge: Arc<Edge>,
    builder: &Builder,
    watcher: Watcher,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let ip = peer.ip();
    let svc = hyper::service::service_fn(move |req| {
        let edge = edge.clone();
        async move { Ok::<_, Infallible>(edge.handle(req, ip).await) }
    });
    let conn = builder.serve_connection(TokioIo::new(io), svc);
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
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
