//! Runtime authorization: a principal, an action, a resource and a context in; a decision with
//! its reasons and policy version out, written to the ledger before it is returned. Writes are
//! group-committed: concurrent deciders share one transaction (and one fsync), so logging every
//! decision durably costs little per decision.

use crate::ledger::{Stamp, record};
use crate::steps::grants::Holder;
use crate::{Engine, EngineError, Result};
use std::sync::Arc;
use tenure_ledger::LedgerEvent;
use tenure_ledger::event::{Approval, AuthzDecided, AuthzResource, RecordedDecision};
use tenure_model::IdentityRef;
use tenure_policy::AuthzFacts;
pub use tenure_policy::{Decision, ResourceSpec, Verdict};

/// A policy decision as the ledger records it.
pub(crate) fn recorded(d: &Decision) -> RecordedDecision {
    RecordedDecision {
        decision: d.decision.as_str().to_owned(),
        policies: d.policies.clone(),
        reasons: d.reasons.clone(),
        errors: d.errors.clone(),
        approval: d.approval.as_ref().map(|a| Approval { roles: a.roles.iter().copied().collect(), count: a.count }),
        policy_version: d.policy_version.clone(),
    }
}

/// A runtime authorization question.
#[derive(Debug, Clone)]
pub struct Question {
    pub principal: String,
    pub action: String,
    pub resource: ResourceSpec,
    pub context: serde_json::Value,
}

impl Question {
    /// The question a client asked (`POST /v1/authorize`).
    pub fn from_wire(w: tenure_proto::AuthorizeWire) -> Self {
        let r = w.resource;
        Self {
            principal: w.principal,
            action: w.action,
            resource: ResourceSpec { kind: r.kind, id: r.id, attributes: r.attributes, tags: r.tags },
            context: w.context,
        }
    }
}

/// A decision as clients see it.
pub fn decision_view(d: &Decision) -> tenure_proto::DecisionView {
    tenure_proto::DecisionView {
        decision: d.decision.as_str().to_owned(),
        policies: d.policies.clone(),
        reasons: d.reasons.clone(),
        errors: d.errors.clone(),
        approval: d.approval.as_ref().map(|a| tenure_proto::ApprovalNeeded {
            roles: a.roles.iter().map(|r| r.as_str().to_owned()).collect(),
            count: a.count,
        }),
        policy_version: d.policy_version.clone(),
    }
}

/// How many identities [`HolderCache`] keeps before it starts again (a bound on its memory,
/// not a working-set policy: the identities that ask are read again on their next decision).
const CACHED_HOLDERS: usize = 50_000;

/// Identities as authorization last read them (the row and its wanted grants), by reference,
/// each good while the store still has it at the revision it was read at: the revision changes
/// in the transaction that changes the identity or its grants, so a leaver's commit makes the
/// next decision read it again.
#[derive(Default)]
pub(crate) struct HolderCache(std::sync::Mutex<std::collections::HashMap<IdentityRef, Arc<Holder>>>);

impl HolderCache {
    fn get(&self, r: &IdentityRef, id: i64, rev: i64) -> Option<Arc<Holder>> {
        let map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(r).filter(|h| h.row.id == id && h.row.rev == rev).cloned()
    }

    fn put(&self, h: Arc<Holder>) {
        let mut map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= CACHED_HOLDERS {
            map.clear();
        }
        map.insert(h.row.reference.clone(), h);
    }
}

impl Engine {
    /// Identity `r` with its wanted grants as of `tx`: the cached copy when the store has it at
    /// the same revision, else read (and cached).
    fn holder(&self, tx: &dyn tenure_store::ReadTx, r: &IdentityRef) -> Result<Option<Arc<Holder>>> {
        let Some((id, rev)) = tx.identity_rev(r)? else { return Ok(None) };
        if let Some(h) = self.holders.get(r, id, rev) {
            return Ok(Some(h));
        }
        let Some(row) = tx.identity_by_id(id)? else { return Ok(None) };
        let h = Arc::new(Holder::load(tx, row)?);
        self.holders.put(h.clone());
        Ok(Some(h))
    }

