//! Mapped attributes of an identity's account in one system: the values policy's mapping
//! gives it (the manager's account looked up in the same system), and for a mover the systems
//! whose values changed, which get a sync job to update them and read them back.

use crate::steps::grants::{Change, enqueue};
use std::collections::{BTreeMap, BTreeSet};
use tenure_model::{AccountState, IdentityRef};
use tenure_policy::Bundle;
use tenure_policy::attributes::{Inputs, Values};
use tenure_store::{IdentityRow, ReadTx, StoreError, WriteTx};
use time::OffsetDateTime;

/// What `identity`'s account `account` in `system` should carry (empty when the system maps
/// nothing or is not in policy).
pub(crate) fn wanted(
    tx: &dyn ReadTx,
    policy: &Bundle,
    system: &str,
    identity: &IdentityRow,
    account: &str,
) -> Result<Values, StoreError> {
    let Some(def) = policy.systems.get(system).filter(|d| !d.attributes.is_empty()) else {
        return Ok(Values::new());
    };
    let manager = manager_account(tx, policy, system, identity)?;
    Ok(def.attributes.values(&Inputs {
        kind: identity.kind,
        source: identity.reference.source(),
        external_id: identity.reference.external_id(),
        name: &identity.name,
        attributes: &identity.attributes,
        account,
        manager_account: manager.as_deref(),
    }))
}

/// The manager's account in `system`, while it has one there that is not being deleted.
fn manager_account(
    tx: &dyn ReadTx,
    policy: &Bundle,
    system: &str,
    identity: &IdentityRow,
) -> Result<Option<String>, StoreError> {
    let Some(manager) =
        identity.attributes.get(&policy.access.manager_attribute).and_then(|m| m.parse::<IdentityRef>().ok())
    else {
        return Ok(None);
    };
    let Some(row) = tx.identity(&manager)? else { return Ok(None) };
    Ok(tx
        .accounts(row.id)?
        .into_iter()
        .find(|a| a.system == system && !matches!(a.state, AccountState::Deleting | AccountState::DeleteVerified))
        .map(|a| a.name))
}

/// A mover: every system where `after`'s account is wanted and its mapped values differ from
/// `before`'s gets a sync job (unless the change has one there already), and the account is
/// `desired` until the read-back shows the new values.
pub(crate) fn remap(
    tx: &mut dyn WriteTx,
    policy: &Bundle,
    before: &IdentityRow,
    after: &IdentityRow,
    change: &mut Change,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let mut systems = BTreeSet::new();
    for a in tx.accounts(after.id)? {
        if !matches!(a.state, AccountState::Desired | AccountState::Verified) || change.systems.contains(&a.system) {
            continue;
        }
        if wanted(&*tx, policy, &a.system, before, &a.name)? != wanted(&*tx, policy, &a.system, after, &a.name)? {
            if a.state == AccountState::Verified {
                tx.put_account(after.id, &a.system, &a.name, AccountState::Desired, now)?;
            }
            systems.insert(a.system);
        }
    }
    enqueue(tx, after.id, &systems, now)?;
    change.systems.extend(systems);
    Ok(())
}

/// System → the accounts a changed mapping rewrites, as `(identity id, ref, account)`.
pub(crate) type Remapped = BTreeMap<String, Vec<(i64, String, String)>>;

/// Accounts a deployment from `from` to `to` would rewrite: for each system whose mapping
/// changed, the live accounts (`desired` or `verified`, of identities that have not left)
/// whose mapped values differ between the two, as `(identity id, ref, account)`.
pub(crate) fn remapped(tx: &dyn ReadTx, from: &Bundle, to: &Bundle) -> Result<Remapped, StoreError> {
    let changed: BTreeSet<&str> = to
        .systems
        .iter()
        .filter(|(name, def)| from.systems.get(*name).is_some_and(|old| old.attributes != def.attributes))
        .map(|(name, _)| name.as_str())
        .collect();
    let mut out = Remapped::new();
    if changed.is_empty() {
        return Ok(out);
    }
    for identity in tx.identities()? {
        if identity.state.has_left() {
            continue;
        }
        for a in tx.accounts(identity.id)? {
            if !matches!(a.state, AccountState::Desired | AccountState::Verified)
                || !changed.contains(a.system.as_str())
            {
                continue;
            }
            if wanted(tx, from, &a.system, &identity, &a.name)? != wanted(tx, to, &a.system, &identity, &a.name)? {
                out.entry(a.system).or_default().push((identity.id, identity.reference.to_string(), a.name));
            }
        }
    }
    Ok(out)
}

/// Hand each of `remapped`'s accounts that is still live (the deployment's own recompute may
/// have started removing it) a sync job that writes the new values and reads them back; a
/// verified account is `desired` again until it does.
pub(crate) fn resync(tx: &mut dyn WriteTx, remapped: &Remapped, now: OffsetDateTime) -> Result<(), StoreError> {
    for (system, accounts) in remapped {
        for (identity_id, _, account) in accounts {
            let live = tx.accounts(*identity_id)?.into_iter().find(|a| &a.system == system && &a.name == account);
            match live.map(|a| a.state) {
                Some(AccountState::Verified) => {
                    tx.put_account(*identity_id, system, account, AccountState::Desired, now)?;
                }
                Some(AccountState::Desired) => {}
                _ => continue,
            }
            enqueue(tx, *identity_id, &BTreeSet::from([system.clone()]), now)?;
        }
    }
    Ok(())
}
