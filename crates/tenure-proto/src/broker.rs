//! What the credential broker answers relying parties: RFC 7662 introspection, the JWKS
//! (RFC 7517), the OIDC discovery document.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An introspection answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Introspection {
    pub active: bool,
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub token: Option<ActiveToken>,
}

/// What introspection says of an active credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ActiveToken {
    /// The credential kind: `jwt-svid`, `x509-svid`, `api-key`, `postgres-login`.
    pub token_type: String,
    pub sub: Option<String>,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    /// The identity's reference (`source:external_id`).
    pub identity: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aud: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
}

impl Introspection {
    pub const INACTIVE: Self = Self { active: false, token: None };
}

/// A P-256 public key as a JWK (RFC 7517, RFC 7638 thumbprint as `kid`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    pub y: String,
    pub kid: String,
    #[serde(rename = "use")]
    pub usage: String,
    pub alg: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

impl Jwks {
    /// The keys as JSON values, for a JWT verifier.
    pub fn values(&self) -> Vec<serde_json::Value> {
        self.keys.iter().filter_map(|k| serde_json::to_value(k).ok()).collect()
    }
}

/// The OIDC discovery document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Discovery {
    pub issuer: String,
    pub jwks_uri: String,
    pub introspection_endpoint: String,
    pub revocation_endpoint: String,
    pub id_token_signing_alg_values_supported: Vec<String>,
    pub response_types_supported: Vec<String>,
    pub subject_types_supported: Vec<String>,
    pub spiffe_trust_domain: String,
}
