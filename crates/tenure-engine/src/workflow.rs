//! The state changes of the joiner, mover and leaver flows, as steps inside a caller's write
//! transaction: desired grants from policy, grants to revoke, accounts to (dis)able, and the
//! sync jobs that carry them out.

use std::collections::{BTreeMap, BTreeSet};
use tenure_model::{AccountState, GrantOrigin, GrantState, LifecycleState};
use tenure_policy::Bundle;
use tenure_store::{AuditEntry, IdentityRow, JobKind, NewGrant, NewJob, StoreError, WriteTx};
use time::OffsetDateTime;

#[derive(Debug)]
pub(crate) enum WorkflowError {
    Store(StoreError),
    AccountTaken { system: String, name: String, holder: String },
    Transition(tenure_model::TransitionError),
}

impl From<StoreError> for WorkflowError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// What a step changed, for the audit record.
#[derive(Debug, Default)]
pub(crate) struct Change {
    pub added: BTreeSet<String>,
    pub revoking: BTreeSet<String>,
    pub systems: BTreeSet<String>,
}

impl Change {
    pub fn is_empty(&self) -> bool {
        self.systems.is_empty()
    }

    pub fn describe(&self, detail: &mut serde_json::Map<String, serde_json::Value>) {
        if !self.added.is_empty() {
            detail.insert("grants_added".into(), serde_json::json!(self.added));
        }
        if !self.revoking.is_empty() {
            detail.insert("grants_revoking".into(), serde_json::json!(self.revoking));
        }
        if !self.systems.is_empty() {
            detail.insert(
                "jobs".into(),
                serde_json::json!(self.systems.iter().map(|s| format!("sync:{s}")).collect::<Vec<_>>()),
            );
        }
    }
}

/// The account name of an identity in a system, by the system's `account_name` pattern.
pub(crate) fn account_name(policy: &Bundle, system: &str, identity: &IdentityRow) -> String {
    let pattern =
        policy.systems.get(system).and_then(|s| s.settings.get("account_name")).map_or("{external_id}", String::as_str);
    tenure_connectors::expand_account_name(pattern, identity.reference.source(), identity.reference.external_id())
}

/// Bring an identity's grants to what policy wants now (joiner and mover): new entitlements
/// become `desired`, lost ones `revoking`; accounts follow (wanted while any grant in the
/// system is wanted); one sync job per touched system.
pub(crate) fn apply_desired(
    tx: &mut dyn WriteTx,
    policy: &Bundle,
    identity: &IdentityRow,
    now: OffsetDateTime,
) -> Result<Change, WorkflowError> {
    let facts = tenure_policy::Facts {
        source: identity.reference.source(),
        kind: identity.kind,
        attributes: &identity.attributes,
    };
    let want = policy.birthright(&facts);
    let have: BTreeMap<String, tenure_store::GrantRow> =
        tx.grants(identity.id)?.into_iter().map(|g| (g.entitlement.clone(), g)).collect();
    let mut change = Change::default();
    let version = policy.version.as_str();

    for ent in &want {
        if have.get(ent).is_some_and(|g| g.state.is_wanted()) {
            continue;
        }
        let Some(def) = policy.entitlement(ent) else { continue };
        tx.put_grant(&NewGrant {
            identity_id: identity.id,
            entitlement: ent,
            system: &def.system,
            state: GrantState::Desired,
            origin: GrantOrigin::Birthright.as_str(),
            policy_version: version,
            at: now,
        })?;
        change.added.insert(ent.clone());
        change.systems.insert(def.system.clone());
    }
    for (ent, g) in &have {
        if g.state.is_wanted() && !want.contains(ent) {
            tx.put_grant(&NewGrant {
                identity_id: identity.id,
                entitlement: ent,
                system: &g.system,
                state: GrantState::Revoking,
                origin: &g.origin,
                policy_version: version,
                at: now,
            })?;
            change.revoking.insert(ent.clone());
            change.systems.insert(g.system.clone());
        }
    }

    // Accounts: wanted in every system where a grant is wanted.
    let wanted_systems: BTreeSet<String> =
        want.iter().filter_map(|e| policy.entitlement(e)).map(|d| d.system.clone()).collect();
    let accounts: BTreeMap<String, tenure_store::AccountRow> =
        tx.accounts(identity.id)?.into_iter().map(|a| (a.system.clone(), a)).collect();
    for system in &wanted_systems {
        match accounts.get(system) {
            Some(a) if matches!(a.state, AccountState::Desired | AccountState::Verified) => {}
            Some(a) => {
                tx.put_account(identity.id, system, &a.name, AccountState::Desired, now)?;
                change.systems.insert(system.clone());
            }
            None => {
                let name = account_name(policy, system, identity);
                if let Some(holder) = tx.account_by_name(system, &name)? {
                    let holder =
                        tx.identity_by_id(holder.identity_id)?.map(|h| h.reference.to_string()).unwrap_or_default();
                    return Err(WorkflowError::AccountTaken { system: system.clone(), name, holder });
                }
                tx.put_account(identity.id, system, &name, AccountState::Desired, now)?;
                change.systems.insert(system.clone());
            }
        }
    }
    for (system, a) in &accounts {
        if !wanted_systems.contains(system) && matches!(a.state, AccountState::Desired | AccountState::Verified) {
            tx.put_account(identity.id, system, &a.name, AccountState::Disabling, now)?;
            change.systems.insert(system.clone());
        }
    }
    enqueue(tx, identity.id, &change.systems, now)?;
    Ok(change)
}

