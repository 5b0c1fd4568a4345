//! The cryptography of tenure's credential broker, with no IO: SPIFFE IDs ([`spiffe`]),
//! JWT-SVIDs signed with ES256 and their JWKS ([`jwt`]), and an X.509 CA that issues
//! X.509-SVIDs from CSRs and signs revocation lists ([`x509`]). Keys are ECDSA P-256 from the
//! RustCrypto `p256` crate; signatures are deterministic (RFC 6979), so no RNG is needed to sign.

pub use p256;

pub mod jwt;
pub mod spiffe;
pub mod x509;

use sha2::{Digest, Sha256};

/// Errors of credential cryptography; each names what was wrong.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SvidError {
    #[error("SV0001 spiffe id: {0}")]
    SpiffeId(String),
    #[error("SV0002 csr: {0}")]
    Csr(String),
    #[error("SV0003 key: {0}")]
    Key(String),
    #[error("SV0004 certificate: {0}")]
    Certificate(String),
    #[error("SV0005 token: {0}")]
    Token(String),
}

pub type Result<T, E = SvidError> = std::result::Result<T, E>;

/// The fingerprint a credential is stored and ledgered as: hex SHA-256 of its secret form (a
/// token's text, an API key, a password, a certificate's DER).
pub fn fingerprint(secret: &[u8]) -> String {
    hex::encode(Sha256::digest(secret))
}

/// A fresh P-256 signing key from the operating system's RNG.
pub fn generate_key() -> p256::ecdsa::SigningKey {
    loop {
        // A uniformly random 32-byte string is a valid scalar except with probability ~2^-32.
        if let Ok(k) = p256::ecdsa::SigningKey::from_slice(&rand::random::<[u8; 32]>()) {
            return k;
        }
    }
}

/// A signing key as PKCS#8 PEM, and back.
pub fn key_to_pem(key: &p256::ecdsa::SigningKey) -> Result<String> {
    use p256::pkcs8::EncodePrivateKey;
    key.to_pkcs8_pem(p256::pkcs8::LineEnding::LF).map(|z| z.to_string()).map_err(|e| SvidError::Key(e.to_string()))
}

pub fn key_from_pem(pem: &str) -> Result<p256::ecdsa::SigningKey> {
    use p256::pkcs8::DecodePrivateKey;
    p256::ecdsa::SigningKey::from_pkcs8_pem(pem).map_err(|e| SvidError::Key(format!("not a PKCS#8 P-256 key: {e}")))
}
