//! Serving connections with limits, so idle or slow clients cannot exhaust the server: at most
//! `max_connections` at once (one more is closed at accept), request headers (and the wait for
//! the next request on a kept-alive connection) within `header_timeout`, a TLS handshake too.
//! The peer address reaches handlers as `ConnectInfo<SocketAddr>`. With [`Tls`], every
//! connection is TLS (rustls); [`Tls::reload`] swaps the certificate for new connections while
//! open ones carry on. With a client CA ([`ClientCa`]: tenure's own trust bundle), a client may
//! present a certificate; one that verifies against it reaches handlers as [`PeerCertificate`]
//! (the guard then authenticates the workload by it), and one that does not fails the handshake.

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// How much a client may hold of the server (the body timeout is the router's, see
/// `AppState::body_timeout`: bodies are read only after the guard).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections open at once; further ones are closed as they arrive.
    pub max_connections: usize,
    /// Time to send a request's headers, and the longest a kept-alive connection may idle.
    pub header_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_connections: 1024, header_timeout: Duration::from_secs(30) }
    }
}

/// The CAs (PEM) a client certificate must chain to, read again on every reload (tenure's
/// trust bundle changes when its CA rotates).
pub type ClientCa = Arc<dyn Fn() -> Result<String, String> + Send + Sync>;

/// The DER of the certificate a TLS client presented and the client CA verified.
#[derive(Debug, Clone)]
pub struct PeerCertificate(pub Arc<Vec<u8>>);

/// The API's certificate and key, from PEM files, reloadable.
pub struct Tls {
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
    client_ca: Option<ClientCa>,
    config: std::sync::RwLock<Arc<rustls::ServerConfig>>,
}

impl Tls {
    /// Load the certificate chain and key; an error names the file and what is wrong. With
    /// `client_ca`, clients may authenticate with a certificate it verifies (they need not).
    pub fn load(cert: &std::path::Path, key: &std::path::Path, client_ca: Option<ClientCa>) -> Result<Self, String> {
        let config = Self::read(cert, key, client_ca.as_ref())?;
        Ok(Self {
            cert: cert.to_owned(),
            key: key.to_owned(),
            client_ca,
            config: std::sync::RwLock::new(Arc::new(config)),
        })
    }

    fn client_verifier(
        ca: &ClientCa,
        provider: Arc<rustls::crypto::CryptoProvider>,
    ) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, String> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let pem = ca().map_err(|e| format!("TLS client CA: {e}"))?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let cert = cert.map_err(|e| format!("TLS client CA: {e}"))?;
            roots.add(cert).map_err(|e| format!("TLS client CA: {e}"))?;
        }
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .allow_unauthenticated()
            .build()
            .map_err(|e| format!("TLS client CA: {e}"))
    }

    fn read(
        cert: &std::path::Path,
        key: &std::path::Path,
        client_ca: Option<&ClientCa>,
    ) -> Result<rustls::ServerConfig, String> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .and_then(|it| it.collect::<Result<_, _>>())
            .map_err(|e| format!("TLS certificate `{}`: {e}", cert.display()))?;
        if chain.is_empty() {
            return Err(format!("TLS certificate `{}`: no certificate in it", cert.display()));
        }
        let private = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("TLS key `{}`: {e}", key.display()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?;
        let builder = match client_ca {
            Some(ca) => builder.with_client_cert_verifier(Self::client_verifier(ca, provider)?),
            None => builder.with_no_client_auth(),
        };
        let mut config = builder
            .with_single_cert(chain, private)
            .map_err(|e| format!("TLS certificate `{}` and key `{}`: {e}", cert.display(), key.display()))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }

    /// Read the files again; new connections use what they hold. On an error the current
    /// certificate stays.
    pub fn reload(&self) -> Result<(), String> {
        let config = Self::read(&self.cert, &self.key, self.client_ca.as_ref())?;
        *self.config.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(config);
        Ok(())
    }

    fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.config.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone())
    }
}

/// Serve `app` on `listener` (over TLS with `tls`) until `shutdown` resolves; then stop
/// accepting and give open connections up to ten seconds to finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    tls: Option<Arc<Tls>>,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors, say: back off briefly instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(%peer, max = limits.max_connections, "connection refused: too many open connections");
            drop(stream);
            continue;
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            tower::ServiceExt::oneshot(app.clone(), req)
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
        match &tls {
            None => {
                let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(%peer, error = %e, "connection ended");
                    }
                    drop(permit);
                });
            }
            Some(tls) => {
                let acceptor = tls.acceptor();
                let watcher = graceful.watcher();
                let handshake = limits.header_timeout;
                tokio::spawn(async move {
                    // The handshake counts against the header timeout: a silent client is cut.
                    match tokio::time::timeout(handshake, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            // A verified client certificate goes with every request on it.
                            let peer_cert = stream
                                .get_ref()
                                .1
                                .peer_certificates()
                                .and_then(|c| c.first())
                                .map(|c| PeerCertificate(Arc::new(c.to_vec())));
                            let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
                                if let Some(c) = &peer_cert {
                                    req.extensions_mut().insert(c.clone());
                                }
                                hyper::service::Service::call(&service, req)
                            });
                            let conn = watcher.watch(builder.serve_connection(TokioIo::new(stream), service));
                            if let Err(e) = conn.await {
                                tracing::debug!(%peer, error = %e, "connection ended");
                            }
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                    drop(permit);
                });
            }
        }
    }
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(10)) => tracing::warn!("connections still open at shutdown"),
    }
    Ok(())
}
