//! RFC 7662 introspection: a credential is active while it is unrevoked, unexpired and its
//! identity is `active`, so a leaver's credentials stop working the instant the leaver event
//! commits. Anything else, unknown tokens included, is `{"active": false}` and nothing more.

use tenure_model::LifecycleState;
pub use tenure_proto::broker::{ActiveToken, Introspection};
use tenure_store::{CredentialRow, IdentityRow};
use time::OffsetDateTime;

/// The answer for credential `c` (if the presented token is one) of `identity` at `now`;
/// `issuer` is named when policy has one.
pub fn introspect(
    c: Option<&CredentialRow>,
    identity: Option<&IdentityRow>,
    now: OffsetDateTime,
    issuer: Option<&str>,
) -> Introspection {
    let Some(c) = c else { return Introspection::INACTIVE };
    let good = c.revoked_at.is_none()
        && c.expires_at > now
        && identity.is_some_and(|i| {
            i.id == c.identity_id && i.state == LifecycleState::Active && i.expires_at.is_none_or(|e| e > now)
        });
    if !good {
        return Introspection::INACTIVE;
    }
    Introspection {
        active: true,
        token: Some(ActiveToken {
            token_type: c.kind.to_string(),
            sub: c.spiffe_id.clone(),
            exp: c.expires_at.unix_timestamp(),
            iat: c.issued_at.unix_timestamp(),
            jti: c.id.clone(),
            identity: identity.map(|i| i.reference.to_string()),
            aud: c.audience.clone(),
            iss: issuer.map(str::to_owned),
        }),
    }
}
