//! Optional TLS for the HTTP listener: rustls (ring provider) via tokio-rustls, with the
//! PEM certificate chain and private key from `http.tls.{cert_path, key_path}`. TLS is
//! on when both paths are set; one without the other is a configuration error. ALPN
//! offers HTTP/2 and HTTP/1.1 (the connection builder speaks both).

use crate::app::config::TlsConfig;
use std::io;
use std::path::Path;
use std::sync::Arc;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::TlsAcceptor;

/// The acceptor, `None` when TLS is off, or why the configuration cannot be used.
pub fn load(cfg: &TlsConfig) -> io::Result<Option<TlsAcceptor>> {
    match (&cfg.cert_path, &cfg.key_path) {
        (None, None) => Ok(None),
        (Some(cert), Some(key)) => acceptor(cert, key).map(Some),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "http.tls needs both cert_path and key_path (or neither)",
        )),
    }
}

fn invalid(path: &Path, what: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: {what}", path.display()),
    )
}

fn read(path: &Path) -> io::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

/// Builds an acceptor from PEM files.
pub fn acceptor(cert_path: &Path, key_path: &Path) -> io::Result<TlsAcceptor> {
    let cert_pem = read(cert_path)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| invalid(cert_path, format!("bad PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(invalid(cert_path, "no certificate in the file"));
    }
    let key_pem = read(key_path)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| invalid(key_path, format!("no usable private key: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| io::Error::other(format!("TLS protocol versions: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| invalid(cert_path, format!("certificate and key do not fit: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::config::{Config, Secret};
    use crate::app::App;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls::pki_types::ServerName;
    use tokio_rustls::rustls::{ClientConfig, RootCertStore};
    use tokio_rustls::TlsConnector;

    struct Pem {
        dir: tempfile::TempDir,
        cert_der: CertificateDer<'static>,
    }

    fn self_signed() -> Pem {
        let dir = tempfile::tempdir().unwrap();
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        std::fs::write(dir.path().join("cert.pem"), ck.cert.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), ck.signing_key.serialize_pem()).unwrap();
        Pem {
            dir,
            cert_der: ck.cert.der().clone(),
        }
    }

    #[test]
    fn config_errors_are_reported_not_panics() {
        assert!(load(&TlsConfig::default()).unwrap().is_none());
        let pem = self_signed();
        let half = TlsConfig {
            cert_path: Some(pem.dir.path().join("cert.pem")),
            key_path: None,
        };
        assert!(load(&half).is_err());
        let missing = TlsConfig {
            cert_path: Some(pem.dir.path().join("nope.pem")),
            key_path: Some(pem.dir.path().join("key.pem")),
        };
        assert!(load(&missing).is_err());
        let swapped = TlsConfig {
            cert_path: Some(pem.dir.path().join("key.pem")),
            key_path: Some(pem.dir.path().join("cert.pem")),
        };
        assert!(load(&swapped).is_err());
        let good = TlsConfig {
            cert_path: Some(pem.dir.path().join("cert.pem")),
            key_path: Some(pem.dir.path().join("key.pem")),
        };
        assert!(load(&good).unwrap().is_some());
    }

    async fn https_get(
        addr: std::net::SocketAddr,
        cert: CertificateDer<'static>,
        path: &str,
    ) -> String {
        let mut roots = RootCertStore::empty();
        roots.add(cert).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = TlsConnector::from(Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut tls = connector
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nX-Request-Id: tls-test-1\r\nConnection: close\r\n\r\n"
        );
        tls.write_all(req.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        tls.read_to_end(&mut out).await.unwrap();
        String::from_utf8_lossy(&out).into_owned()
    }

    #[tokio::test]
    async fn serves_https_with_hsts_and_shuts_down_gracefully() {
        let pem = self_signed();
        let data = tempfile::tempdir().unwrap();
        let mut cfg = Config::default();
        cfg.store.data_dir = data.path().to_owned();
        cfg.auth.admin_token = Secret("t".into());
        cfg.http.tls = TlsConfig {
            cert_path: Some(pem.dir.path().join("cert.pem")),
            key_path: Some(pem.dir.path().join("key.pem")),
        };
        cfg.http.shutdown_grace_ms = 2_000;
        let app = App::build(cfg).await.unwrap();
        app.recover().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let served = app.clone();
        let server = tokio::spawn(async move {
            crate::http::serve(&served, listener, async move {
                let _ = stop_rx.await;
            })
            .await
        });

        let text = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            https_get(addr, pem.cert_der.clone(), "/health/live"),
        )
        .await
        .expect("the HTTPS request finished in time");
        let lower = text.to_ascii_lowercase();
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(
            lower.contains("strict-transport-security: max-age=63072000; includesubdomains"),
            "{text}"
        );
        assert!(lower.contains("x-request-id: tls-test-1"), "{text}");
        assert!(lower.contains("x-content-type-options: nosniff"), "{text}");

        // A plain-text client gets no HTTP answer from a TLS port, and does not block it.
        let mut plain = tokio::net::TcpStream::connect(addr).await.unwrap();
        let _ = plain
            .write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
            .await;
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            plain.read_to_end(&mut buf),
        )
        .await;
        assert!(!String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 200"));

        let again = https_get(addr, pem.cert_der.clone(), "/nope").await;
        assert!(again.starts_with("HTTP/1.1 404"), "{again}");

        stop_tx.send(()).unwrap();
        let result = tokio::time::timeout(std::time::Duration::from_secs(5), server)
            .await
            .expect("serve returned after shutdown")
            .unwrap();
        assert!(result.is_ok(), "{result:?}");
        app.shutdown().await;
    }
}
