//! TLS for the connectors that speak to a server (LDAP, PostgreSQL, SCIM), with rustls and
//! ring. Who is trusted is the platform's roots (`/etc/ssl/certs` and the like) unless the
//! system names its own CA bundle; certificates are verified, chain and host name, unless the
//! system's settings say otherwise in so many words, and then every connection logs a warning.
//! A client certificate is presented where the system's settings give one.
//!
//! A system's TLS settings (strings in its `[systems.NAME]` table, like the others):
//!
//! | key | meaning |
//! |---|---|
//! | `tls_ca_file` | PEM file of the CA certificates to trust instead of the platform's |
//! | `tls_verify` | `true` (the default) or `false`: no verification at all (logged) |
//! | `tls_client_cert`, `tls_client_key` | PEM files of a client certificate chain and its key |

use crate::ConnectorError;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The TLS settings every TLS-capable connector accepts.
pub const KEYS: [&str; 4] = ["tls_ca_file", "tls_verify", "tls_client_cert", "tls_client_key"];

/// How a server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// The chain to a trusted root, and the host name (the default).
    Full,
    /// The chain only, whatever name the certificate is for (PostgreSQL's `verify-ca`).
    ChainOnly,
    /// Nothing: encrypted, but to whoever answers. Only when the settings say so; logged.
    Off,
}

/// What a connector needs to speak TLS to one system: the roots it trusts, how it verifies,
/// and the client certificate it presents, if any.
#[derive(Clone)]
pub struct Tls {
    system: String,
    pub verify: Verify,
    /// Whether the roots are the system's own CA file (else the platform's).
    pub own_ca: bool,
    roots: Arc<Vec<CertificateDer<'static>>>,
    client: Option<Arc<Client>>,
}

/// A client certificate chain and its key, parsed and as the PEM files hold them.
struct Client {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    chain_pem: Vec<u8>,
    key_pem: Vec<u8>,
}

impl PartialEq for Tls {
    fn eq(&self, other: &Self) -> bool {
        let client = |t: &Self| t.client.as_ref().map(|c| (c.chain_pem.clone(), c.key_pem.clone()));
        self.system == other.system
            && self.verify == other.verify
            && self.own_ca == other.own_ca
            && self.roots == other.roots
            && client(self) == client(other)
    }
}

impl Eq for Tls {}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Tls")
            .field("verify", &self.verify)
            .field("own_ca", &self.own_ca)
            .field("roots", &self.roots.len())
            .field("client_cert", &self.client.is_some())
            .finish()
    }
}

