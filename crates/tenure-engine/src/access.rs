//! Access requests, JIT elevation and exceptions, their approvals with separation of duties,
//! and the clock that ends what was time-bound.
//!
//! Invariants kept here (property-tested in `tests::sod`):
//! - nobody approves a request they made, or one for themselves;
//! - a non-human never approves; an approver must be active when answering, and an approval
//!   counts only while its approver is still an active human;
//! - the same human answers a request at most once, so `count` approvals are `count` people;
//! - a request not decided by its deadline expires, and nothing is answered after that;
//! - nothing is granted before the last required approval.

use crate::ledger::{Stamp, record};
use crate::steps::grants::{self, Holder};
use crate::steps::requests;
use crate::{Engine, EngineError, Result};
use std::collections::{BTreeMap, BTreeSet};
use tenure_ledger::LedgerEvent;
use tenure_ledger::event::{Answer, EndedGrant, GrantExpired, RequestBlocked, RequestCreated, RequestGranted};
use tenure_model::{GrantOrigin, IdentityRef, LifecycleState, Principal, RequestKind, RequestState, RoleName};
use tenure_policy::{Bundle, Decision, RequestFacts, Verdict};
use tenure_proto::{ApprovalView, RequestView};
use tenure_store::{ApprovalRow, IdentityRow, NewRequest, ReadTx, RequestRow};
use time::{Duration, OffsetDateTime};

use tenure_model::rfc3339 as ts;

/// A request as the engine takes it.
#[derive(Debug, Clone)]
pub struct AccessRequest {
    pub beneficiary: String,
    pub entitlement: String,
    pub kind: RequestKind,
    pub intent: String,
    pub duration: Option<Duration>,
}

impl AccessRequest {
    /// A request as a client sent it (`POST /v1/requests`): `access` unless it says otherwise,
    /// for the caller unless it names a beneficiary.
    pub fn from_wire(w: tenure_proto::RequestWire, caller: &Principal) -> Result<Self> {
        let kind = match w.kind.as_deref() {
            None => RequestKind::Access,
            Some(k) => k.parse::<RequestKind>().map_err(|e| EngineError::invalid("kind", e))?,
        };
        let duration = w
            .duration_minutes
            .map(|m| tenure_model::credential::bounded(m, 60, "minutes"))
            .transpose()
            .map_err(|e| EngineError::invalid("duration_minutes", e.to_string()))?;
        Ok(Self {
            beneficiary: w.beneficiary.unwrap_or_else(|| caller.identity.to_string()),
            entitlement: w.entitlement,
            kind,
            intent: w.intent,
            duration,
        })
    }
}

fn identity(tx: &dyn ReadTx, field: &str, r: &str) -> Result<IdentityRow> {
    let parsed: IdentityRef = r.parse().map_err(|e| EngineError::invalid(field, format!("{e}")))?;
    tx.identity(&parsed)?.ok_or_else(|| EngineError::invalid(field, format!("no identity `{r}`")))
}

