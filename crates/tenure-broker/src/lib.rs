//! The credential broker's mechanics: keys, minting, introspection, publishing. It decides
//! nothing about who may have what (the engine does, from policy) and writes no rows (the
//! engine records what it mints, with its ledger entries, in its own transactions).
//!
//! - [`keys`]: the private keys behind a [`keys::KeyStore`] (a directory today; nodes that
//!   share a database will need one they share too), cached signers and CA.
//! - [`issue`]: one issuer per credential kind (JWT-SVID, X.509-SVID, API key, dynamic
//!   login), each returning a [`issue::Minted`]: the secret, its fingerprint, what to record.
//! - [`introspect`]: RFC 7662 answers about a credential, as [`introspect::Introspection`].
//! - [`publish`]: what relying parties fetch: the JWKS, the trust bundle, the CRL, the OIDC
//!   discovery document.
//!
//! A credential is stored only as a fingerprint ([`fingerprint_of`]): hex SHA-256 of the
//! token, key or password, or of a certificate's DER.

pub mod introspect;
pub mod issue;
pub mod keys;
pub mod publish;

use time::{Duration, OffsetDateTime};

/// The prefix of API keys: `tnk_<id>_<secret>`.
pub const API_KEY_PREFIX: &str = "tnk_";
/// How long a CA certificate is valid; a new CA is made 30 days before the end.
pub const CA_LIFETIME: Duration = Duration::days(365);

/// What went wrong minting or publishing.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// A request's field does not fit (a CSR that does not parse, an empty audience).
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    /// The key store failed to write or read a key.
    #[error("BR0001 key store: {0}")]
    KeyStore(String),
    /// A key or certificate operation failed.
    #[error("BR0002 {0}")]
    Crypto(String),
}

impl From<tenure_svid::SvidError> for BrokerError {
    fn from(e: tenure_svid::SvidError) -> Self {
        Self::Crypto(e.to_string())
    }
}

pub type Result<T, E = BrokerError> = std::result::Result<T, E>;

/// The fingerprint of a presented credential: of the DER of a PEM certificate, else of the
/// text.
pub fn fingerprint_of(token: &str) -> String {
    let t = token.trim();
    if t.starts_with("-----BEGIN CERTIFICATE-----")
        && let Ok(der) = tenure_svid::x509::der_of_pem(t)
    {
        return tenure_svid::fingerprint(&der);
    }
    tenure_svid::fingerprint(t.as_bytes())
}

/// The state a credential is in at `now`: `active`, `expired`, `revoked` (not yet verified)
/// or `revocation-verified`.
pub fn state(c: &tenure_store::CredentialRow, now: OffsetDateTime) -> &'static str {
    match (c.revoked_at, c.verified_at) {
        (Some(_), Some(_)) => "revocation-verified",
        (Some(_), None) => "revoked",
        (None, _) if c.expires_at <= now => "expired",
        (None, _) => "active",
    }
}

/// URL-safe base64 without padding.
pub(crate) fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