impl Tls {
    /// The TLS settings of `system` from its table, their files read now (a file that does
    /// not load is a configuration error naming it).
    pub fn from_map(system: &str, m: &BTreeMap<String, String>) -> Result<Self, ConnectorError> {
        let config = |message: String| ConnectorError::Config { system: system.to_owned(), message };
        let verify = match m.get("tls_verify").map(String::as_str) {
            None | Some("true") => Verify::Full,
            Some("false") => Verify::Off,
            Some(other) => return Err(config(format!("field `tls_verify`: expected true or false, found `{other}`"))),
        };
        let (roots, own_ca) = match m.get("tls_ca_file") {
            Some(path) => {
                let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                    .and_then(|i| i.collect::<Result<_, _>>())
                    .map_err(|e| config(format!("field `tls_ca_file`: `{path}`: {e}")))?;
                if certs.is_empty() {
                    return Err(config(format!("field `tls_ca_file`: `{path}` holds no certificate")));
                }
                (certs, true)
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                if found.certs.is_empty() && verify != Verify::Off {
                    let why = found.errors.first().map(ToString::to_string).unwrap_or_else(|| "none found".into());
                    return Err(config(format!(
                        "no platform CA certificates to trust ({why}); set `tls_ca_file` to the CA bundle"
                    )));
                }
                (found.certs, false)
            }
        };
        let client = match (m.get("tls_client_cert"), m.get("tls_client_key")) {
            (None, None) => None,
            (Some(cert), Some(key)) => {
                let chain_pem =
                    std::fs::read(cert).map_err(|e| config(format!("field `tls_client_cert`: `{cert}`: {e}")))?;
                let key_pem =
                    std::fs::read(key).map_err(|e| config(format!("field `tls_client_key`: `{key}`: {e}")))?;
                let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&chain_pem)
                    .collect::<Result<_, _>>()
                    .map_err(|e| config(format!("field `tls_client_cert`: `{cert}`: {e}")))?;
                if chain.is_empty() {
                    return Err(config(format!("field `tls_client_cert`: `{cert}` holds no certificate")));
                }
                let parsed = PrivateKeyDer::from_pem_slice(&key_pem)
                    .map_err(|e| config(format!("field `tls_client_key`: `{key}`: {e}")))?;
                Some(Arc::new(Client { chain, key: parsed, chain_pem, key_pem }))
            }
            _ => return Err(config("`tls_client_cert` and `tls_client_key` go together".into())),
        };
        let tls = Self { system: system.to_owned(), verify, own_ca, roots: Arc::new(roots), client };
        // Build it once now, so a key that does not match its certificate is found here.
        tls.client_config()?;
        Ok(tls)
    }

    /// The same, checking certificates as `verify` says (PostgreSQL's `sslmode`).
    pub fn with_verify(mut self, verify: Verify) -> Self {
        // An explicit "verify nothing" is never tightened or loosened by another setting.
        if self.verify != Verify::Off {
            self.verify = verify;
        }
        self
    }

    /// Say, at every connection, that this one verifies nothing.
    pub fn warn_if_unverified(&self) {
        if self.verify == Verify::Off {
            tracing::warn!(system = %self.system, "TLS certificate verification is off (`tls_verify = \"false\"`): the connection is encrypted to whoever answers");
        }
    }

    /// A rustls client configuration for this system (ring, TLS 1.2 and 1.3).
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, ConnectorError> {
        let config = |message: String| ConnectorError::Config { system: self.system.clone(), message };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| config(format!("TLS: {e}")))?;
        let mut store = RootCertStore::empty();
        let (added, _ignored) = store.add_parsable_certificates(self.roots.iter().cloned());
        if added == 0 && self.verify != Verify::Off {
            return Err(config("TLS: none of the CA certificates to trust could be used".into()));
        }
        let store = Arc::new(store);
        let builder = match self.verify {
            Verify::Full => builder.with_root_certificates(store),
            Verify::ChainOnly | Verify::Off => {
                let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(store, provider.clone())
                    .build()
                    .map_err(|e| config(format!("TLS: {e}")))?;
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(Lenient { webpki, off: self.verify == Verify::Off }))
            }
        };
        let cfg = match &self.client {
            None => builder.with_no_client_auth(),
            Some(c) => builder
                .with_client_auth_cert(c.chain.clone(), c.key.clone_key())
                .map_err(|e| config(format!("TLS client certificate: {e}")))?,
        };
        Ok(Arc::new(cfg))
    }

    /// When the certificate the server at `host:port` presents ends: a TLS handshake of its
    /// own, after the protocol's request to start TLS where it has one, verified as the
    /// connector's are (what `tenure systems check` reports).
    pub async fn certificate_expiry(
        &self,
        host: &str,
        port: u16,
        preamble: Preamble,
        timeout: std::time::Duration,
    ) -> Result<time::OffsetDateTime, String> {
        use x509_cert::der::Decode;
        let config = self.client_config().map_err(|e| e.to_string())?;
        let name = ServerName::try_from(host.to_owned()).map_err(|e| format!("`{host}`: {e}"))?;
        let handshake = async {
            let mut tcp = tokio::net::TcpStream::connect((host, port)).await.map_err(|e| e.to_string())?;
            preamble.run(&mut tcp).await?;
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(|e| explain(&e.to_string()))?;
            let der = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .ok_or("the server presented no certificate")?
                .to_vec();
            Ok::<_, String>(der)
        };
        let der =
            tokio::time::timeout(timeout, handshake).await.map_err(|_| "the handshake timed out".to_owned())??;
        let cert = x509_cert::Certificate::from_der(&der).map_err(|e| format!("the server's certificate: {e}"))?;
        let end = cert.tbs_certificate.validity.not_after.to_unix_duration();
        time::OffsetDateTime::from_unix_timestamp(i64::try_from(end.as_secs()).unwrap_or(i64::MAX))
            .map_err(|e| format!("the server's certificate ends out of range: {e}"))
    }

    /// The CA certificates trusted, DER (for a client library with its own TLS set-up).
    pub fn roots(&self) -> &[CertificateDer<'static>] {
        &self.roots
    }

    /// The client certificate chain and key as their PEM files hold them, if one is
    /// presented.
    pub fn client_pem(&self) -> Option<(&[u8], &[u8])> {
        self.client.as_deref().map(|c| (c.chain_pem.as_slice(), c.key_pem.as_slice()))
    }
}

/// What is said on a connection before its TLS handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preamble {
    /// TLS from the first byte (`ldaps://`, `https://`).
    None,
    /// LDAP's StartTLS extended operation (RFC 4511 §4.14), answered with success.
    LdapStartTls,
    /// PostgreSQL's `SSLRequest`, answered with `S`.
    PostgresSslRequest,
}

