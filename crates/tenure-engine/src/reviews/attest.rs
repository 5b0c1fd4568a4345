//! Ownership attestation: every NHI of a kind `[attestation]` names is reconfirmed by its owner
//! on a cadence (more often while it holds privileged access). Before the deadline the owner
//! gets a notice (an `attestation_due` finding); at it the clock suspends the NHI (accounts
//! disabled, credentials revoked, authorization denied) until the owner attests.

use crate::ledger::{Stamp, record};
use crate::steps::notices::{self, Notice};
use crate::steps::suspension::{resume_if_suspended, suspend};
use crate::{Engine, EngineError, Result};
use tenure_ledger::LedgerEvent;
use tenure_ledger::event::{Attested, StateChange, Suspended};
use tenure_model::rfc3339 as ts;
use tenure_model::{LifecycleState, Principal, SuspendedBy};
use tenure_policy::Bundle;
use tenure_policy::notify::NoticeKind;
use tenure_store::{IdentityRow, NewFinding, ReadTx, StoreError, WriteTx};
use time::OffsetDateTime;

/// The finding an owner gets before an attestation's deadline.
pub const FINDING_ATTESTATION: &str = "attestation_due";

/// When `nhi`'s next attestation is due, if its kind is attested at all.
fn deadline(policy: &Bundle, tx: &dyn ReadTx, nhi: &IdentityRow) -> Result<Option<OffsetDateTime>> {
    let Some(a) = &policy.attestation else { return Ok(None) };
    let privileged = tx
        .grants(nhi.id)?
        .iter()
        .any(|g| g.state.is_wanted() && policy.entitlement(&g.entitlement).is_some_and(|e| e.privileged));
    let Some(every) = a.every(nhi.kind, privileged) else { return Ok(None) };
    let last = tx.last_attested(nhi.id)?.unwrap_or(nhi.created_at);
    Ok(Some(last + every))
}

