//! The leaver, in one place: the event that cuts an identity off at once (`leave`), and what
//! the clock does for leavers afterwards — re-queue one whose closure stalled, suspend a
//! departed owner's non-human identity nobody took over, delete accounts when the grace period
//! ends.
//!
//! `leave`, in the event's transaction: the identity is `leaving` (or `closed` with nothing
//! to undo), every wanted grant `revoking`, every account `disabling`, every live credential
//! revoked, every pending request it is a party to ended, its non-human identities passed to
//! a successor or flagged; the sync and credential jobs that carry it out are enqueued. The
//! workers then verify each system, and `steps::lifecycle` closes the identity when all
//! are verified off.

use crate::ledger::{Stamp, record};
use crate::steps::grants::{self, Change, WorkflowError};
use crate::{Engine, Result};
use std::collections::BTreeSet;
use tenure_ledger::LedgerEvent;
use tenure_ledger::event::{DeletionStarted, LeaverStalled, StateChange, Succession, Suspended};
use tenure_model::rfc3339 as ts;
use tenure_model::{AccountState, GrantState, LifecycleState};
use tenure_policy::Bundle;
use tenure_store::{IdentityRow, WriteTx};
use time::OffsetDateTime;

/// What a leaver event did.
pub(crate) struct Left {
    pub from: LifecycleState,
    pub to: LifecycleState,
    pub change: Change,
    /// What happened to each of a person's non-human identities.
    pub owned: Vec<Succession>,
}

/// The leaver event, in its transaction (see the module docs).
pub(crate) fn leave(
    tx: &mut dyn WriteTx,
    policy: &Bundle,
    identity: &IdentityRow,
    now: OffsetDateTime,
    actor: &str,
) -> Result<Left, WorkflowError> {
    let version = policy.version.as_str();
    let change = cut_off(tx, policy, identity, version, now)?;
    crate::steps::requests::end_requests_of(tx, identity.id, &identity.reference.to_string(), version, now)?;
    let to = if change.is_empty() { LifecycleState::Closed } else { LifecycleState::Leaving };
    // A person's NHIs go to the successor policy names, or wait for one.
    let owned = if identity.kind.is_human() {
        crate::steps::succession::succession(tx, policy, identity, now, actor)?
    } else {
        Vec::new()
    };
    Ok(Left { from: identity.state, to, change, owned })
}

/// The leaver: the identity is `leaving` at once (cut off from this commit on); every wanted
/// grant becomes `revoking` and every account `disabling`; every system with correlation rules
/// gets a sync job, which sweeps it for the leaver's accounts made outside tenure. With nothing to deprovision the
/// identity is `closed` at once. Every live credential is revoked (and a job enqueued to
/// carry that out and verify it).
fn cut_off(
    tx: &mut dyn WriteTx,
    policy: &Bundle,
    identity: &IdentityRow,
    version: &str,
    now: OffsetDateTime,
) -> Result<Change, WorkflowError> {
    let revoked = crate::steps::credentials::revoke_live(tx, identity, "leaver", version, crate::ACTOR_ENGINE, now)?;
    let mut change = Change { credentials: revoked.ids, credentials_pending: revoked.job, ..Change::default() };
    for g in tx.grants(identity.id)? {
        if g.state.is_wanted() || g.state == GrantState::Revoked {
            grants::revoke(tx, identity.id, &g, &g.policy_version, now)?;
            change.revoking.insert(g.entitlement.clone());
            change.systems.insert(g.system.clone());
        } else if g.state == GrantState::Revoking {
            change.systems.insert(g.system.clone());
        }
    }
    for a in tx.accounts(identity.id)? {
        if !a.state.is_off_verified() {
            tx.put_account(identity.id, &a.system, &a.name, AccountState::Disabling, now)?;
        }
        // Even a verified-disabled account is checked again: the leaver must leave no group.
        change.systems.insert(a.system.clone());
    }
    // Every system that can say which of its accounts are this person's is swept for the ones
    // tenure did not make, account or not (the sync job does it, see `worker`).
    for (name, def) in &policy.systems {
        if !def.reconcile.correlate.is_empty() {
            change.systems.insert(name.clone());
        }
    }
    let mut to = identity.state.transition(LifecycleState::Leaving).map_err(WorkflowError::Transition)?;
    if change.is_empty() {
        to = to.transition(LifecycleState::Closed).map_err(WorkflowError::Transition)?;
    }
    tx.set_identity_state(identity.id, to, now)?;
    grants::enqueue(tx, identity.id, &change.systems, now)?;
    // Work that died before the leaver is owed to the leaver too (closure waits for every job
    // of the identity): each dead job is retried, or closed where a new job does its work.
    tx.retry_dead_jobs(tenure_store::DeadJobs::OfIdentity(identity.id), now)?;
    Ok(change)
}

