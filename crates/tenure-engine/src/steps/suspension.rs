//! Suspension and its end, as transaction steps: an identity suspended (by its expiry, or an
//! NHI nobody took over) keeps its grants while its accounts are disabled and its credentials
//! revoked; it resumes when its cause is gone. And the expiry notices a renewal resolves.

use crate::ACTOR_ENGINE;
use crate::steps::grants::{self, Change, WorkflowError};
use crate::steps::notices::{self, Notice};
use tenure_ledger::event::StateChange;
use tenure_model::{LifecycleState, SuspendedBy};
use tenure_policy::Bundle;
use tenure_policy::notify::NoticeKind;
use tenure_store::{IdentityRow, WriteTx};
use time::OffsetDateTime;

/// The finding an expiry notice opens (one open per identity: the nearest offset reached).
pub const FINDING_EXPIRY: &str = "expiry_notice";

/// Whether `identity` is past its expiry at `now`.
pub fn is_expired(identity: &IdentityRow, now: OffsetDateTime) -> bool {
    identity.expires_at.is_some_and(|e| e <= now)
}

/// Suspend `identity` (active or pending) in `tx`: every account disabled, memberships kept so
/// a renewal or a new owner can resume it, every live credential revoked.
pub(crate) fn suspend(
    tx: &mut dyn WriteTx,
    policy: &Bundle,
    identity: &mut IdentityRow,
    by: SuspendedBy,
    now: OffsetDateTime,
) -> Result<Change, WorkflowError> {
    identity.state = identity.state.transition(LifecycleState::Suspended).map_err(WorkflowError::Transition)?;
    identity.suspended_by = Some(by);
    identity.updated_at = now;
    tx.update_identity(identity)?;
    let mut change = Change::default();
    grants::accounts_follow(tx, policy, identity, &Default::default(), &mut change, now)?;
    grants::enqueue(tx, identity.id, &change.systems, now)?;
    let revoked =
        crate::steps::credentials::revoke_live(tx, identity, "suspended", policy.version.as_str(), ACTOR_ENGINE, now)?;
    change.credentials = revoked.ids;
    change.credentials_pending = revoked.job;
    notify_suspended(tx, policy, identity, by, now)?;
    Ok(change)
}

/// Tell a suspended NHI's owner (and the webhooks) what happened and what resumes it.
fn notify_suspended(
    tx: &mut dyn WriteTx,
    policy: &Bundle,
    identity: &IdentityRow,
    by: SuspendedBy,
    now: OffsetDateTime,
) -> Result<(), tenure_store::StoreError> {
    if identity.kind.is_human() || !notices::wanted(policy, NoticeKind::IdentitySuspended) {
        return Ok(());
    }
    let owner = match &identity.owner {
        Some(o) => tx.identity(o)?.filter(|o| o.state == LifecycleState::Active),
        None => None,
    };
    let (why, resume) = match by {
        SuspendedBy::Expiry => ("its expiry came", "renewing it (a new `expires_at` from its source)"),
        SuspendedBy::Owner => ("its owner left and nobody took it over", "naming a new owner"),
        SuspendedBy::Source => ("its source suspended it", "its source resuming it"),
        SuspendedBy::Attestation => {
            ("its owner did not attest it by the deadline", "its owner attesting it (`tenure identities attest`)")
        }
    };
    let r = identity.reference.to_string();
    let notice = Notice {
        kind: NoticeKind::IdentitySuspended,
        key: format!("suspended:{r}:{}", now.unix_timestamp()),
        to: owner.as_ref(),
        subject: format!("{} {r} suspended: {why}", identity.kind),
        text: format!(
            "{} {r} ({}) was suspended: {why}. Its accounts are disabled, its credentials revoked and authorization denies it.\n\
             It resumes on {resume}.",
            identity.kind, identity.name
        ),
        data: serde_json::json!({ "identity": r, "kind": identity.kind.as_str(), "because": by.as_str() }),
    };
    notices::notify(tx, policy, &notice, now)
}

/// Resume an identity suspended for `cause` now that the cause is gone (renewed, an owner
/// named, its source said so): active again, its accounts re-enabled for what policy wants.
/// `None` if it was not suspended for that cause, or is still held (expired, or waiting for an
/// owner).
pub(crate) fn resume_if_suspended(
    tx: &mut dyn WriteTx,
    policy: &Bundle,
    identity: &mut IdentityRow,
    cause: SuspendedBy,
    now: OffsetDateTime,
) -> Result<Option<(StateChange, Change)>, WorkflowError> {
    // Suspensions recorded before causes were: NHIs nobody took over.
    let why = identity.suspended_by.unwrap_or(SuspendedBy::Owner);
    if identity.state != LifecycleState::Suspended
        || why != cause
        || identity.owner_deadline.is_some()
        || is_expired(identity, now)
    {
        return Ok(None);
    }
    identity.state = LifecycleState::Active;
    identity.suspended_by = None;
    identity.updated_at = now;
    tx.update_identity(identity)?;
    let change = grants::apply_desired(tx, policy, identity, now)?;
    Ok(Some((StateChange::new(LifecycleState::Suspended, LifecycleState::Active), change)))
}

/// Resolve the open expiry notices of an identity (renewed, its expiry acted on, or a nearer
/// notice raised), but the one named `keep`.
pub(crate) fn resolve_notices(
    tx: &mut dyn WriteTx,
    id: i64,
    keep: Option<&str>,
    now: OffsetDateTime,
) -> Result<(), tenure_store::StoreError> {
    for f in tx.open_findings(id)? {
        if f.kind == FINDING_EXPIRY && Some(f.entitlement.as_str()) != keep {
            tx.resolve_finding(Some(id), FINDING_EXPIRY, &f.entitlement, now)?;
        }
    }
    Ok(())
}
