//! Impact analysis of a policy change (`tenure policy diff`): what deploying a bundle would do to
//! the current population, computed with the same functions a deployment runs, without writing.

use crate::steps::grants::{Holder, extras};
use crate::{Engine, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use tenure_model::RequestState;
use tenure_policy::{Bundle, Desired, Held, RequestFacts};

/// How one identity's access would change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdentityImpact {
    #[serde(rename = "ref")]
    pub reference: String,
    pub gains: Vec<String>,
    pub losses: Vec<String>,
    /// Entitlements a guardrail would start blocking, with the guardrails.
    pub newly_blocked: BTreeMap<String, Vec<String>>,
    /// Entitlements no longer blocked.
    pub unblocked: Vec<String>,
}

/// How a pending request's decision would change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestImpact {
    pub id: i64,
    pub beneficiary: String,
    pub entitlement: String,
    pub before: String,
    pub after: String,
    pub approvals_after: u32,
}

/// What a deployment would do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Impact {
    pub from: Option<String>,
    pub to: String,
    /// Only identities whose access would change.
    pub identities: Vec<IdentityImpact>,
    pub grants_gained: usize,
    pub grants_lost: usize,
    /// Guardrail → how many grants it would start blocking.
    pub guardrails_blocking: BTreeMap<String, usize>,
    /// Pending requests, decided again under the new policy.
    pub pending_requests: Vec<RequestImpact>,
    /// Approvals the pending requests would need under the new policy.
    pub approvals_needed: u32,
    /// System → the accounts whose mapped attributes a changed mapping rewrites.
    pub remapped: BTreeMap<String, Vec<RemappedAccount>>,
    /// The systems where that is past the threshold, said as the refusal says them:
    /// deploying then needs `--accept-remap` with the total.
    pub remap_over: Vec<String>,
}

/// An account a changed mapping rewrites.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemappedAccount {
    #[serde(rename = "ref")]
    pub reference: String,
    pub account: String,
}

impl Engine {
    /// What deploying `to` over the current policy (if any) would change.
    pub fn impact(&self, to: &Bundle) -> Result<Impact> {
        let from = if self.has_policy()? { Some(self.current_policy()?) } else { None };
        let now = self.clock.now();
        let tx = self.store.read()?;
        let mut out = Impact {
            from: from.as_ref().map(|b| b.version.to_string()),
            to: to.version.to_string(),
            identities: vec![],
            grants_gained: 0,
            grants_lost: 0,
            guardrails_blocking: BTreeMap::new(),
            pending_requests: vec![],
            approvals_needed: 0,
            remapped: BTreeMap::new(),
            remap_over: vec![],
        };
        if let Some(from) = &from {
            let remapped = crate::steps::attributes::remapped(&*tx, from, to)?;
            out.remap_over = crate::remap_over(to, &remapped);
            out.remapped = remapped
                .into_iter()
                .map(|(s, a)| {
                    (s, a.into_iter().map(|(_, reference, account)| RemappedAccount { reference, account }).collect())
                })
                .collect();
        }
        // Every grant in one query, not one per identity.
        let all_grants = tx.all_grants()?;
        let no_grants = Vec::new();
        let current: BTreeMap<i64, Holder> = tx
            .identities()?
            .into_iter()
            .filter(|i| !i.state.has_left())
            .map(|i| {
                let grants = all_grants.get(&i.id).unwrap_or(&no_grants);
                let holding = grants.iter().filter(|g| g.state.is_wanted()).map(|g| g.entitlement.clone()).collect();
                (i.id, Holder::new(i, holding))
            })
            .collect();
        for facts in current.values() {
            let grants = all_grants.get(&facts.row.id).unwrap_or(&no_grants);
            let extra = extras(&*tx, grants, now)?;
            let held: Vec<Held<'_>> =
                extra.iter().map(|(e, origin, waives)| Held { entitlement: e, origin: *origin, waives }).collect();
            let subject = facts.subject();
            let before = match &from {
                Some(b) => b.desired(&subject, &held),
                None => std::sync::Arc::new(Desired::default()),
            };
            let after = to.desired(&subject, &held);
            // Most identities do not change: tell that without copying anything.
            if before.grants.keys().eq(after.grants.keys()) && before.blocked.keys().eq(after.blocked.keys()) {
                continue;
            }
            let gains: Vec<String> = after.grants.keys().filter(|e| !before.grants.contains_key(*e)).cloned().collect();
            let losses: Vec<String> =
                before.grants.keys().filter(|e| !after.grants.contains_key(*e)).cloned().collect();
            let newly_blocked: BTreeMap<String, Vec<String>> = after
                .blocked
                .iter()
                .filter(|(e, _)| !before.blocked.contains_key(*e))
                .map(|(e, d)| (e.clone(), d.policies.clone()))
                .collect();
            let unblocked: Vec<String> =
                before.blocked.keys().filter(|e| !after.blocked.contains_key(*e)).cloned().collect();
            if gains.is_empty() && losses.is_empty() && newly_blocked.is_empty() && unblocked.is_empty() {
                continue;
            }
            out.grants_gained += gains.len();
            out.grants_lost += losses.len();
            for ps in newly_blocked.values() {
                for p in ps {
                    *out.guardrails_blocking.entry(p.clone()).or_default() += 1;
                }
            }
            out.identities.push(IdentityImpact {
                reference: facts.row.reference.to_string(),
                gains,
                losses,
                newly_blocked,
                unblocked,
            });
        }
        for r in tx.requests(Some(RequestState::Pending))? {
            let (Some(beneficiary), Some(requester)) = (current.get(&r.beneficiary_id), current.get(&r.requester_id))
            else {
                continue;
            };
            let d = to.decide_request(&RequestFacts {
                beneficiary: beneficiary.subject(),
                requester: requester.subject(),
                related: vec![],
                entitlement: &r.entitlement,
                kind: r.kind,
                intent: &r.intent,
                duration_minutes: r.duration.map_or(0, |d| d.whole_minutes()),
            });
            let approvals = d.approval.as_ref().map_or(0, |a| a.count);
            out.approvals_needed += approvals;
            out.pending_requests.push(RequestImpact {
                id: r.id,
                beneficiary: beneficiary.row.reference.to_string(),
                entitlement: r.entitlement.clone(),
                before: r.decision.get("decision").and_then(|v| v.as_str()).unwrap_or("").to_owned(),
                after: d.decision.as_str().to_owned(),
                approvals_after: approvals,
            });
        }
        Ok(out)
    }
}
