//! A departing person's non-human identities: each goes to the successor policy names, or
//! waits for a new owner until a deadline (after which the clock suspends it).

use crate::ledger::{Stamp, record};
use tenure_ledger::LedgerEvent;
use tenure_ledger::event::{FromTo, OwnerNeeded, OwnerTransferred, Succession, SuccessionDetail};
use tenure_model::{IdentityRef, rfc3339};
use tenure_policy::Bundle;
use tenure_store::{IdentityRow, NewFinding, WriteTx};
use time::OffsetDateTime;

/// A departing person's NHIs: each goes to the successor policy names (their manager, when that
/// is an active person) at once, or is flagged with a deadline after which the clock suspends it
/// (see `Engine::suspend_ownerless`). Returns what happened to each, for the leaver's ledger entry.
pub(crate) fn succession(
    tx: &mut dyn WriteTx,
    policy: &Bundle,
    leaver: &IdentityRow,
    now: OffsetDateTime,
    actor: &str,
) -> Result<Vec<Succession>, tenure_store::StoreError> {
    let successor = if policy.lifecycle.nhi_successor_is_manager {
        match leaver.attributes.get(&policy.access.manager_attribute).and_then(|m| m.parse::<IdentityRef>().ok()) {
            Some(m) => tx.identity(&m)?.filter(|p| p.kind.is_human() && p.state.is_current() && p.id != leaver.id),
            None => None,
        }
    } else {
        None
    };
    let mut out = Vec::new();
    for mut nhi in tx.identities_owned_by(&leaver.reference)?.into_iter().filter(|n| !n.state.has_left()) {
        let subject = nhi.reference.to_string();
        let detail = match &successor {
            Some(s) => {
                nhi.owner = Some(s.reference.clone());
                nhi.owner_deadline = None;
                SuccessionDetail::Transferred(OwnerTransferred {
                    owner: FromTo { from: leaver.reference.to_string(), to: s.reference.to_string() },
                    because: "the owner left; policy names their manager as successor".into(),
                })
            }
            None => {
                let deadline = now + policy.lifecycle.nhi_transfer_deadline;
                nhi.owner_deadline = Some(deadline);
                let detail =
                    serde_json::json!({ "owner_left": leaver.reference.to_string(), "deadline": rfc3339(deadline) });
                tx.open_finding(&NewFinding {
                    identity_id: Some(nhi.id),
                    kind: "owner_needed",
                    entitlement: "",
                    detail: &detail,
                    policy_version: policy.version.as_str(),
                    at: now,
                })?;
                SuccessionDetail::Needed(OwnerNeeded {
                    owner_left: leaver.reference.to_string(),
                    deadline: rfc3339(deadline),
                    because:
                        "no successor; suspended at the deadline unless an `owner_changed` event names a new owner"
                            .into(),
                })
            }
        };
        nhi.updated_at = now;
        tx.update_identity(&nhi)?;
        // The departing owner may have seen its secrets: revoked now, whether a successor takes
        // the NHI at once or it waits for one (fresh credentials come with its new owner).
        crate::steps::credentials::revoke_live(tx, &nhi, "owner-transfer", policy.version.as_str(), actor, now)?;
        let (event, outcome) = match detail.clone() {
            SuccessionDetail::Transferred(t) => (LedgerEvent::OwnerTransferred(t), "owner_transferred"),
            SuccessionDetail::Needed(n) => (LedgerEvent::OwnerNeeded(n), "owner_needed"),
        };
        record(tx, Stamp::new(now, actor, policy.version.as_str()), &subject, event)?;
        out.push(Succession { nhi: subject, outcome: outcome.into(), detail });
    }
    Ok(out)
}
