//! Expiry, driven by the clock. Every identity with an `expires_at` (each NHI, each contractor)
//! gets notices at the policy's offsets before it (`lifecycle.expiry_notice_days`: an open
//! `expiry_notice` finding, an `identity.expiring` entry and a warning in the log), and at it
//! what `lifecycle.on_expiry` says for its kind: it leaves (the leaver flow, to a closure
//! certificate) or it is suspended (accounts disabled with their memberships kept, credentials
//! revoked) until a renewal.
//!
//! A renewal extends the expiry: a `renewed` event from the authoritative source (see
//! `ingest`), or [`Engine::renew`] by the owner (the manager, for a person) or an operator,
//! within the policy's maximum lifetime and with a reason, recorded as `identity.renewed_by`.
//! Either resumes an identity its expiry suspended.
//!
//! Between ticks nothing past its expiry is honoured: authorization denies it, its API tokens
//! stop authenticating, introspection calls its credentials inactive (and no credential
//! outlives its identity's expiry when issued).

use crate::ledger::{Stamp, record};
use crate::{ACTOR_ENGINE, Engine, EngineError, Result};
use tenure_ledger::LedgerEvent;
use tenure_ledger::event::{Expired, Expiring, FromTo, RenewedBy, StateChange};
use tenure_model::{LifecycleState, Principal, SuspendedBy, rfc3339 as ts};
use tenure_policy::{Bundle, OnExpiry};
use tenure_store::{IdentityRow, NewFinding};
use time::OffsetDateTime;

pub use crate::steps::suspension::{FINDING_EXPIRY, is_expired};
use crate::steps::suspension::{resolve_notices, resume_if_suspended, suspend};

/// The longest an identity of this kind may be renewed for, from `now` (`None`: no limit).
fn max_lifetime(policy: &Bundle, identity: &IdentityRow) -> Option<time::Duration> {
    if identity.kind.is_human() {
        policy.lifecycle.max_contractor_lifetime
    } else {
        Some(policy.lifecycle.max_nhi_lifetime)
    }
}

impl Engine {
    /// Notices for identities whose expiry is within the policy's longest offset: for each, the
    /// nearest offset reached opens its `expiry_notice` finding (closing the one before) and
    /// records `identity.expiring`, once per offset and expiry.
    pub(crate) fn notice_expiring(&self, policy: &Bundle, now: OffsetDateTime) -> Result<Vec<String>> {
        let Some(longest) = policy.lifecycle.expiry_notices.first().copied() else { return Ok(Vec::new()) };
        {
            let mut last = self.notices_checked.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if last.is_some_and(|l| now >= l && now - l < time::Duration::minutes(1)) {
                return Ok(Vec::new());
            }
            *last = Some(now);
        }
        let due: Vec<(IdentityRow, String, i64)> = {
            let tx = self.store.read()?;
            let mut due = Vec::new();
            for row in tx.identities_expiring(now + longest)? {
                let Some(end) = row.expires_at.filter(|e| *e > now) else { continue };
                if !row.state.is_current() {
                    continue;
                }
                // The nearest offset reached (a notice skipped while tenure was down is not
                // raised late: the nearer one says more).
                let Some(offset) = policy.lifecycle.expiry_notices.iter().rev().find(|d| end - **d <= now) else {
                    continue;
                };
                let key = format!("{} -{}d", ts(end), offset.whole_days());
                if tx.open_findings(row.id)?.iter().any(|f| f.kind == FINDING_EXPIRY && f.entitlement == key) {
                    continue;
                }
                due.push((row, key, offset.whole_days()));
            }
            due
        };
        let version = policy.version.as_str();
        let mut out = Vec::new();
        for (row, key, days) in due {
            let Some(end) = row.expires_at else { continue };
            let then = policy.lifecycle.on_expiry(row.kind).as_str();
            let notice = Expiring { expires_at: ts(end), notice_days: days, then: then.to_owned() };
            let mut tx = self.store.write()?;
            let opened = tx.open_finding(&NewFinding {
                identity_id: Some(row.id),
                kind: FINDING_EXPIRY,
                entitlement: &key,
                detail: &crate::encode(&notice)?,
                policy_version: version,
                at: now,
            })?;
            if !opened {
                continue;
            }
            resolve_notices(tx.as_mut(), row.id, Some(&key), now)?;
            let subject = row.reference.to_string();
            record(tx.as_mut(), Stamp::engine(now, version), &subject, LedgerEvent::Expiring(notice))?;
            tx.commit()?;
            tracing::warn!(identity = %subject, expires_at = %ts(end), then, "identity expires in {days} days or less");
            out.push(subject);
        }
        Ok(out)
    }

