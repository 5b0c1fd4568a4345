//! JWT-SVIDs per the SPIFFE JWT-SVID specification: a JWS compact serialization signed with
//! ES256, headers `alg`, `kid` and `typ` only, claims `sub` (the SPIFFE ID), `aud` and `exp`
//! required. Public keys are published as a JWKS (RFC 7517) whose `kid` is the RFC 7638
//! thumbprint of the key, so any OIDC library verifies tenure's tokens.

use crate::{Result, SvidError};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The only algorithm tenure signs JWT-SVIDs with.
pub const ALG: &str = "ES256";

fn token_err(m: impl Into<String>) -> SvidError {
    SvidError::Token(m.into())
}

fn coordinates(vk: &VerifyingKey) -> Result<(String, String)> {
    let point = vk.to_encoded_point(false);
    match (point.x(), point.y()) {
        (Some(x), Some(y)) => Ok((B64.encode(x), B64.encode(y))),
        _ => Err(SvidError::Key("the public key has no affine coordinates".into())),
    }
}

/// The RFC 7638 thumbprint of a P-256 public key: base64url SHA-256 of its canonical JWK.
pub fn thumbprint(vk: &VerifyingKey) -> Result<String> {
    let (x, y) = coordinates(vk)?;
    // Members in lexicographic order, no whitespace (RFC 7638 §3.2).
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    Ok(B64.encode(Sha256::digest(canonical.as_bytes())))
}

/// The public JWK of a verifying key.
pub fn jwk(vk: &VerifyingKey) -> Result<Value> {
    let (x, y) = coordinates(vk)?;
    Ok(json!({ "kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": thumbprint(vk)?, "use": "sig", "alg": ALG }))
}

/// A JWT-SVID signing key.
pub struct JwtSigner {
    kid: String,
    key: SigningKey,
}

impl JwtSigner {
    pub fn new(key: SigningKey) -> Result<Self> {
        Ok(Self { kid: thumbprint(key.verifying_key())?, key })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    pub fn jwk(&self) -> Result<Value> {
        jwk(self.key.verifying_key())
    }

    /// Sign `claims` (which must carry `sub`, `aud` and `exp`).
    pub fn sign(&self, claims: &Value) -> Result<String> {
        for k in ["sub", "aud", "exp"] {
            if claims.get(k).is_none() {
                return Err(token_err(format!("claim `{k}` is required")));
            }
        }
        let header = json!({ "alg": ALG, "kid": self.kid, "typ": "JWT" });
        let mut out = format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()));
        let sig: Signature = self.key.sign(out.as_bytes());
        out.push('.');
        out.push_str(&B64.encode(sig.to_bytes()));
        Ok(out)
    }
}

/// Verify a JWT-SVID against a JWKS's keys: header, signature, `exp` against `now` (Unix
/// seconds) and, when given, that `aud` contains `audience`. Returns the claims.
pub fn verify(token: &str, keys: &[Value], now: i64, audience: Option<&str>) -> Result<Value> {
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(token_err("not a JWS compact serialization"));
    };
    let decode = |p: &str, what: &str| -> Result<Vec<u8>> {
        B64.decode(p).map_err(|_| token_err(format!("{what}: not base64url")))
    };
    let header: Value =
        serde_json::from_slice(&decode(h, "header")?).map_err(|_| token_err("header: not a JSON object"))?;
    let obj = header.as_object().ok_or_else(|| token_err("header: not a JSON object"))?;
    if let Some(k) = obj.keys().find(|k| !["alg", "kid", "typ"].contains(&k.as_str())) {
        return Err(token_err(format!("header `{k}` is not allowed in a JWT-SVID")));
    }
    if obj.get("alg").and_then(Value::as_str) != Some(ALG) {
        return Err(token_err(format!("alg: only {ALG} is accepted")));
    }
    let kid = obj.get("kid").and_then(Value::as_str).ok_or_else(|| token_err("kid: missing"))?;
    let jwk = keys
        .iter()
        .find(|k| k.get("kid").and_then(Value::as_str) == Some(kid))
        .ok_or_else(|| token_err(format!("kid `{kid}` is not in the key set")))?;
    let coord = |k: &str| -> Result<Vec<u8>> {
        jwk.get(k)
            .and_then(Value::as_str)
            .and_then(|v| B64.decode(v).ok())
            .ok_or_else(|| token_err(format!("jwk: bad `{k}`")))
    };
    let mut sec1 = vec![4u8];
    sec1.extend(coord("x")?);
    sec1.extend(coord("y")?);
    let vk = VerifyingKey::from_sec1_bytes(&sec1).map_err(|_| token_err("jwk: not a P-256 point"))?;
    let sig = Signature::from_slice(&decode(s, "signature")?).map_err(|_| token_err("signature: malformed"))?;
    let signed = token.get(..h.len() + 1 + c.len()).unwrap_or_default();
    vk.verify(signed.as_bytes(), &sig).map_err(|_| token_err("signature does not verify"))?;
    let claims: Value =
        serde_json::from_slice(&decode(c, "claims")?).map_err(|_| token_err("claims: not a JSON object"))?;
    let exp = claims.get("exp").and_then(Value::as_i64).ok_or_else(|| token_err("exp: missing"))?;
    if exp <= now {
        return Err(token_err("expired"));
    }
    if claims.get("sub").and_then(Value::as_str).is_none() {
        return Err(token_err("sub: missing"));
    }
    if let Some(a) = audience {
        let ok = match claims.get("aud") {
            Some(Value::String(s)) => s == a,
            Some(Value::Array(v)) => v.iter().any(|x| x.as_str() == Some(a)),
            _ => false,
        };
        if !ok {
            return Err(token_err(format!("aud does not include `{a}`")));
        }
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies_and_refuses_tampering() -> Result<()> {
        let s = JwtSigner::new(crate::generate_key())?;
        let claims = json!({ "sub": "spiffe://example.org/service/x", "aud": ["db"], "exp": 2000, "iat": 1000 });
        let t = s.sign(&claims)?;
        let keys = vec![s.jwk()?];
        assert_eq!(verify(&t, &keys, 1500, Some("db"))?, claims);
        assert!(verify(&t, &keys, 2000, None).is_err(), "expired at exp");
        assert!(verify(&t, &keys, 1500, Some("other")).is_err());
        assert!(verify(&t, &[], 1500, None).is_err(), "unknown kid");
        let other = JwtSigner::new(crate::generate_key())?;
        let mut forged = other.jwk()?;
        forged["kid"] = json!(s.kid());
        assert!(verify(&t, &[forged], 1500, None).is_err(), "signed by another key");
        let mut parts: Vec<&str> = t.split('.').collect();
        let alt = B64.encode(json!({ "sub": "spiffe://example.org/admin", "aud": ["db"], "exp": 2000 }).to_string());
        parts[1] = &alt;
        assert!(verify(&parts.join("."), &keys, 1500, None).is_err(), "claims altered");
        assert!(s.sign(&json!({ "sub": "x", "exp": 1 })).is_err(), "aud is required");
        Ok(())
    }

    #[test]
    fn the_kid_is_the_rfc7638_thumbprint() -> Result<()> {
        // RFC 7638 defines the thumbprint over the required members only; recomputing it from
        // the published JWK must give the kid.
        let s = JwtSigner::new(crate::generate_key())?;
        let j = s.jwk()?;
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            j["x"].as_str().unwrap_or(""),
            j["y"].as_str().unwrap_or("")
        );
        assert_eq!(B64.encode(Sha256::digest(canonical)), s.kid());
        Ok(())
    }
}
