//! The gRPC accept loop: TCP connections, capped per IP and in all ([`ConnLimits`]), made
//! TLS when `grpc.tls` is set, and handed to tonic as [`Conn`]s.
//!
//! Nothing here waits on one client: a connection past a cap is closed at once, each TLS
//! handshake runs in its own task with the Hello deadline (`grpc.hello_timeout_ms`), and a
//! connection that sends no byte within that deadline after accept (no TLS record, no
//! HTTP/2 preface) fails its read, so hyper closes it and its slot comes back.
//!
//! The TLS acceptor is the HTTP edge's ([`crate::http::edge::tls::acceptor`]): the same
//! PEM loading, ring provider and ALPN (`h2` first, which is what gRPC clients ask for).

use super::limits::{ConnGuard, ConnLimits};
use futures::Stream;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tonic::transport::server::{Connected, TcpConnectInfo};

enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// One admitted connection: its stream, its addresses, its slot in [`ConnLimits`], and
/// the deadline for its first byte (cleared once a byte arrives).
pub struct Conn {
    io: Io,
    info: TcpConnectInfo,
    first_byte: Option<Pin<Box<tokio::time::Sleep>>>,
    _slot: ConnGuard,
}

impl Connected for Conn {
    type ConnectInfo = TcpConnectInfo;
    fn connect_info(&self) -> TcpConnectInfo {
        self.info.clone()
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = match &mut this.io {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        };
        match r {
            Poll::Ready(Ok(())) if buf.filled().len() > before => {
                this.first_byte = None;
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                let expired = this
                    .first_byte
                    .as_mut()
                    .is_some_and(|d| d.as_mut().poll(cx).is_ready());
                if !expired {
                    return Poll::Pending;
                }
                metrics::counter!("emporium_grpc_refused_total", "reason" => "first_byte_timeout")
                    .increment(1);
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no bytes before the first-byte deadline",
                )))
            }
            other => other,
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Io::Plain(s) => s.is_write_vectored(),
            Io::Tls(s) => s.is_write_vectored(),
        }
    }
}

/// Connections admitted and ready for HTTP/2, from `listener`. The loop ends when tonic
/// drops the stream (at shutdown).
pub fn incoming(
    listener: TcpListener,
    limits: Arc<ConnLimits>,
    tls: Option<TlsAcceptor>,
    deadline: Duration,
) -> impl Stream<Item = Result<Conn, io::Error>> {
    let (tx, rx) = mpsc::channel::<Conn>(64);
    tokio::spawn(accept_loop(listener, limits, tls, deadline, tx));
    futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|c| (Ok::<_, io::Error>(c), rx))
    })
}

async fn accept_loop(
    listener: TcpListener,
    limits: Arc<ConnLimits>,
    tls: Option<TlsAcceptor>,
    deadline: Duration,
    tx: mpsc::Sender<Conn>,
) {
    let local_addr = listener.local_addr().ok();
    loop {
        let accepted = tokio::select! {
            () = tx.closed() => return,
            a = listener.accept() => a,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors and the like: back off briefly rather than spin.
                tracing::warn!(error = %e, "grpc accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let slot = match limits.try_admit(peer.ip()) {
            Ok(s) => s,
            Err(why) => {
                metrics::counter!("emporium_grpc_refused_total", "reason" => why.as_str())
                    .increment(1);
                tracing::debug!(%peer, reason = %why, "grpc connection closed at accept");
                drop(tcp);
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let info = TcpConnectInfo {
            local_addr,
            remote_addr: Some(peer),
        };
        let first_byte = Some(Box::pin(tokio::time::sleep(deadline)));
        match &tls {
            None => {
                let conn = Conn {
                    io: Io::Plain(tcp),
                    info,
                    first_byte,
                    _slot: slot,
                };
                if tx.send(conn).await.is_err() {
                    return;
                }
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(deadline, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let conn = Conn {
                                io: Io::Tls(Box::new(stream)),
                                info,
                                first_byte,
                                _slot: slot,
                            };
                            let _ = tx.send(conn).await;
                        }
                        Ok(Err(e)) => {
                            metrics::counter!("emporium_grpc_refused_total", "reason" => "tls_handshake")
                                .increment(1);
                            tracing::debug!(%peer, error = %e, "grpc TLS handshake failed");
                        }
                        Err(_) => {
                            metrics::counter!("emporium_grpc_refused_total", "reason" => "tls_handshake")
                                .increment(1);
                            tracing::debug!(%peer, "grpc TLS handshake timed out");
                        }
                    }
                });
            }
        }
    }
}
