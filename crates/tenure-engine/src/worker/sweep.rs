//! A leaver's closure sweep of one system, run by its sync job after the account tenure made is
//! converged.

use super::Snapshot;
use tenure_connectors::{Connector, ConnectorError};
use tenure_ledger::event::ReadBack;

/// A leaver's closure sweep: look up every correlation rule of the system for the accounts
/// tenure did not make that belong to the leaver, take each one off as policy says (a surviving
/// leaver's reaction: `disable` strips memberships too; `report` leaves it, and the sweep does
/// not verify), and read each back. `None` when the system has no correlation rules.
pub(super) async fn sweep(
    c: &dyn Connector,
    s: &Snapshot,
) -> Result<Option<tenure_ledger::event::Sweep>, ConnectorError> {
    use tenure_ledger::event::{Sweep, SweptAccount};
    let Some(rules) = s.policy.systems.get(c.system()).map(|d| &d.reconcile).filter(|r| !r.correlate.is_empty()) else {
        return Ok(None);
    };
    let reference = s.identity.reference.to_string();
    let ours = s.account.as_ref().map(|a| a.name.as_str());
    let mut found: std::collections::BTreeMap<String, tenure_connectors::AccountRecord> =
        std::collections::BTreeMap::new();
    let mut looked = Vec::new();
    for rule in &rules.correlate {
        looked.push(format!("{}={}", rule.account, rule.identity));
        let Some(value) = rule.identity_value(&reference, &s.identity.attributes) else { continue };
        for a in c.find(&rule.account, value).await? {
            // Checked again here: the system's own matching may be looser than the rule's.
            let matches = rule.account_value(&a.name, &a.attributes).is_some_and(|v| rule.key(v) == rule.key(value));
            let tenures = Some(a.name.as_str()) == ours && a.managed_by.as_deref() == Some(reference.as_str());
            if matches && !tenures && !a.reserved {
                found.insert(a.name.clone(), a);
            }
        }
    }
    let disable = rules.reaction(tenure_model::Situation::SurvivingLeaver) == tenure_model::Reaction::Disable;
    let mut accounts = Vec::new();
    for (name, a) in found {
        let open = a.enabled || !a.memberships.is_empty() || !a.privileges.is_empty();
        let (mut disabled, mut revoked) = (false, Vec::new());
        if open && disable {
            if a.enabled || !a.privileges.is_empty() {
                c.disable_account(&name).await?;
                disabled = true;
            }
            for t in &a.memberships {
                c.revoke(&name, t).await?;
                revoked.push(t.clone());
            }
        }
        let now = c.read_account(&name).await?;
        accounts.push(SweptAccount {
            account: name,
            disabled,
            revoked,
            read_back: ReadBack {
                present: now.is_some(),
                enabled: now.as_ref().is_some_and(|r| r.enabled),
                memberships: now.map(|r| r.memberships.into_iter().collect()).unwrap_or_default(),
            },
        });
    }
    Ok(Some(Sweep { rules: looked, accounts }))
}
