//! One issuer per credential kind. Each mints the secret and says what to record: its
//! fingerprint, the name that identifies it in its system (a JWT's signing `kid`, a
//! certificate's serial, a login's role), and, for a certificate, its exact validity. The
//! secret goes to the caller and nowhere else.

use crate::{API_KEY_PREFIX, BrokerError, Result, b64};
use tenure_svid::jwt::JwtSigner;
use tenure_svid::x509::Ca;
use time::{Duration, OffsetDateTime};

/// A minted credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Minted {
    pub secret: String,
    /// Hex SHA-256 of the secret (of the DER, for a certificate).
    pub fingerprint: String,
    pub name: Option<String>,
    pub valid_from: OffsetDateTime,
    pub valid_until: OffsetDateTime,
    /// The CA certificate (PEM) that issued an X.509-SVID.
    pub bundle: Option<String>,
}

/// A JWT-SVID for `spiffe_id`, to `audience` (at least one, none empty), issued by `issuer`.
pub fn jwt_svid(
    signer: &JwtSigner,
    spiffe_id: &str,
    audience: &[String],
    jti: &str,
    issuer: &str,
    now: OffsetDateTime,
    expires_at: OffsetDateTime,
) -> Result<Minted> {
    if audience.is_empty() || audience.iter().any(String::is_empty) {
        return Err(BrokerError::Invalid {
            field: "audience",
            message: "a JWT-SVID needs at least one non-empty audience".into(),
        });
    }
    let claims = serde_json::json!({
        "sub": spiffe_id,
        "aud": audience,
        "exp": expires_at.unix_timestamp(),
        "iat": now.unix_timestamp(),
        "jti": jti,
        "iss": issuer,
    });
    let token = signer.sign(&claims)?;
    Ok(Minted {
        fingerprint: tenure_svid::fingerprint(token.as_bytes()),
        secret: token,
        name: Some(signer.kid().to_owned()),
        valid_from: now,
        valid_until: expires_at,
        bundle: None,
    })
}

/// An X.509-SVID for `spiffe_id` from a PEM CSR. notBefore is backdated 30 s for clock skew,
/// and that counts inside `ttl`: the certificate is never valid longer than policy allows.
pub fn x509_svid(
    ca: &Ca,
    csr: Option<&str>,
    spiffe_id: &str,
    now: OffsetDateTime,
    expires_at: OffsetDateTime,
    ttl: Duration,
) -> Result<Minted> {
    let csr =
        csr.ok_or_else(|| BrokerError::Invalid { field: "csr", message: "an X.509-SVID needs a PEM CSR".into() })?;
    let serial = tenure_svid::x509::random_serial();
    let not_before = now - Duration::seconds(30);
    let not_after = expires_at.min(not_before + ttl);
    let der = ca
        .issue(csr, spiffe_id, &serial, not_before.unix_timestamp(), not_after.unix_timestamp())
        .map_err(|e| BrokerError::Invalid { field: "csr", message: e.to_string() })?;
    Ok(Minted {
        fingerprint: tenure_svid::fingerprint(&der),
        secret: tenure_svid::x509::pem(&der)?,
        name: Some(hex::encode(serial)),
        valid_from: not_before,
        valid_until: not_after,
        bundle: Some(ca.cert_pem()?),
    })
}

/// An API key `tnk_<id>_<secret>` (256 random bits) for credential `id` (`crd_…`).
pub fn api_key(id: &str, now: OffsetDateTime, expires_at: OffsetDateTime) -> Minted {
    let key = format!("{API_KEY_PREFIX}{}_{}", id.trim_start_matches("crd_"), b64(&rand::random::<[u8; 32]>()));
    Minted {
        fingerprint: tenure_svid::fingerprint(key.as_bytes()),
        secret: key,
        name: None,
        valid_from: now,
        valid_until: expires_at,
        bundle: None,
    }
}

/// A dynamic database login for an identity whose external id is `external_id`: the role name
/// (`name`: the id's first 40 characters and 8 random hex digits) and a 256-bit password (the
/// secret). The worker creates it in the system.
pub fn dynamic_login(external_id: &str, now: OffsetDateTime, expires_at: OffsetDateTime) -> Minted {
    let base: String = external_id.chars().take(40).collect();
    let password = b64(&rand::random::<[u8; 32]>());
    Minted {
        fingerprint: tenure_svid::fingerprint(password.as_bytes()),
        secret: password,
        name: Some(format!("{base}-{}", hex::encode(rand::random::<[u8; 4]>()))),
        valid_from: now,
        valid_until: expires_at,
        bundle: None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-01 09:00 UTC);

    #[test]
    fn each_issuer_fingerprints_what_it_hands_out() {
        let signer = JwtSigner::new(tenure_svid::generate_key()).unwrap();
        let aud = vec!["payments".to_owned()];
        let end = NOW + Duration::minutes(5);
        let jwt =
            jwt_svid(&signer, "spiffe://example.org/svc", &aud, "crd_1", "spiffe://example.org", NOW, end).unwrap();
        assert_eq!(jwt.fingerprint, crate::fingerprint_of(&jwt.secret));
        assert_eq!(jwt.name.as_deref(), Some(signer.kid()));
        let claims =
            tenure_svid::jwt::verify(&jwt.secret, &[signer.jwk().unwrap()], NOW.unix_timestamp(), Some("payments"))
                .unwrap();
        assert_eq!(claims["iss"], "spiffe://example.org");
        assert!(jwt_svid(&signer, "spiffe://example.org/svc", &[String::new()], "crd_1", "i", NOW, end).is_err());

        let key = api_key("crd_0123", NOW, end);
        assert!(key.secret.starts_with("tnk_0123_"), "{}", key.secret);
        assert_eq!(key.fingerprint, crate::fingerprint_of(&key.secret));
        let login = dynamic_login(&"x".repeat(60), NOW, end);
        assert_eq!(login.name.as_ref().map(String::len), Some(40 + 1 + 8));
        assert_ne!(dynamic_login("a", NOW, end).secret, dynamic_login("a", NOW, end).secret);
    }

    #[test]
    fn a_certificate_lives_no_longer_than_its_ttl_counting_the_backdating() {
        let ca = Ca::generate("example.org", NOW.unix_timestamp() - 60, NOW.unix_timestamp() + 86_400).unwrap();
        let ttl = Duration::hours(1);
        assert!(matches!(
            x509_svid(&ca, None, "spiffe://example.org/w", NOW, NOW + ttl, ttl),
            Err(BrokerError::Invalid { field: "csr", .. })
        ));
        assert!(matches!(
            x509_svid(&ca, Some("not a csr"), "spiffe://example.org/w", NOW, NOW + ttl, ttl),
            Err(BrokerError::Invalid { field: "csr", .. })
        ));
    }
}
