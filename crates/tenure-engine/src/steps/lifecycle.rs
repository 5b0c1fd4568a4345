//! Lifecycle moves the verification of every system and credential allows, with the ledger
//! entry that anchors them (`identity.activated`, `identity.closed`).

use crate::ledger::{Stamp, record};
use crate::{EngineError, Result};
use tenure_ledger::LedgerEvent;
use tenure_ledger::event::{AccountAt, CredentialRef, GrantAt, Settled, StateChange};
use tenure_model::{GrantState, LifecycleState};
use tenure_store::WriteTx;
use time::OffsetDateTime;

/// A leaver closed: its kind, and how long it took from the leaver event (the identity's last
/// change, when it became `leaving`) to the verified close. For the closure metric, once the
/// transaction commits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ClosedIn {
    pub kind: tenure_model::IdentityKind,
    pub took: time::Duration,
}

impl ClosedIn {
    /// Count a close, if there was one, in the process's metrics (after the commit).
    pub(crate) fn report(closed: Option<Self>, telemetry: &crate::telemetry::Telemetry) {
        if let Some(c) = closed {
            telemetry.closure(c.kind.as_str(), std::time::Duration::try_from(c.took).unwrap_or_default());
        }
    }
}

/// `pending → active` once every account and grant is verified; `leaving → closed` once every
/// account is verified disabled and every grant verified revoked.
pub(crate) fn advance_lifecycle(
    tx: &mut dyn WriteTx,
    identity_id: i64,
    now: OffsetDateTime,
    version: &str,
) -> Result<Option<ClosedIn>> {
    let Some(identity) = tx.identity_by_id(identity_id)? else { return Ok(None) };
    let accounts = tx.accounts(identity_id)?;
    let grants = tx.grants(identity_id)?;
    let to = match identity.state {
        LifecycleState::Pending
            if accounts.iter().all(|a| a.state.is_settled()) && grants.iter().all(|g| g.state.is_settled()) =>
        {
            LifecycleState::Active
        }
        LifecycleState::Leaving
            if accounts.iter().all(|a| a.state.is_off_verified())
                && grants.iter().all(|g| g.state == GrantState::RevocationVerified)
                && tx.credentials_to_verify(identity_id)?.is_empty()
                && tx.credentials_live(identity_id, now)?.is_empty()
                // No job still owed to the leaver (a sweep of a system it has no account in,
                // a drift job on an account correlated to it).
                && tx.unfinished_jobs(identity_id)? == 0 =>
        {
            LifecycleState::Closed
        }
        _ => return Ok(None),
    };
    let to = identity.state.transition(to).map_err(EngineError::Transition)?;
    tx.set_identity_state(identity_id, to, now)?;
    if to == LifecycleState::Closed {
        tx.resolve_finding(Some(identity_id), "leaver_stalled", "", now)?;
    }
    let settled = Settled {
        state: StateChange::new(identity.state, to),
        accounts: accounts
            .iter()
            .map(|a| AccountAt { system: a.system.clone(), account: a.name.clone(), state: a.state })
            .collect(),
        grants: grants.iter().map(|g| GrantAt { entitlement: g.entitlement.clone(), state: g.state }).collect(),
        // Every credential whose revocation was verified: the closure certificate needs a
        // verified claim for each.
        credentials: tx
            .credentials(Some(identity_id))?
            .into_iter()
            .filter(|c| c.revoked_at.is_some() && c.verified_at.is_some())
            .map(|c| CredentialRef { credential: c.id, kind: c.kind, fingerprint: c.fingerprint })
            .collect(),
    };
    let event =
        if to == LifecycleState::Active { LedgerEvent::Activated(settled) } else { LedgerEvent::Closed(settled) };
    record(tx, Stamp::engine(now, version), &identity.reference.to_string(), event)?;
    Ok((to == LifecycleState::Closed).then(|| ClosedIn { kind: identity.kind, took: now - identity.updated_at }))
}
