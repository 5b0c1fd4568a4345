//! What relying parties fetch: the JWKS (every JWT key not yet removed), the X.509 trust
//! bundle (every CA certificate still trusted), the CRL of revoked, unexpired X.509-SVIDs, and
//! the OIDC discovery document.

use crate::Result;
pub use tenure_proto::broker::{Discovery, Jwk, Jwks};
use tenure_store::{CredentialRow, SigningKeyRow};
use tenure_svid::x509::Ca;
use time::{Duration, OffsetDateTime};

/// The published JWT keys among `keys`. A stored key that does not parse is left out (and
/// tokens it signed then fail verification, which is the safe side).
pub fn jwks(keys: &[SigningKeyRow]) -> Jwks {
    Jwks {
        keys: keys
            .iter()
            .filter(|k| k.usage == "jwt" && k.removed_at.is_none())
            .filter_map(|k| serde_json::from_str(&k.public).ok())
            .collect(),
    }
}

/// The trust bundle (PEM): every CA certificate not yet removed.
pub fn trust_bundle(keys: &[SigningKeyRow]) -> String {
    keys.iter().filter(|k| k.usage == "ca" && k.removed_at.is_none()).map(|k| k.public.as_str()).collect()
}

/// The CRL (PEM) listing `revoked` (revoked, unexpired X.509-SVIDs), signed by `ca` at `now`
/// and valid ten minutes: relying parties fetch it again.
pub fn crl(ca: &Ca, revoked: &[CredentialRow], now: OffsetDateTime) -> Result<String> {
    let serials: Vec<(Vec<u8>, i64)> = revoked
        .iter()
        .filter_map(|c| Some((hex::decode(c.name.as_deref()?).ok()?, c.revoked_at?.unix_timestamp())))
        .collect();
    Ok(ca.crl(&serials, now.unix_timestamp(), (now + Duration::minutes(10)).unix_timestamp())?)
}

/// The document of `issuer` whose endpoints hang off `base` (the server's configured public
/// URL: nothing in it comes from a request).
pub fn discovery(issuer: String, base: &str, trust_domain: &str) -> Discovery {
    let base = base.trim_end_matches('/');
    Discovery {
        issuer,
        jwks_uri: format!("{base}/.well-known/jwks.json"),
        introspection_endpoint: format!("{base}/v1/oauth/introspect"),
        revocation_endpoint: format!("{base}/v1/oauth/revoke"),
        id_token_signing_alg_values_supported: vec![tenure_svid::jwt::ALG.to_owned()],
        response_types_supported: vec!["id_token".into()],
        subject_types_supported: vec!["public".into()],
        spiffe_trust_domain: trust_domain.to_owned(),
    }
}