    /// Identities whose expiry has come: each leaves or is suspended, as `lifecycle.on_expiry`
    /// says for its kind, in a transaction of its own.
    pub(crate) fn expire_identities(&self, policy: &Bundle, now: OffsetDateTime) -> Result<Vec<String>> {
        let version = policy.version.as_str();
        let expired = self.store.read()?.identities_expiring(now)?;
        let mut out = Vec::new();
        for found in expired {
            let outcome = policy.lifecycle.on_expiry(found.kind);
            // Already suspended and policy suspends: nothing more to do until a renewal.
            if found.state == LifecycleState::Suspended && outcome == OnExpiry::Suspend {
                continue;
            }
            let mut tx = self.store.write()?;
            let Some(mut row) = tx.identity_by_id(found.id)? else { continue };
            let Some(end) = row.expires_at.filter(|e| *e <= now) else { continue };
            if row.state.has_left() {
                continue;
            }
            let from = row.state;
            let event = match outcome {
                OnExpiry::Leave => {
                    let left = crate::leaver::leave(tx.as_mut(), policy, &row, now, ACTOR_ENGINE)?;
                    Expired {
                        expires_at: ts(end),
                        outcome: outcome.as_str().to_owned(),
                        state: StateChange::new(left.from, left.to),
                        changes: left.change.recorded(),
                        owned_nhis: left.owned,
                    }
                }
                OnExpiry::Suspend => {
                    if row.state == LifecycleState::Suspended {
                        continue;
                    }
                    let change = suspend(tx.as_mut(), policy, &mut row, SuspendedBy::Expiry, now)?;
                    Expired {
                        expires_at: ts(end),
                        outcome: outcome.as_str().to_owned(),
                        state: StateChange::new(from, row.state),
                        changes: change.recorded(),
                        owned_nhis: Vec::new(),
                    }
                }
            };
            resolve_notices(tx.as_mut(), row.id, None, now)?;
            let subject = row.reference.to_string();
            record(tx.as_mut(), Stamp::engine(now, version), &subject, LedgerEvent::Expired(event))?;
            tx.commit()?;
            tracing::warn!(identity = %subject, expires_at = %ts(end), outcome = outcome.as_str(), "identity expired");
            out.push(subject);
        }
        Ok(out)
    }

    /// Extend an identity's expiry by hand: its owner (for a person, its manager) or an
    /// operator, to a time within the policy's maximum lifetime from now, saying why. A
    /// suspended identity whose expiry suspended it resumes.
    pub fn renew(
        &self,
        by: &Principal,
        reference: &str,
        expires_at: OffsetDateTime,
        reason: &str,
    ) -> Result<tenure_proto::IdentityView> {
        let r: tenure_model::IdentityRef =
            reference.parse().map_err(|e| EngineError::invalid("identity", format!("{e}")))?;
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(EngineError::invalid("reason", "a renewal says why"));
        }
        tenure_model::text::check(reason, tenure_model::text::MAX_NAME, false)
            .map_err(|e| EngineError::invalid("reason", e.to_string()))?;
        let now = self.clock.now();
        let mut tx = self.store.write()?;
        let policy = self.policy_in(&*tx)?;
        let version = policy.version.as_str();
        let mut row = tx.identity(&r)?.ok_or_else(|| EngineError::NotFound(reference.to_owned()))?;
        let manager = row.attributes.get(&policy.access.manager_attribute).and_then(|m| m.parse().ok());
        let may = by.is_operator()
            || by.has(tenure_model::RoleName::Admin)
            || row.owner.as_ref() == Some(&by.identity)
            || (row.kind.is_human() && manager.as_ref() == Some(&by.identity));
        if !may {
            return Err(EngineError::Forbidden(format!(
                "only `{reference}`'s {} or an administrator may renew it",
                if row.kind.is_human() { "manager" } else { "owner" }
            )));
        }
        if row.state.has_left() {
            return Err(EngineError::Conflict(format!("`{reference}` is {}; it cannot be renewed", row.state)));
        }
        if row.expires_at.is_none() {
            return Err(EngineError::Conflict(format!("`{reference}` has no expiry to renew")));
        }
        if expires_at <= now {
            return Err(EngineError::invalid("expires_at", format!("`{}` is not in the future", ts(expires_at))));
        }
        if let Some(max) = max_lifetime(&policy, &row)
            && expires_at > now + max
        {
            return Err(EngineError::invalid(
                "expires_at",
                format!(
                    "`{}` is more than {} days from now (policy `lifecycle.max_{}_lifetime_days`)",
                    ts(expires_at),
                    max.whole_days(),
                    if row.kind.is_human() { "contractor" } else { "nhi" }
                ),
            ));
        }
        let from = row.expires_at.map(ts);
        row.expires_at = Some(expires_at);
        row.updated_at = now;
        tx.update_identity(&row)?;
        resolve_notices(tx.as_mut(), row.id, None, now)?;
        let resumed = resume_if_suspended(tx.as_mut(), &policy, &mut row, SuspendedBy::Expiry, now)?;
        let (state, changes) = match resumed {
            Some((s, c)) => (Some(s), c.recorded()),
            None => (None, Default::default()),
        };
        let subject = row.reference.to_string();
        let actor = by.actor();
        let event = RenewedBy {
            expires_at: FromTo { from, to: ts(expires_at) },
            by: actor.clone(),
            reason: reason.to_owned(),
            state,
            changes,
        };
        record(tx.as_mut(), Stamp::new(now, &actor, version), &subject, LedgerEvent::RenewedBy(event))?;
        tx.commit()?;
        Ok(self.identity_detail(reference)?.identity)
    }
}