pub(crate) fn request_view(tx: &dyn ReadTx, r: RequestRow) -> Result<RequestView> {
    let name = |id: i64| -> Result<String> {
        Ok(tx.identity_by_id(id)?.map(|i| i.reference.to_string()).unwrap_or_else(|| format!("#{id}")))
    };
    let approvals = tx
        .approvals(r.id)?
        .into_iter()
        .map(|a| {
            Ok(ApprovalView { approver: name(a.approver_id)?, approve: a.approve, reason: a.reason, at: ts(a.at) })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RequestView {
        id: r.id,
        kind: r.kind.to_string(),
        requester: name(r.requester_id)?,
        beneficiary: name(r.beneficiary_id)?,
        entitlement: r.entitlement,
        intent: r.intent,
        duration_minutes: r.duration.map(|d| d.whole_minutes()),
        state: r.state.to_string(),
        decision: serde_json::from_value(r.decision)
            .map_err(|e| tenure_store::StoreError::Corrupt(format!("request {}: its decision: {e}", r.id)))?,
        waives: r.waives,
        approvals,
        created_at: ts(r.created_at),
        decide_by: ts(r.decide_by),
        decided_at: r.decided_at.map(ts),
    })
}

impl Engine {
    /// Make a request. Policy decides at once: a denied request is recorded as denied, an
    /// allowed one is granted in the same transaction, and one that needs approval waits
    /// (until its deadline) for the approvers the decision names.
    pub fn request(&self, actor: &Principal, req: &AccessRequest) -> Result<RequestView> {
        let policy = self.current_policy()?;
        let now = self.clock.now();
        let mut tx = self.store.write()?;
        let requester =
            tx.identity(&actor.identity)?.ok_or_else(|| EngineError::invalid("caller", "unknown identity"))?;
        let beneficiary = identity(&*tx, "beneficiary", &req.beneficiary)?;
        let Some(def) = policy.entitlement(&req.entitlement) else {
            return Err(EngineError::invalid("entitlement", format!("unknown entitlement `{}`", req.entitlement)));
        };
        for (who, field) in [(&requester, "caller"), (&beneficiary, "beneficiary")] {
            if who.state != LifecycleState::Active {
                return Err(EngineError::invalid(
                    field,
                    format!("`{}` is {}; only active identities", who.reference, who.state),
                ));
            }
        }
        let own = beneficiary.id == requester.id
            || beneficiary.owner.as_ref() == Some(&requester.reference)
            || beneficiary.attributes.get(&policy.access.manager_attribute) == Some(&requester.reference.to_string());
        if !own && !actor.has(RoleName::Admin) {
            return Err(EngineError::Refused(format!(
                "`{}` may request only for itself, for identities it owns, or for people it manages",
                requester.reference
            )));
        }
        let limit = |max: Duration, what: &str| -> Result<()> {
            match req.duration {
                Some(d) if d > max => Err(EngineError::invalid(
                    "duration_minutes",
                    format!(
                        "{} minutes is longer than the {what} maximum of {} minutes",
                        d.whole_minutes(),
                        max.whole_minutes()
                    ),
                )),
                _ => Ok(()),
            }
        };
        if let Some(d) = req.duration
            && d <= Duration::ZERO
        {
            return Err(EngineError::invalid("duration_minutes", "expected a positive number of minutes"));
        }
        if let Some(max) = def.max_duration {
            limit(max, &format!("`{}`", def.id))?;
        }
        match req.kind {
            RequestKind::Access => {}
            RequestKind::Jit => {
                if !def.privileged {
                    return Err(EngineError::invalid(
                        "kind",
                        format!("`{}` is not privileged; make an access request", def.id),
                    ));
                }
                if req.duration.is_none() {
                    return Err(EngineError::invalid("duration_minutes", "a JIT elevation needs a duration"));
                }
                limit(policy.access.jit_max, "JIT")?;
            }
            RequestKind::Exception => {
                if req.duration.is_none() {
                    return Err(EngineError::invalid("duration_minutes", "an exception needs a duration"));
                }
                limit(policy.access.exception_max, "exception")?;
            }
        }
        if matches!(req.kind, RequestKind::Jit | RequestKind::Exception) && req.intent.trim().is_empty() {
            return Err(EngineError::invalid("intent", "a JIT elevation or exception needs a declared intent"));
        }
        let facts = Holder::load(&*tx, beneficiary.clone())?;
        if facts.holding.contains(&req.entitlement) {
            return Err(EngineError::invalid(
                "entitlement",
                format!("`{}` already holds `{}`", beneficiary.reference, req.entitlement),
            ));
        }
        if tx
            .pending_requests_of(beneficiary.id)?
            .iter()
            .any(|r| r.beneficiary_id == beneficiary.id && r.entitlement == req.entitlement)
        {
            return Err(EngineError::Conflict(format!(
                "a request for `{}` to `{}` is already pending",
                beneficiary.reference, req.entitlement
            )));
        }

        let requester_facts = Holder::load(&*tx, requester.clone())?;
        let mut related = Vec::new();
        for r in [
            beneficiary.owner.clone(),
            beneficiary.attributes.get(&policy.access.manager_attribute).and_then(|m| m.parse().ok()),
        ]
        .into_iter()
        .flatten()
        {
            if let Some(row) = tx.identity(&r)? {
                related.push(Holder::load(&*tx, row)?);
            }
        }
        let (decision, waives) = if req.kind == RequestKind::Exception {
            let guard = policy.hold(&facts.subject(), &req.entitlement, GrantOrigin::Exception);
            if guard.is_allow() {
                return Err(EngineError::invalid(
                    "kind",
                    format!(
                        "no guardrail blocks `{}` for `{}`; make an access request",
                        req.entitlement, beneficiary.reference
                    ),
                ));
            }
            if !guard.errors.is_empty() || guard.policies.is_empty() {
                (guard, vec![])
            } else {
                let waives = guard.policies.clone();
                let d = Decision {
                    decision: Verdict::NeedsApproval,
                    approval: Some(policy.access.exception_approval.clone()),
                    ..guard
                };
                (d, waives)
            }
        } else {
            let d = policy.decide_request(&RequestFacts {
                beneficiary: facts.subject(),
                requester: requester_facts.subject(),
                related: related.iter().map(Holder::subject).collect(),
                entitlement: &req.entitlement,
                kind: req.kind,
                intent: &req.intent,
                duration_minutes: req.duration.map_or(0, |d| d.whole_minutes()),
            });
            (d, vec![])
        };
        let state = match decision.decision {
            Verdict::Allow => RequestState::Approved,
            Verdict::Deny => RequestState::Denied,
            Verdict::NeedsApproval => RequestState::Pending,
        };
        // Stored as clients see it: the wire shape, not the policy crate's type.
        let decision_json = crate::encode(&crate::authz::decision_view(&decision))?;
        let recorded_decision = crate::authz::recorded(&decision);
        let id = tx.insert_request(&NewRequest {
            kind: req.kind,
            requester_id: requester.id,
            beneficiary_id: beneficiary.id,
            entitlement: &req.entitlement,
            intent: &req.intent,
            duration: req.duration,
            state: RequestState::Pending,
            decision: &decision_json,
            waives: &waives,
            policy_version: policy.version.as_str(),
            at: now,
            decide_by: now + policy.access.decide_within,
        })?;
        let subject = beneficiary.reference.to_string();
        let requester_ref = requester.reference.to_string();
        record(
            tx.as_mut(),
            Stamp::new(now, &requester_ref, policy.version.as_str()),
            &subject,
            LedgerEvent::RequestCreated(RequestCreated {
                request: id,
                kind: req.kind,
                entitlement: req.entitlement.clone(),
                intent: req.intent.clone(),
                duration_minutes: req.duration.map(|d| d.whole_minutes()),
                decision: recorded_decision,
                waives: waives.clone(),
            }),
        )?;
        if state != RequestState::Pending {
            tx.finish_request(id, state, now)?;
        } else {
            let row = tx.request(id)?.ok_or(EngineError::NotFound(id.to_string()))?;
            requests::notify_approvers(tx.as_mut(), &policy, &row, &beneficiary, now)?;
        }
        if state == RequestState::Approved {
            let row = tx.request(id)?.ok_or(EngineError::NotFound(id.to_string()))?;
            let change = requests::provision(tx.as_mut(), &policy, &beneficiary, &row, now)?;
            record(
                tx.as_mut(),
                Stamp::engine(now, policy.version.as_str()),
                &subject,
                LedgerEvent::RequestGranted(RequestGranted { request: id, changes: change.recorded() }),
            )?;
        }
        let row = tx.request(id)?.ok_or(EngineError::NotFound(id.to_string()))?;
        let view = request_view(&*tx, row)?;
        tx.commit()?;
        Ok(view)
    }

    /// An approver's answer. Refusals (self-approval, a non-human, an ineligible or departed
    /// approver, a second answer by the same person) change nothing. The answer that completes
    /// the requirement grants the access in the same transaction.
    pub fn answer(&self, approver: &IdentityRef, request_id: i64, approve: bool, reason: &str) -> Result<RequestView> {
        if reason.trim().is_empty() {
            return Err(EngineError::invalid("reason", "an answer needs a reason"));
        }
        let policy = self.current_policy()?;
        let now = self.clock.now();
        let mut tx = self.store.write()?;
        let r = tx.request(request_id)?.ok_or_else(|| EngineError::NotFound(format!("request {request_id}")))?;
        let who = tx.identity(approver)?.ok_or_else(|| EngineError::invalid("caller", "unknown identity"))?;
        if r.state != RequestState::Pending {
            return Err(EngineError::Conflict(format!("request {request_id} is {}, not pending", r.state)));
        }
        let subject =
            tx.identity_by_id(r.beneficiary_id)?.ok_or(EngineError::NotFound(r.beneficiary_id.to_string()))?;
        if now >= r.decide_by {
            requests::expire_request(tx.as_mut(), &r, &subject.reference.to_string(), policy.version.as_str(), now)?;
            tx.commit()?;
            return Err(EngineError::Conflict(format!("request {request_id} expired at {}", ts(r.decide_by))));
        }
        if let Some(why) = requests::refusal(&who, &r) {
            return Err(EngineError::Refused(why));
        }
        let need = requests::requirement(&r.decision);
        let roles = requests::eligible_roles(&policy, &who.reference.to_string(), &subject, &r.entitlement);
        if roles.is_disjoint(&need.roles) {
            let names: Vec<&str> = need.roles.iter().map(|r| r.as_str()).collect();
            return Err(EngineError::Refused(format!(
                "`{}` is not an approver of request {request_id}: it needs {}",
                who.reference,
                names.join(", ")
            )));
        }
        if !tx.insert_approval(&ApprovalRow {
            request_id,
            approver_id: who.id,
            approve,
            reason: reason.to_owned(),
            at: now,
        })? {
            return Err(EngineError::Conflict(format!("`{}` already answered request {request_id}", who.reference)));
        }
        let subject_ref = subject.reference.to_string();
        let approver_ref = who.reference.to_string();
        let version = policy.version.as_str();
        let answer = Answer { request: request_id, reason: reason.to_owned(), roles: roles.iter().copied().collect() };
        record(
            tx.as_mut(),
            Stamp::new(now, &approver_ref, version),
            &subject_ref,
            if approve { LedgerEvent::ApprovedBy(answer) } else { LedgerEvent::DeniedBy(answer) },
        )?;
        if !approve {
            tx.finish_request(request_id, RequestState::Denied, now)?;
        } else {
            let approvals = tx.approvals(request_id)?;
            let mut approvers = BTreeMap::new();
            for a in &approvals {
                if let Some(row) = tx.identity_by_id(a.approver_id)? {
                    approvers.insert(a.approver_id, row);
                }
            }
            if requests::satisfied(&policy, &r, &subject, &approvals, &approvers) {
                // Guardrails again, on what the beneficiary holds now: they may have changed
                // while the request waited, and no approval overrides them.
                let facts = Holder::load(&*tx, subject.clone())?;
                let guard = if r.kind == RequestKind::Exception {
                    None
                } else {
                    Some(policy.hold(&facts.subject(), &r.entitlement, r.kind.origin())).filter(|d| !d.is_allow())
                };
                if let Some(d) = guard {
                    tx.finish_request(request_id, RequestState::Denied, now)?;
                    record(
                        tx.as_mut(),
                        Stamp::engine(now, version),
                        &subject_ref,
                        LedgerEvent::RequestBlocked(RequestBlocked {
                            request: request_id,
                            policies: d.policies.clone(),
                            reasons: d.reasons.clone(),
                        }),
                    )?;
                } else {
                    tx.finish_request(request_id, RequestState::Approved, now)?;
                    let change = requests::provision(tx.as_mut(), &policy, &subject, &r, now)?;
                    record(
                        tx.as_mut(),
                        Stamp::engine(now, version),
                        &subject_ref,
                        LedgerEvent::RequestGranted(RequestGranted { request: request_id, changes: change.recorded() }),
                    )?;
                }
            }
        }
        let row = tx.request(request_id)?.ok_or(EngineError::NotFound(request_id.to_string()))?;
        let view = request_view(&*tx, row)?;
        tx.commit()?;
        Ok(view)
    }

    /// A request as `caller` may see it: admins, approvers and auditors see every request; anyone
    /// else only the ones they made or that are for them (others are "not found", not
    /// "forbidden", so ids reveal nothing).
    pub fn request_for(&self, caller: &tenure_model::Principal, id: i64) -> Result<RequestView> {
        let view = self.request_detail(id)?;
        let me = caller.identity.to_string();
        let privileged = [RoleName::Admin, RoleName::Approver, RoleName::Auditor].iter().any(|r| caller.has(*r));
        if !privileged && view.requester != me && view.beneficiary != me {
            return Err(EngineError::NotFound(format!("request {id}")));
        }
        Ok(view)
    }

    pub fn request_detail(&self, id: i64) -> Result<RequestView> {
        let tx = self.store.read()?;
        let r = tx.request(id)?.ok_or_else(|| EngineError::NotFound(format!("request {id}")))?;
        request_view(&*tx, r)
    }

    /// Time-bound grants whose time is up: ended, with what that changes.
    pub(crate) fn expire_grants(&self, policy: &Bundle, now: OffsetDateTime) -> Result<Vec<String>> {
        let version = policy.version.as_str();
        let due = self.store.read()?.grants_expiring(now)?;
        let mut out = Vec::new();
        let ids: BTreeSet<i64> = due.iter().map(|g| g.identity_id).collect();
        for id in ids {
            let mut tx = self.store.write()?;
            let Some(row) = tx.identity_by_id(id)? else { continue };
            if row.state.has_left() {
                continue;
            }
            let ended: Vec<_> = tx
                .grants(id)?
                .into_iter()
                .filter(|g| g.state.is_wanted() && g.expires_at.is_some_and(|e| e <= now))
                .collect();
            if ended.is_empty() {
                continue;
            }
            let change = grants::apply_desired(tx.as_mut(), policy, &row, now).map_err(EngineError::from)?;
            let subject = row.reference.to_string();
            let event = GrantExpired {
                ended: ended
                    .iter()
                    .map(|g| EndedGrant {
                        entitlement: g.entitlement.clone(),
                        origin: g.origin.clone(),
                        request: g.request_id,
                        expired_at: g.expires_at.map(ts),
                    })
                    .collect(),
                changes: change.recorded(),
            };
            record(tx.as_mut(), Stamp::engine(now, version), &subject, LedgerEvent::GrantExpired(event))?;
            tx.commit()?;
            out.extend(ended.into_iter().map(|g| format!("{subject} {}", g.entitlement)));
        }
        Ok(out)
    }

    /// Requests undecided by their deadline: expired.
    pub(crate) fn expire_requests(&self, policy: &Bundle, now: OffsetDateTime) -> Result<Vec<i64>> {
        let overdue = self.store.read()?.requests_overdue(now)?;
        let mut out = Vec::new();
        if overdue.is_empty() {
            return Ok(out);
        }
        let mut tx = self.store.write()?;
        for r in overdue {
            let subject = tx.identity_by_id(r.beneficiary_id)?.map(|i| i.reference.to_string()).unwrap_or_default();
            if requests::expire_request(tx.as_mut(), &r, &subject, policy.version.as_str(), now)? {
                out.push(r.id);
            }
        }
        tx.commit()?;
        Ok(out)
    }
}
