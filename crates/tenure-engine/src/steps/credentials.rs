//! Credential steps inside a caller's transaction: revoke (with the `credential.revoked`
//! entry and the job that verifies it) and record verified revocations.

use crate::Result;
use crate::ledger::{Stamp, record};
use tenure_ledger::LedgerEvent;
use tenure_ledger::event::{CredentialCheck, CredentialRevoked, CredentialVerified};
use tenure_model::rfc3339 as ts;
use tenure_store::{CredentialRow, IdentityRow, JobKind, NewJob, StoreError, WriteTx};
use time::OffsetDateTime;

/// The "system" of the broker's own jobs (verifying revoked credentials).
pub const BROKER: &str = "broker";

/// Record a credential event in the ledger (fingerprints only).
/// Revoke `c` unless it is revoked already, with its `credential.revoked` ledger entry; false
/// when it was revoked already. The caller enqueues the job that verifies it.
pub(crate) fn revoke_recorded(
    tx: &mut dyn WriteTx,
    c: &CredentialRow,
    subject: &str,
    actor: &str,
    version: &str,
    reason: &str,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    if !tx.revoke_credential(&c.id, now, reason)? {
        return Ok(false);
    }
    let event = CredentialRevoked {
        credential: c.id.clone(),
        kind: c.kind,
        fingerprint: c.fingerprint.clone(),
        reason: reason.to_owned(),
        replaced_by: None,
    };
    record(tx, Stamp::new(now, actor, version), subject, LedgerEvent::CredentialRevoked(event))?;
    Ok(true)
}

/// What [`revoke_live`] did.
pub(crate) struct Revoked {
    /// The credentials it revoked.
    pub ids: Vec<String>,
    /// Whether a `credentials` job now has revocations to verify (these, or earlier ones).
    pub job: bool,
}

/// Revoke every live credential of `identity` (the leaver, a suspension, an owner transfer)
/// and enqueue the job that carries the revocations out and verifies them.
pub(crate) fn revoke_live(
    tx: &mut dyn WriteTx,
    identity: &IdentityRow,
    reason: &str,
    version: &str,
    actor: &str,
    now: OffsetDateTime,
) -> Result<Revoked, StoreError> {
    let live = tx.credentials_live(identity.id, now)?;
    let subject = identity.reference.to_string();
    for c in &live {
        revoke_recorded(tx, c, &subject, actor, version, reason, now)?;
    }
    let job = !live.is_empty() || !tx.credentials_to_verify(identity.id)?.is_empty();
    if job {
        tx.enqueue(&NewJob {
            kind: JobKind::Credentials,
            identity_id: identity.id,
            system: BROKER,
            run_at: now,
            request_id: crate::telemetry::request_id().as_deref(),
        })?;
    }
    Ok(Revoked { ids: live.into_iter().map(|c| c.id).collect(), job })
}

/// Record verified revocations (ledger entries `credential.verified`); returns the problems
/// of those that did not verify.
pub(crate) fn record_verifications(
    tx: &mut dyn WriteTx,
    subject: &str,
    results: &[Verification],
    version: &str,
    now: OffsetDateTime,
) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    for v in results {
        let Some(c) = tx.credential(&v.credential)? else { continue };
        if !v.ok {
            let seen = serde_json::to_string(&v.evidence).unwrap_or_default();
            problems.push(format!("credential {} is not verified revoked: {seen}", c.id));
            continue;
        }
        if c.verified_at.is_some() {
            continue;
        }
        let evidence = crate::encode(&v.evidence)?;
        tx.set_credential_verified(&c.id, now, &evidence)?;
        let event = CredentialVerified {
            credential: c.id,
            kind: c.kind,
            fingerprint: c.fingerprint,
            revoked_at: c.revoked_at.map(ts),
            reason: c.revoke_reason,
            evidence: v.evidence.clone(),
            result: "verified".into(),
        };
        record(tx, Stamp::engine(now, version), subject, LedgerEvent::CredentialVerified(event))?;
    }
    Ok(problems)
}

/// How a revoked credential was verified, for the ledger and the closure certificate.
#[derive(Debug, Clone)]
pub struct Verification {
    pub credential: String,
    pub ok: bool,
    pub evidence: CredentialCheck,
}