impl Engine {
    /// The owner of `reference` reconfirms it, saying why: the next deadline starts now, and an
    /// NHI a missed attestation suspended resumes. Nobody but its owner attests an NHI.
    pub fn attest(&self, by: &Principal, reference: &str, reason: &str) -> Result<tenure_proto::IdentityView> {
        let r: tenure_model::IdentityRef =
            reference.parse().map_err(|e| EngineError::invalid("identity", format!("{e}")))?;
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(EngineError::invalid("reason", "an attestation says why the identity is still needed"));
        }
        tenure_model::text::check(reason, tenure_model::text::MAX_NAME, false)
            .map_err(|e| EngineError::invalid("reason", e.to_string()))?;
        let now = self.clock.now();
        let mut tx = self.store.write()?;
        let policy = self.policy_in(&*tx)?;
        let mut row = tx.identity(&r)?.ok_or_else(|| EngineError::NotFound(reference.to_owned()))?;
        if row.kind.is_human() {
            return Err(EngineError::invalid(
                "identity",
                format!("`{reference}` is a person; people are reviewed, not attested"),
            ));
        }
        if row.owner.as_ref() != Some(&by.identity) {
            return Err(EngineError::Forbidden(format!(
                "only `{reference}`'s owner ({}) attests it",
                row.owner.as_ref().map_or_else(|| "none".to_owned(), ToString::to_string)
            )));
        }
        let owner = tx.identity(&by.identity)?.ok_or_else(|| EngineError::invalid("caller", "unknown identity"))?;
        if owner.state != LifecycleState::Active {
            return Err(EngineError::Refused(format!(
                "`{}` is {}; only an active owner attests",
                owner.reference, owner.state
            )));
        }
        if row.state.has_left() {
            return Err(EngineError::Conflict(format!("`{reference}` is {}; there is nothing to attest", row.state)));
        }
        tx.put_attestation(row.id, owner.id, reason, now)?;
        tx.resolve_finding(Some(row.id), FINDING_ATTESTATION, "", now)?;
        let resumed = resume_if_suspended(tx.as_mut(), &policy, &mut row, SuspendedBy::Attestation, now)?;
        let (state, changes) = match resumed {
            Some((s, c)) => (Some(s), c.recorded()),
            None => (None, Default::default()),
        };
        let next_due = deadline(&policy, &*tx, &row)?.map(ts);
        let actor = by.actor();
        let event = Attested { by: owner.reference.to_string(), reason: reason.to_owned(), next_due, state, changes };
        record(
            tx.as_mut(),
            Stamp::new(now, &actor, policy.version.as_str()),
            &row.reference.to_string(),
            LedgerEvent::Attested(event),
        )?;
        tx.commit()?;
        Ok(self.identity_detail(reference)?.identity)
    }

    /// What is due for attestation at `now`: a notice to the owner ahead of the deadline, and at
    /// it, the NHI suspended. `reference: what happened` for each.
    pub(crate) fn attestations_due(&self, policy: &Bundle, now: OffsetDateTime) -> Result<Vec<String>> {
        let Some(a) = &policy.attestation else { return Ok(Vec::new()) };
        let version = policy.version.as_str();
        let mut out = Vec::new();
        for kind in a.every.keys() {
            // The shortest cadence of the kind, less the notice: anyone who could be due.
            let Some(shortest) = a.every(*kind, true) else { continue };
            let window = a.remind_before.unwrap_or(time::Duration::ZERO);
            let candidates = self.store.read()?.attestations_due(*kind, now - shortest + window)?;
            for nhi in candidates {
                // On a read snapshot first: with a short privileged cadence most candidates are
                // neither due nor owed a notice, and take no write lock.
                {
                    let r = self.store.read()?;
                    let Some(due) = deadline(policy, &*r, &nhi)? else { continue };
                    let notice = a.remind_before.is_some_and(|w| now >= due - w)
                        && !r.open_findings(nhi.id)?.iter().any(|f| f.kind == FINDING_ATTESTATION);
                    if now < due && !notice {
                        continue;
                    }
                }
                let mut tx = self.store.write()?;
                let Some(mut row) = tx.identity_by_id(nhi.id)? else { continue };
                if row.state != LifecycleState::Active {
                    continue;
                }
                let Some(due) = deadline(policy, &*tx, &row)? else { continue };
                let subject = row.reference.to_string();
                if now >= due {
                    let change = suspend(tx.as_mut(), policy, &mut row, SuspendedBy::Attestation, now)?;
                    tx.resolve_finding(Some(row.id), FINDING_ATTESTATION, "", now)?;
                    let event = Suspended {
                        state: StateChange::new(LifecycleState::Active, row.state),
                        because: "its owner did not attest it by its deadline".into(),
                        deadline: ts(due),
                        changes: change.recorded(),
                    };
                    record(tx.as_mut(), Stamp::engine(now, version), &subject, LedgerEvent::Suspended(event))?;
                    tx.commit()?;
                    out.push(format!("{subject}: suspended, not attested by {}", ts(due)));
                } else if a.remind_before.is_some_and(|r| now >= due - r) {
                    let detail = serde_json::json!({
                        "deadline": ts(due),
                        "owner": row.owner.as_ref().map(ToString::to_string),
                    });
                    let opened = tx.open_finding(&NewFinding {
                        identity_id: Some(row.id),
                        kind: FINDING_ATTESTATION,
                        entitlement: "",
                        detail: &detail,
                        policy_version: version,
                        at: now,
                    })?;
                    if opened {
                        notify_due(tx.as_mut(), policy, &row, due, now)?;
                    }
                    tx.commit()?;
                    if opened {
                        out.push(format!("{subject}: attestation due by {}", ts(due)));
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Tell `nhi`'s owner that it must attest it by `due`.
fn notify_due(
    tx: &mut dyn WriteTx,
    policy: &Bundle,
    nhi: &IdentityRow,
    due: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    if !notices::wanted(policy, NoticeKind::AttestationDue) {
        return Ok(());
    }
    let owner = match &nhi.owner {
        Some(o) => tx.identity(o)?,
        None => None,
    };
    let r = nhi.reference.to_string();
    let by = owner.as_ref().map_or_else(|| "OWNER".to_owned(), |o| o.reference.to_string());
    let notice = Notice {
        kind: NoticeKind::AttestationDue,
        key: format!("attest:{r}:{}", ts(due)),
        to: owner.as_ref(),
        subject: format!("Attest {r} by {}, or it is suspended", ts(due)),
        text: format!(
            "You own {} {r} ({}, purpose: {}). Reconfirm that it is still needed by {}:\n\
             `tenure identities attest {r} --as {by} --reason …`. Unattested, it is then suspended.",
            nhi.kind,
            nhi.name,
            nhi.purpose.as_deref().unwrap_or("-"),
            ts(due)
        ),
        data: serde_json::json!({ "identity": r, "kind": nhi.kind.as_str(), "deadline": ts(due) }),
    };
    notices::notify(tx, policy, &notice, now)
}
