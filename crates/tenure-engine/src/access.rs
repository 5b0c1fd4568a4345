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
use crate::workflow::{self, Change, Facts};
use crate::{ACTOR_ENGINE, Engine, EngineError, Result};
use std::collections::{BTreeMap, BTreeSet};
use tenure_ledger::LedgerEvent;
use tenure_ledger::event::{
    Answer, DeletionStarted, EndedGrant, GrantExpired, LeaverStalled, RequestBlocked, RequestCreated, RequestExpired,
    RequestGranted, StateChange, Suspended,
};
use tenure_model::{
    ApproverRole, GrantOrigin, GrantState, IdentityRef, LifecycleState, Principal, RequestKind, RequestState, RoleName,
};
use tenure_policy::{Bundle, Decision, RequestFacts, Requirement, Verdict};
use tenure_proto::{ApprovalView, RequestView};
use tenure_store::{ApprovalRow, IdentityRow, NewGrant, NewRequest, ReadTx, RequestRow, WriteTx};
use time::{Duration, OffsetDateTime};

use crate::ingest::rfc3339 as ts;

/// A request as the engine takes it.
#[derive(Debug, Clone)]
pub struct AccessRequest {
    pub beneficiary: String,
    pub entitlement: String,
    pub kind: RequestKind,
    pub intent: String,
    pub duration: Option<Duration>,
}

fn invalid(field: &str, message: impl Into<String>) -> EngineError {
    EngineError::Invalid { field: field.to_owned(), message: message.into() }
}

fn identity(tx: &dyn ReadTx, field: &str, r: &str) -> Result<IdentityRow> {
    let parsed: IdentityRef = r.parse().map_err(|e| invalid(field, format!("{e}")))?;
    tx.identity(&parsed)?.ok_or_else(|| invalid(field, format!("no identity `{r}`")))
}

/// The roles `approver` may approve in for a request for `beneficiary` to `entitlement`.
pub(crate) fn eligible_roles(
    policy: &Bundle,
    approver: &str,
    beneficiary: &IdentityRow,
    entitlement: &str,
) -> BTreeSet<ApproverRole> {
    let mut roles = BTreeSet::new();
    if beneficiary.owner.as_ref().is_some_and(|o| o.to_string() == approver) {
        roles.insert(ApproverRole::Owner);
    }
    if beneficiary.attributes.get(&policy.access.manager_attribute).is_some_and(|m| m == approver) {
        roles.insert(ApproverRole::Manager);
    }
    let system = policy.entitlement(entitlement).and_then(|e| policy.systems.get(&e.system));
    if system.and_then(|s| s.owner.as_deref()) == Some(approver) {
        roles.insert(ApproverRole::SystemOwner);
    }
    if policy.access.security.contains(approver) {
        roles.insert(ApproverRole::Security);
    }
    roles
}

/// Why `approver` may not answer `request` at all, if it may not.
pub(crate) fn refusal(approver: &IdentityRow, request: &RequestRow) -> Option<String> {
    if !approver.kind.is_human() {
        return Some(format!("`{}` is a {}; a non-human never approves", approver.reference, approver.kind));
    }
    if approver.state != LifecycleState::Active {
        return Some(format!("`{}` is {}; only active people approve", approver.reference, approver.state));
    }
    if approver.id == request.requester_id {
        return Some(format!(
            "`{}` made request {}; nobody approves their own request",
            approver.reference, request.id
        ));
    }
    if approver.id == request.beneficiary_id {
        return Some(format!(
            "request {} is for `{}`; nobody approves a request for themselves",
            request.id, approver.reference
        ));
    }
    None
}

/// The requirement recorded with a request.
fn requirement(decision: &serde_json::Value) -> Requirement {
    let approval = decision.get("approval");
    let roles = approval
        .and_then(|a| a.get("roles"))
        .and_then(|r| r.as_array())
        .map(|r| r.iter().filter_map(|v| v.as_str()?.parse::<ApproverRole>().ok()).collect())
        .unwrap_or_default();
    let count = approval.and_then(|a| a.get("count")).and_then(serde_json::Value::as_u64).unwrap_or(1);
    Requirement { roles, count: u32::try_from(count).unwrap_or(u32::MAX) }
}

