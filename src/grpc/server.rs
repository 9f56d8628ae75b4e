//! The gRPC listener: `MachineGateway`, `grpc.health.v1.Health` and server reflection
//! (v1 and v1alpha) on one address, with HTTP/2 keepalives so dead links are noticed,
//! at most `grpc.max_streams_per_connection` streams per connection, connections admitted
//! by [`super::incoming`] (per-IP and total caps, optional TLS, a first-byte deadline).

use super::gateway::{Gateway, GatewayConfig};
use super::limits::ConnLimits;
use super::pb::machine_gateway_server::MachineGatewayServer;
use crate::app::config::TlsConfig;
use crate::app::App;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// Why the gRPC listener stopped.
#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("grpc.tls: {0}")]
    Tls(std::io::Error),
}

/// The TLS acceptor for `grpc.tls`, `None` when it is off; the HTTP edge's loader.
pub fn tls_acceptor(cfg: &TlsConfig) -> Result<Option<TlsAcceptor>, GrpcError> {
    match (&cfg.cert_path, &cfg.key_path) {
        (None, None) => Ok(None),
        (Some(cert), Some(key)) => crate::http::edge::tls::acceptor(cert, key)
            .map(Some)
            .map_err(GrpcError::Tls),
        _ => Err(GrpcError::Tls(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "grpc.tls needs both cert_path and key_path (or neither)",
        ))),
    }
}

/// Serves until `shutdown` completes; then every session is ended with `UNAVAILABLE`, and
/// connections get `http.shutdown_grace_ms` to close before the listener is dropped.
pub async fn serve(
    app: &App,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), GrpcError> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let sessions = app.sessions.clone();
    let grace = Duration::from_millis(app.config.http.shutdown_grace_ms);
    let server = serve_until(app, listener, stopped(rx.clone()));
    tokio::pin!(server);
    tokio::select! {
        r = &mut server => return r,
        () = shutdown => {}
    }
    let _ = tx.send(true);
    sessions.stop_all();
    match tokio::time::timeout(grace, server).await {
        Ok(r) => r,
        Err(_) => {
            tracing::warn!("grpc connections did not close within the grace period; dropping them");
            Ok(())
        }
    }
}

async fn serve_until(
    app: &App,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), GrpcError> {
    let cfg = &app.config;
    let tls = tls_acceptor(&cfg.grpc.tls)?;
    let hello_timeout = Duration::from_millis(cfg.grpc.hello_timeout_ms);
    let gateway = Gateway::new(
        app.router.clone(),
        app.sessions.clone(),
        GatewayConfig {
            hello_timeout,
            heartbeat_interval_s: cfg.vending.heartbeat_interval_s,
            max_sessions: cfg.grpc.max_sessions,
            max_pending_hellos: cfg.grpc.max_pending_hellos,
        },
    );
    let (reporter, health) = super::health_service();
    reporter
        .set_serving::<MachineGatewayServer<Gateway>>()
        .await;
    let service = MachineGatewayServer::new(gateway)
        .max_decoding_message_size(cfg.grpc.max_message_bytes)
        .max_encoding_message_size(cfg.grpc.max_message_bytes);
    let limits = ConnLimits::new(cfg.grpc.max_connections_per_ip, cfg.grpc.max_connections);
    let incoming = super::incoming::incoming(listener, limits, tls, hello_timeout);
    tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .max_concurrent_streams(Some(cfg.grpc.max_streams_per_connection))
        .add_service(health)
        .add_service(super::reflection_service()?)
        .add_service(super::reflection_service_v1alpha()?)
        .add_service(service)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await?;
    Ok(())
}
