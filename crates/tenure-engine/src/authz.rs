//! Runtime authorization: a principal, an action, a resource and a context in; a decision with
//! its reasons and policy version out, written to the ledger before it is returned. Writes are
//! group-committed: concurrent deciders share one transaction (and one fsync), so logging every
//! decision durably costs little per decision.

use crate::ledger::{Stamp, record};
use crate::steps::grants::Holder;
use crate::{Engine, EngineError, Result};
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

impl Engine {
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
        let policy = self.current_policy()?;
        let tx = self.store.read()?;
        let principal = match q.principal.parse::<IdentityRef>().ok().map(|r| tx.identity(&r)).transpose()? {
            Some(Some(row)) => Holder::load(&*tx, row)?,
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
            if let Some(row) = tx.identity(&r)? {
                related.push(Holder::load(&*tx, row)?);
            }
        }
        drop(tx);
        policy
            .authorize(&AuthzFacts {
                principal: principal.subject(),
                related: related.iter().map(Holder::subject).collect(),
                action: &q.action,
                resource: &q.resource,
                context: &q.context,
            })
            .map_err(|e| EngineError::Invalid { field: e.field.to_owned(), message: e.message })
    }
}