/// Whether the approvals given so far satisfy the requirement: each role has an approval from
/// someone eligible for it, and at least `count` distinct people approved. Only approvals that
/// still count are considered (see [`refusal`]); `approvers` maps each approver id to its
/// current row.
pub(crate) fn satisfied(
    policy: &Bundle,
    request: &RequestRow,
    beneficiary: &IdentityRow,
    approvals: &[ApprovalRow],
    approvers: &BTreeMap<i64, IdentityRow>,
) -> bool {
    let need = requirement(&request.decision);
    let mut people = BTreeSet::new();
    let mut covered = BTreeSet::new();
    for a in approvals.iter().filter(|a| a.approve && a.at < request.decide_by) {
        let Some(who) = approvers.get(&a.approver_id) else { continue };
        if refusal(who, request).is_some() {
            continue;
        }
        let roles = eligible_roles(policy, &who.reference.to_string(), beneficiary, &request.entitlement);
        let useful: BTreeSet<ApproverRole> = roles.intersection(&need.roles).copied().collect();
        if useful.is_empty() {
            continue;
        }
        people.insert(a.approver_id);
        covered.extend(useful);
    }
    need.roles.is_subset(&covered) && people.len() >= need.count as usize
}

fn request_view(tx: &dyn ReadTx, r: RequestRow) -> Result<RequestView> {
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
        decision: r.decision,
        waives: r.waives,
        approvals,
        created_at: ts(r.created_at),
        decide_by: ts(r.decide_by),
        decided_at: r.decided_at.map(ts),
    })
}

/// Give the grant a request asked for, in the caller's transaction.
fn provision(
    tx: &mut dyn WriteTx,
    policy: &Bundle,
    beneficiary: &IdentityRow,
    r: &RequestRow,
    now: OffsetDateTime,
) -> Result<Change> {
    let Some(def) = policy.entitlement(&r.entitlement) else {
        return Err(invalid("entitlement", format!("`{}` is no longer in the catalog", r.entitlement)));
    };
    let origin = r.kind.origin();
    tx.put_grant(&NewGrant {
        identity_id: beneficiary.id,
        entitlement: &r.entitlement,
        system: &def.system,
        state: GrantState::Desired,
        origin: origin.as_str(),
        policy_version: policy.version.as_str(),
        at: now,
        expires_at: r.duration.map(|d| now + d),
        request_id: Some(r.id),
    })?;
    // The whole picture again: accounts follow, and guardrails see the new grant with the rest.
    let mut change = workflow::apply_desired(tx, policy, beneficiary, now).map_err(EngineError::from)?;
    change.added.insert(r.entitlement.clone());
    change.systems.insert(def.system.clone());
    workflow::enqueue(tx, beneficiary.id, &change.systems, now)?;
    Ok(change)
}

/// What the clock ended.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Expired {
    /// `identity entitlement` of each grant that ran out.
    pub grants: Vec<String>,
    /// Ids of requests that expired undecided.
    pub requests: Vec<i64>,
    /// NHIs suspended because nobody took them over by their deadline.
    pub suspended: Vec<String>,
    /// Closed leavers whose grace period ended: their accounts are being deleted.
    pub deleting: Vec<String>,
    /// Dynamic logins ended and retired signing keys unpublished.
    pub credentials: usize,
    /// Leavers found `leaving` with no job carrying their closure forward: re-queued, with a
    /// `leaver.stalled` ledger entry and an open `leaver_stalled` finding.
    pub stalled: Vec<String>,
}