/// The leaver: the identity is `leaving` at once (cut off from this commit on); every wanted
/// grant becomes `revoking` and every account `disabling`. With nothing to deprovision the
/// identity is `closed` at once.
pub(crate) fn leave(
    tx: &mut dyn WriteTx,
    identity: &IdentityRow,
    now: OffsetDateTime,
) -> Result<Change, WorkflowError> {
    let mut change = Change::default();
    for g in tx.grants(identity.id)? {
        if g.state.is_wanted() || g.state == GrantState::Revoked {
            tx.put_grant(&NewGrant {
                identity_id: identity.id,
                entitlement: &g.entitlement,
                system: &g.system,
                state: GrantState::Revoking,
                origin: &g.origin,
                policy_version: &g.policy_version,
                at: now,
            })?;
            change.revoking.insert(g.entitlement.clone());
            change.systems.insert(g.system.clone());
        } else if g.state == GrantState::Revoking {
            change.systems.insert(g.system.clone());
        }
    }
    for a in tx.accounts(identity.id)? {
        if a.state != AccountState::DisableVerified {
            tx.put_account(identity.id, &a.system, &a.name, AccountState::Disabling, now)?;
        }
        // Even a verified-disabled account is checked again: the leaver must leave no group.
        change.systems.insert(a.system.clone());
    }
    let mut to = identity.state.transition(LifecycleState::Leaving).map_err(WorkflowError::Transition)?;
    if change.is_empty() {
        to = to.transition(LifecycleState::Closed).map_err(WorkflowError::Transition)?;
    }
    tx.set_identity_state(identity.id, to, now)?;
    enqueue(tx, identity.id, &change.systems, now)?;
    Ok(change)
}

fn enqueue(
    tx: &mut dyn WriteTx,
    identity_id: i64,
    systems: &BTreeSet<String>,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    for system in systems {
        tx.enqueue(&NewJob { kind: JobKind::Sync, identity_id, system, run_at: now })?;
    }
    Ok(())
}

/// Recompute one identity after a policy deployment; returns whether anything changed.
pub(crate) fn recompute(
    tx: &mut dyn WriteTx,
    policy: &Bundle,
    identity: &IdentityRow,
    now: OffsetDateTime,
    actor: &str,
) -> Result<bool, StoreError> {
    let change = match apply_desired(tx, policy, identity, now) {
        Ok(c) => c,
        Err(WorkflowError::Store(e)) => return Err(e),
        Err(WorkflowError::Transition(_)) => return Ok(false),
        Err(WorkflowError::AccountTaken { system, name, holder }) => {
            // Not a reason to refuse the deployment; recorded for people to resolve.
            tx.append_audit(&AuditEntry {
                at: now,
                actor,
                action: "identity.account_conflict",
                subject: &identity.reference.to_string(),
                policy_version: policy.version.as_str(),
                detail: serde_json::json!({ "system": system, "account": name, "held_by": holder }),
            })?;
            return Ok(false);
        }
    };
    if change.is_empty() {
        return Ok(false);
    }
    let mut detail = serde_json::Map::new();
    change.describe(&mut detail);
    tx.append_audit(&AuditEntry {
        at: now,
        actor,
        action: "identity.recomputed",
        subject: &identity.reference.to_string(),
        policy_version: policy.version.as_str(),
        detail: serde_json::Value::Object(detail),
    })?;
    Ok(true)
}