impl Engine {
    /// The safety net under leaver closure: a leaver `leaving` for longer than the policy's
    /// `leaver_stalled_minutes` with no pending or running job has nothing carrying it to
    /// `closed` (a dead-lettered job, or a bug): its dead jobs are put back, every system not
    /// yet verified off gets a job, and an alert is raised (log, ledger entry, finding).
    pub(crate) fn requeue_stalled_leavers(&self, policy: &Bundle, now: OffsetDateTime) -> Result<Vec<String>> {
        let stalled = self.store.read()?.leavers_stalled(now - policy.lifecycle.leaver_stalled_after)?;
        let mut out = Vec::new();
        for row in stalled {
            let mut tx = self.store.write()?;
            let Some(row) = tx.identity_by_id(row.id)?.filter(|r| r.state == LifecycleState::Leaving) else { continue };
            let retried = tx.retry_dead_jobs(tenure_store::DeadJobs::OfIdentity(row.id), now)?;
            let mut systems: BTreeSet<String> =
                tx.accounts(row.id)?.into_iter().filter(|a| !a.state.is_off_verified()).map(|a| a.system).collect();
            systems.extend(
                tx.grants(row.id)?.into_iter().filter(|g| g.state != GrantState::RevocationVerified).map(|g| g.system),
            );
            grants::enqueue(tx.as_mut(), row.id, &systems, now)?;
            let credentials =
                !tx.credentials_to_verify(row.id)?.is_empty() || !tx.credentials_live(row.id, now)?.is_empty();
            if credentials {
                tx.enqueue(&tenure_store::NewJob {
                    kind: tenure_store::JobKind::Credentials,
                    identity_id: row.id,
                    system: crate::steps::credentials::BROKER,
                    run_at: now,
                    request_id: crate::telemetry::request_id().as_deref(),
                })?;
            }
            let subject = row.reference.to_string();
            let version = policy.version.as_str();
            let stalled = LeaverStalled {
                leaving_since: ts(row.updated_at),
                retried_jobs: retried,
                systems: systems.iter().cloned().collect(),
                credentials,
            };
            let detail = crate::encode(&stalled)?;
            tx.open_finding(&tenure_store::NewFinding {
                identity_id: Some(row.id),
                kind: "leaver_stalled",
                entitlement: "",
                detail: &detail,
                policy_version: version,
                at: now,
            })?;
            // The clock looks again only a whole period from now: a job that dies at once (an
            // account tenure may not touch) must not make this a loop of retries and alerts.
            tx.set_identity_state(row.id, LifecycleState::Leaving, now)?;
            record(tx.as_mut(), Stamp::engine(now, version), &subject, LedgerEvent::LeaverStalled(stalled))?;
            let mut closed = None;
            if systems.is_empty() && !credentials {
                closed = crate::steps::lifecycle::advance_lifecycle(tx.as_mut(), row.id, now, version)?
                    // It was leaving since before the re-queue above.
                    .map(|c| crate::steps::lifecycle::ClosedIn { took: now - row.updated_at, ..c });
            }
            tx.commit()?;
            crate::steps::lifecycle::ClosedIn::report(closed, self.telemetry());
            tracing::error!(leaver = %subject, since = %ts(row.updated_at), ?systems, "leaver stalled with no job carrying its closure: re-queued");
            out.push(subject);
        }
        Ok(out)
    }

    /// NHIs whose departed owner nobody replaced by the deadline: suspended (accounts disabled,
    /// memberships kept, credentials revoked) until an `owner_changed` event names a new owner.
    pub(crate) fn suspend_ownerless(&self, policy: &Bundle, now: OffsetDateTime) -> Result<Vec<String>> {
        let version = policy.version.as_str();
        let ownerless = self.store.read()?.owners_overdue(now)?;
        let mut out = Vec::new();
        for nhi in ownerless {
            let mut tx = self.store.write()?;
            let Some(mut row) = tx.identity_by_id(nhi.id)? else { continue };
            let Some(deadline) = row.owner_deadline.filter(|d| *d <= now) else { continue };
            if !row.state.is_current() {
                continue;
            }
            let from = row.state;
            // A pending NHI is not yet in use; it is suspended once active, on a later tick.
            if row.state != LifecycleState::Active {
                continue;
            }
            // Every account disabled (memberships kept, so a new owner can resume it), its
            // credentials revoked (a new owner asks for new ones).
            let change = crate::steps::suspension::suspend(
                tx.as_mut(),
                policy,
                &mut row,
                tenure_model::SuspendedBy::Owner,
                now,
            )?;
            let subject = row.reference.to_string();
            let event = Suspended {
                state: StateChange::new(from, row.state),
                because: "nobody took it over by its deadline".into(),
                deadline: ts(deadline),
                changes: change.recorded(),
            };
            record(tx.as_mut(), Stamp::engine(now, version), &subject, LedgerEvent::Suspended(event))?;
            tx.commit()?;
            out.push(subject);
        }
        Ok(out)
    }

    /// Closed leavers whose grace period ended: their verified-disabled accounts are deleted.
    pub(crate) fn start_deletions(&self, policy: &Bundle, now: OffsetDateTime) -> Result<Vec<String>> {
        let version = policy.version.as_str();
        let deletions = self.store.read()?.deletions_due(now - policy.lifecycle.leaver_grace)?;
        let mut out = Vec::new();
        for id in deletions {
            let mut tx = self.store.write()?;
            let Some(row) = tx.identity_by_id(id)? else { continue };
            let mut systems = BTreeSet::new();
            for a in tx.accounts(id)?.into_iter().filter(|a| a.state == AccountState::DisableVerified) {
                tx.put_account(id, &a.system, &a.name, AccountState::Deleting, now)?;
                systems.insert(a.system);
            }
            grants::enqueue(tx.as_mut(), id, &systems, now)?;
            let subject = row.reference.to_string();
            let event = DeletionStarted {
                grace_days: policy.lifecycle.leaver_grace.whole_days(),
                systems: systems.into_iter().collect(),
            };
            record(tx.as_mut(), Stamp::engine(now, version), &subject, LedgerEvent::DeletionStarted(event))?;
            tx.commit()?;
            out.push(subject);
        }
        Ok(out)
    }
}