/// LDAPMessage { messageID 1, extendedReq { requestName "1.3.6.1.4.1.1466.20037" } }, BER.
const STARTTLS_REQUEST: &[u8] = b"\x30\x1d\x02\x01\x01\x77\x18\x80\x161.3.6.1.4.1.1466.20037";
/// PostgreSQL's SSLRequest: length 8, code 80877103.
const SSL_REQUEST: &[u8] = &[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

impl Preamble {
    async fn run(self, tcp: &mut tokio::net::TcpStream) -> Result<(), String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        match self {
            Self::None => Ok(()),
            Self::PostgresSslRequest => {
                tcp.write_all(SSL_REQUEST).await.map_err(|e| e.to_string())?;
                match tcp.read_u8().await.map_err(|e| e.to_string())? {
                    b'S' => Ok(()),
                    b'N' => Err("the server does not offer TLS (`ssl = off`)".into()),
                    other => Err(format!("the server answered the SSL request with `{}`", other.escape_ascii())),
                }
            }
            Self::LdapStartTls => {
                tcp.write_all(STARTTLS_REQUEST).await.map_err(|e| e.to_string())?;
                // The response: SEQUENCE { messageID, [APPLICATION 24] { resultCode, … } }.
                let (tag, len) = (tcp.read_u8().await.map_err(|e| e.to_string())?, ber_length(tcp).await?);
                if tag != 0x30 || len > 64 * 1024 {
                    return Err("the server's answer to StartTLS is not an LDAP message".into());
                }
                let mut body = vec![0; len];
                tcp.read_exact(&mut body).await.map_err(|e| e.to_string())?;
                starttls_result(&body)
            }
        }
    }
}

/// A BER length (short or long form, up to 4 bytes).
async fn ber_length(tcp: &mut tokio::net::TcpStream) -> Result<usize, String> {
    use tokio::io::AsyncReadExt;
    let first = tcp.read_u8().await.map_err(|e| e.to_string())?;
    if first & 0x80 == 0 {
        return Ok(usize::from(first));
    }
    let n = usize::from(first & 0x7f);
    if n == 0 || n > 4 {
        return Err("the server's answer to StartTLS has a length tenure cannot read".into());
    }
    let mut len = 0usize;
    for _ in 0..n {
        len = (len << 8) | usize::from(tcp.read_u8().await.map_err(|e| e.to_string())?);
    }
    Ok(len)
}

/// The result code of a StartTLS response's body (after the message's own tag and length).
fn starttls_result(body: &[u8]) -> Result<(), String> {
    let bad = || "the server's answer to StartTLS is not an extended response".to_owned();
    // messageID: INTEGER.
    let (&0x02, rest) = body.split_first().ok_or_else(bad)? else { return Err(bad()) };
    let (&id_len, rest) = rest.split_first().ok_or_else(bad)?;
    let rest = rest.get(usize::from(id_len)..).ok_or_else(bad)?;
    // extendedResp [APPLICATION 24], its length (short or long form), then resultCode ENUMERATED.
    let (&0x78, rest) = rest.split_first().ok_or_else(bad)? else { return Err(bad()) };
    let (&first, rest) = rest.split_first().ok_or_else(bad)?;
    let rest = if first & 0x80 == 0 { rest } else { rest.get(usize::from(first & 0x7f)..).ok_or_else(bad)? };
    match rest {
        [0x0a, 0x01, 0, ..] => Ok(()),
        [0x0a, 0x01, code, ..] => Err(format!("the server refused StartTLS (result {code})")),
        _ => Err(bad()),
    }
}

/// A certificate problem in words a person can act on: rustls' `invalid peer certificate:
/// UnknownIssuer` becomes "the server's certificate is not signed by a trusted CA".
pub fn explain(message: &str) -> String {
    // rustls' names (`UnknownIssuer`) and its newer sentences (`certificate not valid for name`).
    let hint = [
        (&["UnknownIssuer"][..], "the server's certificate is not signed by a CA tenure trusts (check `tls_ca_file`)"),
        (
            &["NotValidForName", "not valid for name"],
            "the server's certificate is not for this host name (check the URL's host)",
        ),
        (&["Expired", "certificate expired"], "the server's certificate has expired"),
        (&["NotValidYet", "not valid yet"], "the server's certificate is not valid yet (check the clocks)"),
        (&["Revoked", "certificate revoked"], "the server's certificate is revoked"),
        (&["BadSignature", "bad signature"], "the server's certificate has a bad signature"),
    ]
    .into_iter()
    .find(|(keys, _)| keys.iter().any(|k| message.contains(k)));
    match hint {
        Some((_, h)) => format!("TLS: {h} ({message})"),
        None => message.to_owned(),
    }
}

/// Verifies the chain but not the name (`ChainOnly`), or nothing (`Off`); signatures on the
/// handshake are always checked.
#[derive(Debug)]
struct Lenient {
    webpki: Arc<rustls::client::WebPkiServerVerifier>,
    off: bool,
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.off {
            return Ok(ServerCertVerified::assertion());
        }
        match self.webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForNameContext { .. })) => {
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}