    /// `POST /v1/authorize`: the question as a client sent it, asked by `caller`.
    pub fn authorize_wire(
        &self,
        caller: &tenure_model::Principal,
        w: tenure_proto::AuthorizeWire,
    ) -> Result<tenure_proto::DecisionView> {
        Ok(decision_view(&self.authorize(&Question::from_wire(w), caller)?))
    }

    /// Decide, log durably, answer. An unknown principal is denied (and logged); a question
    /// that does not fit the schema is bad input.
    pub fn authorize(&self, q: &Question, by: &tenure_model::Principal) -> Result<Decision> {
        let decision = self.decide(q)?;
        let event = LedgerEvent::AuthzDecided(AuthzDecided {
            action: q.action.clone(),
            resource: AuthzResource {
                kind: q.resource.kind.clone(),
                id: q.resource.id.clone(),
                attributes: q.resource.attributes.clone(),
                tags: q.resource.tags.clone(),
            },
            context: q.context.clone(),
            decision: decision.decision.as_str().to_owned(),
            policies: decision.policies.clone(),
            reasons: decision.reasons.clone(),
            errors: decision.errors.clone(),
        });
        let (at, actor, subject, version) =
            (self.clock.now(), by.actor(), q.principal.clone(), decision.policy_version.clone());
        self.commits.run(
            self.store.as_ref(),
            Box::new(move |tx| {
                record(tx, Stamp::new(at, &actor, &version), &subject, event)?;
                Ok(Ok(()))
            }),
        )?;
        Ok(decision)
    }

    /// The decision alone, without logging it (what [`Engine::authorize`] logs).
    pub fn decide(&self, q: &Question) -> Result<Decision> {
        let tx = self.store.read()?;
        let policy = self.policy_in(&*tx)?;
        let principal = match q.principal.parse::<IdentityRef>().ok().map(|r| self.holder(&*tx, &r)).transpose()? {
            Some(Some(h)) => h,
            _ => {
                return Ok(Decision {
                    decision: tenure_policy::Verdict::Deny,
                    policies: vec!["tenure:unknown-principal".into()],
                    reasons: vec![format!("no identity `{}`", q.principal)],
                    errors: vec![],
                    approval: None,
                    policy_version: policy.version.to_string(),
                });
            }
        };
        // Past its expiry, nothing is allowed, even before the clock has suspended it or cut
        // it off.
        let now = self.clock.now();
        if let Some(end) = principal.row.expires_at.filter(|e| *e <= now) {
            return Ok(Decision {
                decision: tenure_policy::Verdict::Deny,
                policies: vec!["tenure:expired".into()],
                reasons: vec![format!("`{}` expired at {}", q.principal, tenure_model::rfc3339(end))],
                errors: vec![],
                approval: None,
                policy_version: policy.version.to_string(),
            });
        }
        let mut related = Vec::new();
        let mut refs: Vec<IdentityRef> = principal.row.owner.iter().cloned().collect();
        refs.extend(principal.row.attributes.get(&policy.access.manager_attribute).and_then(|m| m.parse().ok()));
        if q.resource.kind == "Tenure::Identity" {
            refs.extend(q.resource.id.parse().ok());
        }
        for r in refs {
            if let Some(h) = self.holder(&*tx, &r)? {
                related.push(h);
            }
        }
        drop(tx);
        // The identities exactly as read: with it, the Cedar inputs are built once per state.
        let revision = std::iter::once(&principal)
            .chain(&related)
            .map(|h| format!("{}:{}", h.row.id, h.row.rev))
            .collect::<Vec<_>>()
            .join(",");
        policy
            .authorize(&AuthzFacts {
                principal: principal.subject(),
                related: related.iter().map(|h| h.subject()).collect(),
                action: &q.action,
                resource: &q.resource,
                context: &q.context,
                revision: Some(&revision),
            })
            .map_err(|e| EngineError::Invalid { field: e.field.to_owned(), message: e.message })
    }
}
