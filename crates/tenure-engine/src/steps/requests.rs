//! Request steps inside a caller's transaction: who may approve, whether the approvals so far
//! satisfy the requirement, provisioning what a request asked for, and ending requests (by
//! their deadline, or because a party to them left).

use crate::ledger::{Stamp, record};
use crate::steps::grants::{self, Change};
use crate::{EngineError, Result};
use std::collections::{BTreeMap, BTreeSet};
use tenure_ledger::LedgerEvent;
use tenure_ledger::event::RequestExpired;
use tenure_model::rfc3339 as ts;
use tenure_model::{ApproverRole, GrantState, LifecycleState, RequestState};
use tenure_policy::{Bundle, Requirement};
use tenure_store::{ApprovalRow, IdentityRow, NewGrant, RequestRow, WriteTx};
use time::OffsetDateTime;

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

/// Tell each person who could answer pending request `r` (for `beneficiary`) in a role its
/// decision asks for that it waits for them; nobody the separation-of-duty rules would refuse.
pub(crate) fn notify_approvers(
    tx: &mut dyn WriteTx,
    policy: &Bundle,
    r: &RequestRow,
    beneficiary: &IdentityRow,
    now: OffsetDateTime,
) -> Result<()> {
    use crate::steps::notices::{self, Notice};
    use tenure_policy::notify::NoticeKind;
    if !notices::wanted(policy, NoticeKind::ApprovalPending) {
        return Ok(());
    }
    let need = requirement(&r.decision);
    let mut refs = BTreeSet::new();
    for role in &need.roles {
        match role {
            ApproverRole::Owner => refs.extend(beneficiary.owner.as_ref().map(ToString::to_string)),
            ApproverRole::Manager => refs.extend(beneficiary.attributes.get(&policy.access.manager_attribute).cloned()),
            ApproverRole::SystemOwner => {
                let system = policy.entitlement(&r.entitlement).and_then(|e| policy.systems.get(&e.system));
                refs.extend(system.and_then(|s| s.owner.clone()));
            }
            ApproverRole::Security => refs.extend(policy.access.security.iter().cloned()),
        }
    }
    let roles: Vec<&str> = need.roles.iter().map(|r| r.as_str()).collect();
    for reference in refs {
        let Ok(parsed) = reference.parse() else { continue };
        let Some(who) = tx.identity(&parsed)? else { continue };
        if refusal(&who, r).is_some() {
            continue;
        }
        let mine: Vec<&str> = eligible_roles(policy, &reference, beneficiary, &r.entitlement)
            .into_iter()
            .filter(|x| need.roles.contains(x))
            .map(|x| x.as_str())
            .collect();
        let notice = Notice {
            kind: NoticeKind::ApprovalPending,
            key: format!("request:{}:{reference}", r.id),
            to: Some(&who),
            subject: format!("Approval needed: {} for {}", r.entitlement, beneficiary.reference),
            text: format!(
                "Request {} asks for `{}` for {} ({}), as {}: \"{}\".\n\
                 It needs {} approval(s) from: {}; you may approve as {}. It expires unanswered at {}.\n\
                 `tenure requests show {}`, then `tenure requests approve {} --as {reference} --reason …` (or `deny`).",
                r.id,
                r.entitlement,
                beneficiary.reference,
                beneficiary.name,
                r.kind,
                r.intent,
                need.count,
                roles.join(", "),
                mine.join(", "),
                ts(r.decide_by),
                r.id,
                r.id
            ),
            data: serde_json::json!({
                "request": r.id,
                "entitlement": r.entitlement,
                "beneficiary": beneficiary.reference.to_string(),
                "kind": r.kind.as_str(),
                "roles": mine,
                "decide_by": ts(r.decide_by),
            }),
        };
        notices::notify(tx, policy, &notice, now)?;
    }
    Ok(())
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
pub(crate) fn requirement(decision: &serde_json::Value) -> Requirement {
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

/// Give the grant a request asked for, in the caller's transaction.
pub(crate) fn provision(
    tx: &mut dyn WriteTx,
    policy: &Bundle,
    beneficiary: &IdentityRow,
    r: &RequestRow,
    now: OffsetDateTime,
) -> Result<Change> {
    let Some(def) = policy.entitlement(&r.entitlement) else {
        return Err(EngineError::invalid("entitlement", format!("`{}` is no longer in the catalog", r.entitlement)));
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
    let mut change = grants::apply_desired(tx, policy, beneficiary, now).map_err(EngineError::from)?;
    change.added.insert(r.entitlement.clone());
    change.systems.insert(def.system.clone());
    grants::enqueue(tx, beneficiary.id, &change.systems, now)?;
    Ok(change)
}

pub(crate) fn expire_request(
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
