//! A TLS-terminating relay on loopback: TLS in (a certificate from a test's CA, rustls),
//! plain TCP out to a server that speaks only plain text (`scim2-server`). Optionally it
//! requires a client certificate from a CA. Runs on a thread of its own until dropped.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;

pub struct TlsProxy {
    pub port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TlsProxy {
    /// Relay TLS on a free loopback port to `upstream` (plain, loopback), presenting `cert`
    /// and `key`; with `client_ca`, only to clients with a certificate it signed.
    pub fn start(upstream: u16, cert: &Path, key: &Path, client_ca: Option<&Path>) -> Result<Self, String> {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .and_then(|i| i.collect::<Result<_, _>>())
            .map_err(|e| format!("TP0001 {}: {e}", cert.display()))?;
        let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("TP0001 {}: {e}", key.display()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TP0002 {e}"))?;
        let builder = match client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for c in CertificateDer::pem_file_iter(ca).map_err(|e| format!("TP0001 {}: {e}", ca.display()))? {
                    roots.add(c.map_err(|e| format!("TP0001 {e}"))?).map_err(|e| format!("TP0002 {e}"))?;
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .map_err(|e| format!("TP0002 {e}"))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let config = builder.with_single_cert(chain, key).map_err(|e| format!("TP0002 {e}"))?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("TP0003 {e}"))?;
        let port = listener.local_addr().map_err(|e| format!("TP0003 {e}"))?.port();
        listener.set_nonblocking(true).map_err(|e| format!("TP0003 {e}"))?;
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
                loop {
                    tokio::select! {
                        _ = &mut stopped => return,
                        accepted = listener.accept() => {
                            let Ok((client, _)) = accepted else { continue };
                            let _ = client.set_nodelay(true);
                            let acceptor = acceptor.clone();
                            tokio::spawn(async move {
                                // A client that fails the handshake just goes away.
                                let Ok(mut tls) = acceptor.accept(client).await else { return };
                                let Ok(mut server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await else {
                                    return;
                                };
                                let _ = server.set_nodelay(true);
                                let _ = tokio::io::copy_bidirectional(&mut tls, &mut server).await;
                            });
                        }
                    }
                }
            });
        });
        Ok(Self { port, stop: Some(stop), thread: Some(thread) })
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