impl Engine {
    /// Make a request. Policy decides at once: a denied request is recorded as denied, an
    /// allowed one is granted in the same transaction, and one that needs approval waits
    /// (until its deadline) for the approvers the decision names.
    pub fn request(&self, actor: &Principal, req: &AccessRequest) -> Result<RequestView> {
        let policy = self.current_policy()?;
        let now = self.clock.now();
        let mut tx = self.store.write()?;
        let requester = tx.identity(&actor.identity)?.ok_or_else(|| invalid("caller", "unknown identity"))?;
        let beneficiary = identity(&*tx, "beneficiary", &req.beneficiary)?;
        let Some(def) = policy.entitlement(&req.entitlement) else {
            return Err(invalid("entitlement", format!("unknown entitlement `{}`", req.entitlement)));
        };
        for (who, field) in [(&requester, "caller"), (&beneficiary, "beneficiary")] {
            if who.state != LifecycleState::Active {
                return Err(invalid(field, format!("`{}` is {}; only active identities", who.reference, who.state)));
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
                Some(d) if d > max => Err(invalid(
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
            return Err(invalid("duration_minutes", "expected a positive number of minutes"));
        }
        if let Some(max) = def.max_duration {
            limit(max, &format!("`{}`", def.id))?;
        }
        match req.kind {
            RequestKind::Access => {}
            RequestKind::Jit => {
                if !def.privileged {
                    return Err(invalid("kind", format!("`{}` is not privileged; make an access request", def.id)));
                }
                if req.duration.is_none() {
                    return Err(invalid("duration_minutes", "a JIT elevation needs a duration"));
                }
                limit(policy.access.jit_max, "JIT")?;
            }
            RequestKind::Exception => {
                if req.duration.is_none() {
                    return Err(invalid("duration_minutes", "an exception needs a duration"));
                }
                limit(policy.access.exception_max, "exception")?;
            }
        }
        if matches!(req.kind, RequestKind::Jit | RequestKind::Exception) && req.intent.trim().is_empty() {
            return Err(invalid("intent", "a JIT elevation or exception needs a declared intent"));
        }
        let facts = Facts::load(&*tx, beneficiary.clone())?;
        if facts.holding.contains(&req.entitlement) {
            return Err(invalid(
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

        let requester_facts = Facts::load(&*tx, requester.clone())?;
        let mut related = Vec::new();
        for r in [
            beneficiary.owner.clone(),
            beneficiary.attributes.get(&policy.access.manager_attribute).and_then(|m| m.parse().ok()),
        ]
        .into_iter()
        .flatten()
        {
            if let Some(row) = tx.identity(&r)? {
                related.push(Facts::load(&*tx, row)?);
            }
        }
        let (decision, waives) = if req.kind == RequestKind::Exception {
            let guard = policy.hold(&facts.subject(), &req.entitlement, GrantOrigin::Exception);
            if guard.is_allow() {
                return Err(invalid(
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
                related: related.iter().map(Facts::subject).collect(),
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
        let decision_json = serde_json::to_value(&decision).map_err(|e| EngineError::Task(e.to_string()))?;
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
        }
        if state == RequestState::Approved {
            let row = tx.request(id)?.ok_or(EngineError::NotFound(id.to_string()))?;
            let change = provision(tx.as_mut(), &policy, &beneficiary, &row, now)?;
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
            return Err(invalid("reason", "an answer needs a reason"));
        }
        let policy = self.current_policy()?;
        let now = self.clock.now();
        let mut tx = self.store.write()?;
        let r = tx.request(request_id)?.ok_or_else(|| EngineError::NotFound(format!("request {request_id}")))?;
        let who = tx.identity(approver)?.ok_or_else(|| invalid("caller", "unknown identity"))?;
        if r.state != RequestState::Pending {
            return Err(EngineError::Conflict(format!("request {request_id} is {}, not pending", r.state)));
        }
        let subject =
            tx.identity_by_id(r.beneficiary_id)?.ok_or(EngineError::NotFound(r.beneficiary_id.to_string()))?;
        if now >= r.decide_by {
            expire_request(tx.as_mut(), &r, &subject.reference.to_string(), policy.version.as_str(), now)?;
            tx.commit()?;
            return Err(EngineError::Conflict(format!("request {request_id} expired at {}", ts(r.decide_by))));
        }
        if let Some(why) = refusal(&who, &r) {
            return Err(EngineError::Refused(why));
        }
        let need = requirement(&r.decision);
        let roles = eligible_roles(&policy, &who.reference.to_string(), &subject, &r.entitlement);
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
            if satisfied(&policy, &r, &subject, &approvals, &approvers) {
                // Guardrails again, on what the beneficiary holds now: they may have changed
                // while the request waited, and no approval overrides them.
                let facts = Facts::load(&*tx, subject.clone())?;
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
                    let change = provision(tx.as_mut(), &policy, &subject, &r, now)?;
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

    pub fn list_requests(&self, state: Option<RequestState>) -> Result<Vec<RequestView>> {
        let tx = self.store.read()?;
        tx.requests(state)?.into_iter().map(|r| request_view(&*tx, r)).collect()
    }

    /// End what the clock ended: grants past their expiry are revoked (and verified by the
    /// workers like any revocation), undecided requests past their deadline expire. Each
    /// identity is handled in its own transaction.
    /// The safety net under leaver closure: a leaver `leaving` for longer than the policy's
    /// `leaver_stalled_minutes` with no pending or running job has nothing carrying it to
    /// `closed` (a dead-lettered job, or a bug): its dead jobs are put back, every system not
    /// yet verified off gets a job, and an alert is raised (log, ledger entry, finding).
    fn requeue_stalled_leavers(&self, policy: &Bundle, now: OffsetDateTime) -> Result<Vec<String>> {
        let stalled = self.store.read()?.leavers_stalled(now - policy.lifecycle.leaver_stalled_after)?;
        let mut out = Vec::new();
        for row in stalled {
            let mut tx = self.store.write()?;
            let Some(row) = tx.identity_by_id(row.id)?.filter(|r| r.state == LifecycleState::Leaving) else { continue };
            let retried = tx.retry_dead_jobs(Some(row.id), now)?;
            let mut systems: BTreeSet<String> =
                tx.accounts(row.id)?.into_iter().filter(|a| !a.state.is_off_verified()).map(|a| a.system).collect();
            systems.extend(
                tx.grants(row.id)?.into_iter().filter(|g| g.state != GrantState::RevocationVerified).map(|g| g.system),
            );
            workflow::enqueue(tx.as_mut(), row.id, &systems, now)?;
            let credentials =
                !tx.credentials_to_verify(row.id)?.is_empty() || !tx.credentials_live(row.id, now)?.is_empty();
            if credentials {
                tx.enqueue(&tenure_store::NewJob {
                    kind: tenure_store::JobKind::Credentials,
                    identity_id: row.id,
                    system: crate::creds::BROKER,
                    run_at: now,
                })?;
            }
            let subject = row.reference.to_string();
            let version = policy.version.as_str();
            let stalled = LeaverStalled {
                leaving_since: ts(row.updated_at),
                retried_jobs: retried,
                systems: systems.iter().cloned().collect(),
                credentials,
            };
            let detail = serde_json::to_value(&stalled).map_err(|e| EngineError::Task(e.to_string()))?;
            tx.open_finding(&tenure_store::NewFinding {
                identity_id: Some(row.id),
                kind: "leaver_stalled",
                entitlement: "",
                detail: &detail,
                policy_version: version,
                at: now,
            })?;
            // The clock looks again only a whole period from now: a job that dies at once (an
            // account tenure may not touch) must not make this a loop of retries and alerts.
            tx.set_identity_state(row.id, LifecycleState::Leaving, now)?;
            record(tx.as_mut(), Stamp::engine(now, version), &subject, LedgerEvent::LeaverStalled(stalled))?;
            if systems.is_empty() && !credentials {
                crate::worker::advance_lifecycle(tx.as_mut(), row.id, now, version)?;
            }
            tx.commit()?;
            tracing::error!(leaver = %subject, since = %ts(row.updated_at), ?systems, "leaver stalled with no job carrying its closure: re-queued");
            out.push(subject);
        }
        Ok(out)
    }

    pub fn expire(&self) -> Result<Expired> {
        let now = self.clock.now();
        let mut out = Expired::default();
        let policy = match self.current_policy() {
            Ok(p) => p,
            Err(EngineError::NoPolicy) => return Ok(out),
            Err(e) => return Err(e),
        };
        out.credentials = self.expire_credentials(&policy)?;
        out.stalled = self.requeue_stalled_leavers(&policy, now)?;
        let (due, overdue, ownerless, deletions) = {
            let tx = self.store.read()?;
            (
                tx.grants_expiring(now)?,
                tx.requests_overdue(now)?,
                tx.owners_overdue(now)?,
                tx.deletions_due(now - policy.lifecycle.leaver_grace)?,
            )
        };
        if due.is_empty() && overdue.is_empty() && ownerless.is_empty() && deletions.is_empty() {
            return Ok(out);
        }
        let version = policy.version.as_str();
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
            let change = workflow::apply_desired(tx.as_mut(), &policy, &row, now).map_err(EngineError::from)?;
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
            out.grants.extend(ended.into_iter().map(|g| format!("{subject} {}", g.entitlement)));
        }
        for nhi in ownerless {
            let mut tx = self.store.write()?;
            let Some(mut row) = tx.identity_by_id(nhi.id)? else { continue };
            let Some(deadline) = row.owner_deadline.filter(|d| *d <= now) else { continue };
            if !row.state.is_current() {
                continue;
            }
            let from = row.state;
            // A pending NHI is not yet in use; it is suspended once active, on a later tick.
            let Ok(to) = row.state.transition(LifecycleState::Suspended) else { continue };
            row.state = to;
            row.updated_at = now;
            tx.update_identity(&row)?;
            // Suspended: every account disabled (memberships kept, so a new owner can resume it).
            let mut change = Change::default();
            workflow::accounts_follow(tx.as_mut(), &policy, &row, &Default::default(), &mut change, now)?;
            workflow::enqueue(tx.as_mut(), row.id, &change.systems, now)?;
            // Its credentials end with it (a new owner asks for new ones).
            change.credentials =
                crate::creds::revoke_live(tx.as_mut(), &row, "suspended", version, ACTOR_ENGINE, now)?.ids;
            let subject = row.reference.to_string();
            let event = Suspended {
                state: StateChange::new(from, row.state),
                because: "nobody took it over by its deadline".into(),
                deadline: ts(deadline),
                changes: change.recorded(),
            };
            record(tx.as_mut(), Stamp::engine(now, version), &subject, LedgerEvent::Suspended(event))?;
            tx.commit()?;
            out.suspended.push(subject);
        }
        for id in deletions {
            let mut tx = self.store.write()?;
            let Some(row) = tx.identity_by_id(id)? else { continue };
            let mut systems = BTreeSet::new();
            for a in tx.accounts(id)?.into_iter().filter(|a| a.state == tenure_model::AccountState::DisableVerified) {
                tx.put_account(id, &a.system, &a.name, tenure_model::AccountState::Deleting, now)?;
                systems.insert(a.system);
            }
            workflow::enqueue(tx.as_mut(), id, &systems, now)?;
            let subject = row.reference.to_string();
            let event = DeletionStarted {
                grace_days: policy.lifecycle.leaver_grace.whole_days(),
                systems: systems.into_iter().collect(),
            };
            record(tx.as_mut(), Stamp::engine(now, version), &subject, LedgerEvent::DeletionStarted(event))?;
            tx.commit()?;
            out.deleting.push(subject);
        }
        if !overdue.is_empty() {
            let mut tx = self.store.write()?;
            for r in overdue {
                let subject = tx.identity_by_id(r.beneficiary_id)?.map(|i| i.reference.to_string()).unwrap_or_default();
                if expire_request(tx.as_mut(), &r, &subject, version, now)? {
                    out.requests.push(r.id);
                }
            }
            tx.commit()?;
        }
        Ok(out)
    }
}

fn expire_request(
    tx: &mut dyn WriteTx,
    r: &RequestRow,
    subject: &str,
    version: &str,
    now: OffsetDateTime,
) -> Result<bool> {
    if !tx.finish_request(r.id, RequestState::Expired, now)? {
        return Ok(false);
    }
    let event = RequestExpired { request: r.id, decide_by: Some(ts(r.decide_by)), because: None };
    record(tx, Stamp::engine(now, version), subject, LedgerEvent::RequestExpired(event))?;
    Ok(true)
}

/// A leaver's pending requests (as beneficiary or requester) end with it.
pub(crate) fn end_requests_of(
    tx: &mut dyn WriteTx,
    identity_id: i64,
    subject: &str,
    version: &str,
    now: OffsetDateTime,
) -> Result<(), tenure_store::StoreError> {
    // Indexed: this runs for every leaver event.
    for r in tx.pending_requests_of(identity_id)? {
        if tx.finish_request(r.id, RequestState::Expired, now)? {
            let event = RequestExpired { request: r.id, decide_by: None, because: Some("a party to it left".into()) };
            record(tx, Stamp::engine(now, version), subject, LedgerEvent::RequestExpired(event))?;
        }
    }
    Ok(())
}
