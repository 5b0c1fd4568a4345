//! Access reviews (docs/reviews.md): a campaign from the policy bundle snapshots the grants in
//! its scope, assigns each to its reviewers for the first stage, and records every decision in
//! the ledger. A revoke goes through the normal revoke path (the grant `revoking`, a sync job)
//! and the item reads `revoked (verified)` only once a read-back verified it. The clock sends
//! reminders, applies the no-answer default at the deadline — or pauses the campaign for an
//! admin when that default would revoke past the threshold — and closes a campaign when every
//! revocation is verified. [`Engine::review_report`] signs what the campaign did, with the
//! ledger entries behind it.
//!
//! Invariants kept here:
//! - nobody decides an item about their own access (the reviewer rules skip them, and a
//!   decision by them is refused whoever assigned them);
//! - only an active human assigned to the item at its current stage decides it, once per stage;
//! - a revoke and a privileged keep carry a reason;
//! - nothing is revoked by default past `max_no_answer_revokes` without a person's release;
//! - a decision, its ledger entry and the revocation it causes commit together.

pub mod attest;
mod clock;
mod report;
#[cfg(test)]
mod tests;

use crate::ledger::{Stamp, record, record_seq};
use crate::steps::grants;
use crate::steps::notices::{self, Notice};
use crate::{Engine, EngineError, Result};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use tenure_ledger::LedgerEvent;
use tenure_ledger::event::{Changes, ReviewDecided, ReviewReleased, ReviewStarted};
use tenure_model::rfc3339 as ts;
use tenure_model::{ApproverRole, GrantOrigin, GrantState, IdentityRef, LifecycleState, Principal, RoleName};
use tenure_policy::Bundle;
use tenure_policy::notify::NoticeKind;
use tenure_policy::reviews::{Campaign, NoAnswer, Stage, Trigger};
use tenure_proto::{CampaignView, ReviewDecisionView, ReviewItemView};
use tenure_store::StoreError;
use tenure_store::{
    CampaignRow, GrantRow, IdentityRow, NewCampaign, NewReviewItem, ReadTx, ReviewDecisionRow, ReviewItemQuery,
    ReviewItemRow, WriteTx,
};
use time::{Duration, OffsetDateTime};

/// The identity attribute whose holders are an identity's peers in a recommendation.
pub const PEER_ATTRIBUTE: &str = "department";
/// A grant older than this that few peers hold is recommended for revocation.
const STALE_AFTER: Duration = Duration::days(90);
/// "Few": under this share of peers.
const FEW_PEERS_PERCENT: u64 = 10;

/// `keep` or `revoke`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Keep,
    Revoke,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Keep => "keep",
            Self::Revoke => "revoke",
        }
    }
}

impl std::str::FromStr for Verdict {
    type Err = EngineError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "keep" => Ok(Self::Keep),
            "revoke" => Ok(Self::Revoke),
            other => Err(EngineError::invalid("decision", format!("expected keep or revoke, found `{other}`"))),
        }
    }
}

fn subject_of(campaign: i64) -> String {
    format!("review:{campaign}")
}

/// The references a stage names for `identity`'s grant of `entitlement`: its roles resolved
/// and its named reviewers (before any is checked). `system` names the system of an item that
/// is an account rather than an entitlement (its owner is the `system-owner`).
fn candidates(
    policy: &Bundle,
    stage: &Stage,
    identity: &IdentityRow,
    entitlement: &str,
    system: Option<&str>,
) -> Vec<String> {
    let mut refs: Vec<String> = Vec::new();
    for role in &stage.roles {
        match role {
            ApproverRole::Manager => {
                refs.extend(identity.attributes.get(&policy.access.manager_attribute).cloned());
            }
            ApproverRole::Owner => refs.extend(identity.owner.as_ref().map(ToString::to_string)),
            ApproverRole::SystemOwner => refs.extend(
                system
                    .or_else(|| policy.entitlement(entitlement).map(|e| e.system.as_str()))
                    .and_then(|s| policy.systems.get(s))
                    .and_then(|s| s.owner.clone()),
            ),
            ApproverRole::Security => refs.extend(policy.access.security.iter().cloned()),
        }
    }
    refs.extend(stage.named.iter().cloned());
    refs
}

/// Who reviews `identity`'s grant of `entitlement` (or, with `system`, its account of that
/// name there) at `stage`: the stage's roles and named reviewers that are active humans other
/// than the identity itself, or else its fallback. `people` finds a reference's id and whether
/// it is an active human.
fn reviewers_for(
    policy: &Bundle,
    stage: &Stage,
    identity: &IdentityRow,
    (entitlement, system): (&str, Option<&str>),
    people: &dyn Fn(&str) -> Option<(i64, bool)>,
) -> Vec<i64> {
    let me = identity.reference.to_string();
    let pick = |refs: &[String]| -> Vec<i64> {
        let mut ids: Vec<i64> = refs
            .iter()
            .filter(|r| **r != me)
            .filter_map(|r| people(r))
            .filter(|(_, usable)| *usable)
            .map(|(id, _)| id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    };
    let chosen = pick(&candidates(policy, stage, identity, entitlement, system));
    if chosen.is_empty() { pick(&stage.fallback) } else { chosen }
}

/// Why `who` may not decide anything at all, if it may not.
fn refusal(who: &IdentityRow, item: &ReviewItemRow) -> Option<String> {
    if !who.kind.is_human() {
        return Some(format!("`{}` is a {}; a non-human never reviews", who.reference, who.kind));
    }
    if who.state != LifecycleState::Active {
        return Some(format!("`{}` is {}; only active people review", who.reference, who.state));
    }
    if who.id == item.identity_id {
        return Some(format!("item {} is `{}`'s own access; nobody reviews their own access", item.id, who.reference));
    }
    None
}

/// What the no-answer default does to an undecided item.
fn default_for(campaign: Option<&Campaign>, item: &ReviewItemRow) -> Verdict {
    let birthright = item.origin == GrantOrigin::Birthright.as_str();
    let verdict = match campaign.map(|c| c.no_answer) {
        Some(NoAnswer::Revoke) => Verdict::Revoke,
        Some(NoAnswer::Recommend) if item.recommendation == "revoke" => Verdict::Revoke,
        _ => Verdict::Keep,
    };
    // A template would give birthright straight back: policy, not a default, changes it.
    if birthright { Verdict::Keep } else { verdict }
}

/// Peers of one identity: those sharing its [`PEER_ATTRIBUTE`] value.
#[derive(Default)]
struct Peers {
    /// Per attribute value: how many identities.
    members: HashMap<String, u64>,
    /// Per (entitlement, attribute value): how many of them hold it.
    holding: HashMap<(String, String), u64>,
}

impl Engine {
    /// Start the campaign `[reviews.NAME]` of the deployed bundle: every grant in its scope
    /// snapshotted as an item and assigned to its first-stage reviewers, with a recommendation
    /// from the evidence tenure has; one `review.started` entry; all in one transaction.
    pub fn start_review(&self, actor: &Principal, name: &str) -> Result<CampaignView> {
        let policy = self.current_policy()?;
        let def = policy.reviews.get(name).ok_or_else(|| {
            let known: Vec<&str> = policy.reviews.keys().map(String::as_str).collect();
            EngineError::invalid(
                "name",
                format!(
                    "no campaign `{name}` in policy {} (it has: {})",
                    policy.version.short(),
                    if known.is_empty() { "none".to_owned() } else { known.join(", ") }
                ),
            )
        })?;
        if let Some(t) = def.trigger {
            return Err(EngineError::Refused(format!(
                "campaign `{name}` is a micro-review started by its trigger ({}), one identity at a time",
                t.as_str()
            )));
        }
        let now = self.clock.now();
        let mut tx = self.store.write()?;
        if let Some(last) = tx.last_campaign(name)?
            && last.state != "closed"
        {
            return Err(EngineError::Conflict(format!(
                "campaign {} of `{name}` is still {}; one runs at a time",
                last.id, last.state
            )));
        }
        let id = snapshot(tx.as_mut(), &policy, def, &actor.actor(), now, None)?
            .ok_or_else(|| EngineError::invalid("name", format!("campaign `{name}` has no stage")))?;
        let view = campaign_view(&*tx, tx.campaign(id)?.ok_or(EngineError::NotFound(format!("review {id}")))?)?;
        tx.commit()?;
        Ok(view)
    }

    /// A reviewer's decision on one item (the same rules as approvals: nobody reviews their own
    /// access; only an active human assigned at the item's stage decides, once). A revoke is
    /// carried out in the same transaction; a keep at an earlier stage passes the item on.
    pub fn decide_review(
        &self,
        reviewer: &IdentityRef,
        campaign: i64,
        item: i64,
        decision: Verdict,
        reason: &str,
    ) -> Result<ReviewItemView> {
        let mut views = self.decide_reviews(reviewer, campaign, &[(item, decision, reason.to_owned())])?;
        views.pop().ok_or_else(|| EngineError::NotFound(format!("item {item}")))
    }

    /// Several decisions by one reviewer, in one transaction: all apply or none does.
    pub fn decide_reviews(
        &self,
        reviewer: &IdentityRef,
        campaign: i64,
        decisions: &[(i64, Verdict, String)],
    ) -> Result<Vec<ReviewItemView>> {
        let policy = self.current_policy()?;
        let now = self.clock.now();
        let mut tx = self.store.write()?;
        let c = tx.campaign(campaign)?.ok_or_else(|| EngineError::NotFound(format!("review {campaign}")))?;
        if c.state != "open" {
            return Err(EngineError::Conflict(format!("review {campaign} is {}, not open", c.state)));
        }
        if now >= c.deadline {
            return Err(EngineError::Conflict(format!(
                "review {campaign}'s deadline passed at {}; its no-answer default applies",
                ts(c.deadline)
            )));
        }
        let who = tx.identity(reviewer)?.ok_or_else(|| EngineError::invalid("reviewer", "unknown identity"))?;
        let def = policy.reviews.get(&c.name);
        let mut touched = Vec::new();
        for (n, (item_id, decision, reason)) in decisions.iter().enumerate() {
            let at = if decisions.len() > 1 { format!("decisions[{n}]: ") } else { String::new() };
            let item = tx
                .review_item(*item_id)?
                .filter(|i| i.campaign_id == campaign)
                .ok_or_else(|| EngineError::NotFound(format!("{at}item {item_id} of review {campaign}")))?;
            if let Some(o) = &item.outcome {
                return Err(EngineError::Conflict(format!("{at}item {item_id} was decided already: {o}")));
            }
            if let Some(why) = refusal(&who, &item) {
                return Err(EngineError::Refused(format!("{at}{why}")));
            }
            if !tx.item_reviewers(item.id, item.stage)?.contains(&who.id) {
                return Err(EngineError::Refused(format!(
                    "{at}`{}` is not a reviewer of item {item_id} at stage {}",
                    who.reference,
                    item.stage + 1
                )));
            }
            let reason = reason.trim();
            tenure_model::text::check(reason, tenure_model::text::MAX_NAME, false)
                .map_err(|e| EngineError::invalid("reason", format!("{at}{e}")))?;
            if reason.is_empty() && (*decision == Verdict::Revoke || item.privileged) {
                return Err(EngineError::invalid(
                    "reason",
                    format!(
                        "{at}{} needs a reason",
                        if *decision == Verdict::Revoke { "a revoke" } else { "keeping privileged access" }
                    ),
                ));
            }
            if *decision == Verdict::Revoke && item.origin == GrantOrigin::Birthright.as_str() {
                return Err(EngineError::Refused(format!(
                    "{at}item {item_id} is birthright: a template gives `{}` while the identity matches it; change the template or the identity's attributes",
                    item.entitlement
                )));
            }
            let actor = who.reference.to_string();
            decide_in(tx.as_mut(), &policy, &c, def, &item, *decision, reason, Some((who.id, &actor)), now)?;
            touched.push(item.id);
        }
        finish_if_decided(tx.as_mut(), &c, now)?;
        let mut views = Vec::with_capacity(touched.len());
        for id in touched {
            let item = tx.review_item(id)?.ok_or(EngineError::NotFound(format!("item {id}")))?;
            views.push(item_view(&*tx, item)?);
        }
        tx.commit()?;
        Ok(views)
    }

    /// Let a paused campaign's undecided items take its no-answer default (`apply_default`), or
    /// keep them all.
    pub fn release_review(
        &self,
        actor: &Principal,
        campaign: i64,
        apply_default: bool,
        reason: &str,
    ) -> Result<CampaignView> {
        if reason.trim().is_empty() {
            return Err(EngineError::invalid("reason", "a release needs a reason"));
        }
        tenure_model::text::check(reason.trim(), tenure_model::text::MAX_NAME, false)
            .map_err(|e| EngineError::invalid("reason", e.to_string()))?;
        let policy = self.current_policy()?;
        let now = self.clock.now();
        let mut tx = self.store.write()?;
        let c = tx.campaign(campaign)?.ok_or_else(|| EngineError::NotFound(format!("review {campaign}")))?;
        if c.state != "paused" {
            return Err(EngineError::Conflict(format!("review {campaign} is {}, not paused", c.state)));
        }
        let apply = if apply_default { "default" } else { "keep" };
        record(
            tx.as_mut(),
            Stamp::new(now, &actor.actor(), policy.version.as_str()),
            &subject_of(campaign),
            LedgerEvent::ReviewReleased(ReviewReleased {
                campaign,
                apply: apply.to_owned(),
                reason: reason.trim().to_owned(),
            }),
        )?;
        let def = if apply_default { policy.reviews.get(&c.name) } else { None };
        apply_defaults(tx.as_mut(), &policy, &c, def, now, apply_default)?;
        tx.set_campaign_state(campaign, "paused", "open", now)?;
        finish_if_decided(tx.as_mut(), &c, now)?;
        let view = campaign_view(&*tx, tx.campaign(campaign)?.ok_or(EngineError::NotFound(campaign.to_string()))?)?;
        tx.commit()?;
        Ok(view)
    }

    /// Campaigns, newest first, as `caller` may see them: admins and auditors every campaign,
    /// a reviewer those with items assigned to them.
    pub fn reviews(&self, caller: &Principal) -> Result<Vec<CampaignView>> {
        let tx = self.store.read()?;
        let me = self.caller_id(&*tx, caller)?;
        let mut out = Vec::new();
        for c in tx.campaigns(None)? {
            if me.is_some_and(|me| {
                tx.review_items(c.id, &ReviewItemQuery { reviewer: Some(me), undecided: false }, None, 1)
                    .map(|v| v.is_empty())
                    .unwrap_or(true)
            }) {
                continue;
            }
            out.push(campaign_view(&*tx, c)?);
        }
        Ok(out)
    }

    /// One campaign and a page of its items, as `caller` may see them (a reviewer: its own
    /// items; others are not found).
    pub fn review(
        &self,
        caller: &Principal,
        id: i64,
        undecided: bool,
        after: Option<i64>,
        limit: usize,
    ) -> Result<(CampaignView, Vec<ReviewItemView>)> {
        let tx = self.store.read()?;
        let me = self.caller_id(&*tx, caller)?;
        let c = tx.campaign(id)?.ok_or_else(|| EngineError::NotFound(format!("review {id}")))?;
        let q = ReviewItemQuery { reviewer: me, undecided };
        let items = tx.review_items(id, &q, after, limit)?;
        if me.is_some() && items.is_empty() && after.is_none() && !undecided {
            return Err(EngineError::NotFound(format!("review {id}")));
        }
        let view = campaign_view(&*tx, c)?;
        let items = items.into_iter().map(|i| item_view(&*tx, i)).collect::<Result<_>>()?;
        Ok((view, items))
    }

    /// `None` for those who see every campaign (admins, auditors, the operator); the caller's
    /// identity id otherwise.
    fn caller_id(&self, tx: &dyn ReadTx, caller: &Principal) -> Result<Option<i64>> {
        if caller.is_operator() || caller.has(RoleName::Admin) || caller.has(RoleName::Auditor) {
            return Ok(None);
        }
        Ok(Some(tx.identity(&caller.identity)?.map_or(-1, |i| i.id)))
    }
}

/// Whether `i` may review at all: an active human.
fn may_review(i: &IdentityRow) -> bool {
    i.kind.is_human() && i.state == LifecycleState::Active
}

/// The identities `refs` name, by reference: id, and whether each may review ([`may_review`]).
fn people_named(
    tx: &dyn ReadTx,
    refs: impl IntoIterator<Item = String>,
) -> Result<HashMap<String, (i64, bool)>, StoreError> {
    let mut out = HashMap::new();
    for r in refs {
        if let Some(row) = r.parse::<IdentityRef>().ok().map(|id| tx.identity(&id)).transpose()?.flatten() {
            out.insert(r, (row.id, may_review(&row)));
        }
    }
    Ok(out)
}

/// Snapshot a campaign: every grant in `def`'s scope (of `only` when given: a micro-review of
/// one identity) becomes an item assigned to its first-stage reviewers, with one
/// `review.started` entry. A micro-review with nothing in scope starts no campaign (`None`).
fn snapshot(
    tx: &mut dyn WriteTx,
    policy: &Bundle,
    def: &Campaign,
    actor: &str,
    now: OffsetDateTime,
    only: Option<&IdentityRow>,
) -> Result<Option<i64>, StoreError> {
    let Some(first) = def.stages.first() else { return Ok(None) };
    let (identities, grants, people, peers) = match only {
        Some(identity) => {
            let grants: BTreeMap<i64, Vec<GrantRow>> = [(identity.id, tx.grants(identity.id)?)].into();
            // Only the first stage is assigned now; later ones are resolved when an item gets there.
            let mut refs = first.fallback.clone();
            for g in grants.values().flatten() {
                refs.extend(candidates(policy, first, identity, &g.entitlement, None));
            }
            (vec![identity.clone()], grants, people_named(&*tx, refs)?, Peers::default())
        }
        None => {
            let identities = tx.identities()?;
            let grants = tx.all_grants()?;
            let mut people: HashMap<String, (i64, bool)> = HashMap::with_capacity(identities.len());
            let mut peers = Peers::default();
            for i in &identities {
                people.insert(i.reference.to_string(), (i.id, may_review(i)));
                if let Some(v) = i.attributes.get(PEER_ATTRIBUTE) {
                    *peers.members.entry(v.clone()).or_default() += 1;
                    for g in grants.get(&i.id).into_iter().flatten().filter(|g| g.state.is_wanted()) {
                        *peers.holding.entry((g.entitlement.clone(), v.clone())).or_default() += 1;
                    }
                }
            }
            (identities, grants, people, peers)
        }
    };
    let in_scope: Vec<(&IdentityRow, &GrantRow, &tenure_policy::EntitlementDef, GrantOrigin)> = identities
        .iter()
        .filter(|i| !i.state.has_left())
        .flat_map(|i| grants.get(&i.id).into_iter().flatten().map(move |g| (i, g)))
        .filter(|(_, g)| g.state.is_wanted())
        .filter_map(|(i, g)| {
            let ent = policy.entitlement(&g.entitlement)?;
            let origin = g.origin.parse::<GrantOrigin>().ok()?;
            def.scope.covers(ent, origin, i.kind, &i.attributes).then_some((i, g, ent, origin))
        })
        .collect();
    if only.is_some() && in_scope.is_empty() {
        return Ok(None);
    }
    let decided: HashMap<i64, OffsetDateTime> = if in_scope.iter().any(|(_, g, _, _)| g.request_id.is_some()) {
        tx.requests(Some(tenure_model::RequestState::Approved))?
            .into_iter()
            .filter_map(|r| r.decided_at.map(|d| (r.id, d)))
            .collect()
    } else {
        HashMap::new()
    };
    let deadline = now + def.duration;
    let stages = i64::try_from(def.stages.len()).unwrap_or(1);
    let id = tx.insert_campaign(&NewCampaign {
        name: &def.name,
        policy_version: policy.version.as_str(),
        stages,
        started_at: now,
        deadline,
        started_by: actor,
    })?;
    let (mut items, mut unassigned) = (0u64, 0u64);
    let mut assigned: BTreeMap<i64, u64> = BTreeMap::new();
    type LastUse = (Option<(OffsetDateTime, Value)>, Option<Option<OffsetDateTime>>);
    let mut last_use: HashMap<i64, LastUse> = HashMap::new();
    // Per system: each holder's last sign-in there, as reconciliation read it.
    let mut logins: HashMap<String, HashMap<i64, Option<OffsetDateTime>>> = HashMap::new();
    for (identity, g, ent, origin) in in_scope {
        let granted_at = g.request_id.and_then(|r| decided.get(&r).copied());
        let (recommendation, evidence) = recommend(identity, g, origin, granted_at, &peers, now);
        // Use tenure sees: the holder's last runtime authorization (any action it asked
        // about, with the answer and its ledger entry) and, for a machine identity, its last
        // credential from the broker.
        let (authorized, issued) = match last_use.get(&identity.id) {
            Some(u) => u.clone(),
            None => {
                let authorized = tx.ledger_last(&identity.reference.to_string(), "authz.decided")?.map(|row| {
                    let (action, decision) = match &row.event {
                        tenure_ledger::LedgerEvent::AuthzDecided(d) => (d.action.clone(), d.decision.clone()),
                        _ => (String::new(), String::new()),
                    };
                    (row.at, json!({ "at": ts(row.at), "action": action, "decision": decision, "ledger_seq": row.seq }))
                });
                let issued = if identity.kind.is_human() {
                    None
                } else {
                    Some(tx.credentials(Some(identity.id))?.first().map(|c| c.issued_at))
                };
                last_use.insert(identity.id, (authorized.clone(), issued));
                (authorized, issued)
            }
        };
        let login = match logins.get(&g.system) {
            // A micro-review (in the event's transaction) reads its one holder's accounts.
            _ if only.is_some() => {
                tx.accounts(identity.id)?.into_iter().find(|a| a.system == g.system).and_then(|a| a.last_login)
            }
            Some(by_identity) => by_identity.get(&identity.id).copied().flatten(),
            None => {
                let by_identity: HashMap<i64, Option<OffsetDateTime>> =
                    tx.system_accounts(&g.system)?.into_iter().map(|a| (a.identity_id, a.last_login)).collect();
                let login = by_identity.get(&identity.id).copied().flatten();
                logins.insert(g.system.clone(), by_identity);
                login
            }
        };
        let (authorized_at, authorized) = authorized.unzip();
        let used = Use { authorized_at, issued, login };
        let (recommendation, mut evidence) =
            unused(identity, &g.system, recommendation, evidence, &used, granted_at, now);
        if let Some(o) = evidence.as_object_mut() {
            o.insert("last_authorized".into(), authorized.unwrap_or(Value::Null));
            if let Some(issued) = issued {
                o.insert("last_credential_issued".into(), issued.map_or(Value::Null, |t| Value::String(ts(t))));
            }
            o.insert("last_login".into(), login.map_or(Value::Null, |t| json!({ "system": g.system, "at": ts(t) })));
        }
        let item = tx.insert_review_item(&NewReviewItem {
            campaign_id: id,
            identity_id: identity.id,
            grant_id: g.id,
            entitlement: &g.entitlement,
            system: &g.system,
            origin: &g.origin,
            privileged: ent.privileged,
            granted_at,
            recommendation: recommendation.as_str(),
            evidence: &evidence,
        })?;
        let reviewers =
            reviewers_for(policy, first, identity, (&g.entitlement, None), &|r: &str| people.get(r).copied());
        if reviewers.is_empty() {
            unassigned += 1;
        }
        for r in &reviewers {
            *assigned.entry(*r).or_default() += 1;
        }
        tx.assign_reviewers(item, 0, &reviewers)?;
        items += 1;
    }
    record(
        tx,
        Stamp::new(now, actor, policy.version.as_str()),
        &subject_of(id),
        LedgerEvent::ReviewStarted(ReviewStarted {
            campaign: id,
            name: def.name.clone(),
            identity: only.map(|i| i.reference.to_string()),
            items,
            stages: u32::try_from(stages).unwrap_or(1),
            deadline: ts(deadline),
            unassigned,
            no_answer: def.no_answer.as_str().to_owned(),
            max_no_answer_revokes: def.max_no_answer_revokes,
        }),
    )?;
    if items == 0 {
        tx.set_campaign_state(id, "open", "completing", now)?;
    }
    let about = only.map(|i| i.reference.to_string());
    for (reviewer, n) in assigned {
        notify_assigned(tx, policy, (id, &def.name, deadline), (0, None), reviewer, n, about.as_deref(), now)?;
    }
    Ok(Some(id))
}

/// Tell `reviewer` that `n` items of campaign `(id, name, deadline)` wait for them at `stage`
/// (`about`: the one identity a micro-review is of).
#[expect(clippy::too_many_arguments, reason = "one notice's facts; a struct would only name them twice")]
fn notify_assigned(
    tx: &mut dyn WriteTx,
    policy: &Bundle,
    (id, name, deadline): (i64, &str, OffsetDateTime),
    (stage, item): (i64, Option<i64>),
    reviewer: i64,
    n: u64,
    about: Option<&str>,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    if !notices::wanted(policy, NoticeKind::ReviewAssigned) {
        return Ok(());
    }
    let Some(to) = tx.identity_by_id(reviewer)? else { return Ok(()) };
    let items = if n == 1 { "1 item".to_owned() } else { format!("{n} items") };
    let of = about.map(|a| format!(" of {a}")).unwrap_or_default();
    let notice = Notice {
        kind: NoticeKind::ReviewAssigned,
        // One notice per campaign and stage; an item reaching a later stage is its own.
        key: match item {
            Some(item) => format!("review:{id}:item:{item}:stage:{stage}:{}", to.reference),
            None => format!("review:{id}:stage:{stage}:{}", to.reference),
        },
        to: Some(&to),
        subject: format!("Access review {name}{of}: {items} to review by {}", ts(deadline)),
        text: format!(
            "{items} of access review {id} ({name}){of} wait for your decision (stage {}), by {}.\n\
             See them with `tenure reviews show {id}` or GET /v1/reviews/{id}; decide each keep or revoke.",
            stage + 1,
            ts(deadline)
        ),
        data: json!({ "campaign": id, "name": name, "stage": stage + 1, "items": n, "deadline": ts(deadline), "identity": about }),
    };
    notices::notify(tx, policy, &notice, now)
}

/// The micro-reviews `trigger` starts for `identity` (a mover's new manager, an NHI's new
/// owner), in the caller's transaction: one campaign per `[reviews.NAME]` with that trigger
/// and anything of the identity's in its scope. Their ids.
pub(crate) fn on_trigger(
    tx: &mut dyn WriteTx,
    policy: &Bundle,
    trigger: Trigger,
    identity: &IdentityRow,
    actor: &str,
    now: OffsetDateTime,
) -> Result<Vec<i64>, StoreError> {
    let mut out = Vec::new();
    for def in policy.reviews.values().filter(|d| d.trigger == Some(trigger)) {
        out.extend(snapshot(tx, policy, def, actor, now, Some(identity))?);
    }
    Ok(out)
}

/// The origin of an item that is an account rather than a grant: one reconciliation found that
/// tenure did not make, correlated to the identity (`unlinked`). Its `entitlement` is the
/// account's name.
pub const ACCOUNT_ITEM: &str = tenure_ledger::review::ACCOUNT_ITEM;

/// A reconciliation run found `account` in `system`, not made by tenure, correlating to
/// `identity`, with the reaction `review`: a micro-review of that account from the bundle's
/// `trigger = "unlinked"` campaign, in the run's transaction — unless it was reviewed before. Keep
/// adopts the account (tenure's for the identity from then on, under policy); revoke disables
/// it through a drift job, verified by its read-back. The campaign's id, if one started.
pub(crate) fn on_unlinked(
    tx: &mut dyn WriteTx,
    policy: &Bundle,
    (system, run): (&str, i64),
    account: &str,
    identity: &IdentityRow,
    now: OffsetDateTime,
) -> Result<Option<i64>, StoreError> {
    let Some(def) = policy.reviews.values().find(|d| d.trigger == Some(Trigger::Unlinked)) else { return Ok(None) };
    let Some(first) = def.stages.first() else { return Ok(None) };
    // One review per account: a decision stands (the finding stays open in the report).
    if tx.account_review(system, account)?.is_some() {
        return Ok(None);
    }
    let held = tx.accounts(identity.id)?.into_iter().find(|a| a.system == system);
    let (recommendation, why) = match (&held, identity.state) {
        (_, s) if s != LifecycleState::Active => {
            (Verdict::Revoke, format!("`{}` is {s}: an account of theirs should not be in use", identity.reference))
        }
        (Some(a), _) => (
            Verdict::Revoke,
            format!("`{}` already holds `{}` in `{system}`: this one would be a second", identity.reference, a.name),
        ),
        (None, _) => (
            Verdict::Keep,
            format!("`{}` holds no other account in `{system}`: likely theirs, made by hand", identity.reference),
        ),
    };
    let evidence = json!({ "account": account, "run": run, "held": held.map(|a| a.name), "why": [why] });
    let deadline = now + def.duration;
    let id = tx.insert_campaign(&NewCampaign {
        name: &def.name,
        policy_version: policy.version.as_str(),
        stages: i64::try_from(def.stages.len()).unwrap_or(1),
        started_at: now,
        deadline,
        started_by: crate::ACTOR_ENGINE,
    })?;
    let item = tx.insert_review_item(&NewReviewItem {
        campaign_id: id,
        identity_id: identity.id,
        grant_id: 0,
        entitlement: account,
        system,
        origin: ACCOUNT_ITEM,
        privileged: false,
        granted_at: None,
        recommendation: recommendation.as_str(),
        evidence: &evidence,
    })?;
    let mut refs = candidates(policy, first, identity, account, Some(system));
    refs.extend(first.fallback.iter().cloned());
    let people = people_named(&*tx, refs)?;
    let reviewers = reviewers_for(policy, first, identity, (account, Some(system)), &|r: &str| people.get(r).copied());
    tx.assign_reviewers(item, 0, &reviewers)?;
    record(
        tx,
        Stamp::engine(now, policy.version.as_str()),
        &subject_of(id),
        LedgerEvent::ReviewStarted(ReviewStarted {
            campaign: id,
            name: def.name.clone(),
            identity: Some(identity.reference.to_string()),
            items: 1,
            stages: u32::try_from(def.stages.len()).unwrap_or(1),
            deadline: ts(deadline),
            unassigned: u64::from(reviewers.is_empty()),
            no_answer: def.no_answer.as_str().to_owned(),
            max_no_answer_revokes: def.max_no_answer_revokes,
        }),
    )?;
    let about = identity.reference.to_string();
    for r in reviewers {
        notify_assigned(tx, policy, (id, &def.name, deadline), (0, Some(item)), r, 1, Some(&about), now)?;
    }
    Ok(Some(id))
}

/// What tenure sees of an item's use: the holder's last authorization, a machine identity's
/// last credential (`None` for a person: not counted), and the last sign-in the grant's system
/// recorded for the holder's account.
struct Use {
    authorized_at: Option<OffsetDateTime>,
    issued: Option<Option<OffsetDateTime>>,
    login: Option<OffsetDateTime>,
}

/// Access tenure has seen no use of for [`STALE_AFTER`], on a grant at least that old: recommend
/// revoking, and say so. A machine identity counts its credentials, authorizations and sign-ins
/// (from its joining at the earliest: a new service has had no time to be used); a person only
/// the sign-ins a system recorded (tenure does not see most of what people use).
fn unused(
    identity: &IdentityRow,
    system: &str,
    verdict: Verdict,
    mut evidence: Value,
    used: &Use,
    granted_at: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> (Verdict, Value) {
    let old = granted_at.is_none_or(|t| now - t >= STALE_AFTER);
    if !old || identity.state != LifecycleState::Active {
        return (verdict, evidence);
    }
    let why = match used.issued {
        Some(issued) => {
            let last = issued.into_iter().chain(used.authorized_at).chain(used.login).max();
            let since = last.into_iter().chain([identity.created_at]).max().unwrap_or(identity.created_at);
            if now - since < STALE_AFTER {
                return (verdict, evidence);
            }
            match last {
                Some(t) => format!(
                    "no credential issued, no authorization asked and no sign-in since {} ({} days)",
                    ts(t),
                    (now - t).whole_days()
                ),
                None => format!(
                    "no credential issued, no authorization asked and no sign-in since it joined {} days ago",
                    (now - identity.created_at).whole_days()
                ),
            }
        }
        None => match used.login {
            Some(t) if now - t >= STALE_AFTER => {
                format!("no sign-in to `{system}` since {} ({} days)", ts(t), (now - t).whole_days())
            }
            _ => return (verdict, evidence),
        },
    };
    if let Some(w) = evidence.get_mut("why").and_then(Value::as_array_mut) {
        if verdict == Verdict::Keep {
            w.clear();
        }
        w.push(Value::String(why));
    }
    (Verdict::Revoke, evidence)
}

/// The recommendation for one grant, and the evidence behind it.
fn recommend(
    identity: &IdentityRow,
    g: &tenure_store::GrantRow,
    origin: GrantOrigin,
    granted_at: Option<OffsetDateTime>,
    peers: &Peers,
    now: OffsetDateTime,
) -> (Verdict, Value) {
    let mut why = Vec::new();
    let age_days = granted_at.map(|t| (now - t).whole_days());
    // A micro-review counts no peers (it reads one identity, not the population).
    let peer = identity.attributes.get(PEER_ATTRIBUTE).filter(|_| !peers.members.is_empty()).map(|v| {
        let members = peers.members.get(v).copied().unwrap_or(1).saturating_sub(1);
        let holding = peers.holding.get(&(g.entitlement.clone(), v.clone())).copied().unwrap_or(1).saturating_sub(1);
        (v.clone(), holding, members)
    });
    let mut verdict = Verdict::Keep;
    if identity.state == LifecycleState::Suspended {
        why.push(format!("`{}` is suspended", identity.reference));
        verdict = Verdict::Revoke;
    }
    if let Some((value, holding, members)) = &peer
        && *members > 0
        && holding * 100 < members * FEW_PEERS_PERCENT
        && granted_at.is_none_or(|t| now - t >= STALE_AFTER)
    {
        why.push(format!(
            "{holding} of {members} peers in {PEER_ATTRIBUTE} `{value}` hold it, and it is {}",
            age_days.map_or("of unknown age".to_owned(), |d| format!("{d} days old"))
        ));
        verdict = Verdict::Revoke;
    }
    if verdict == Verdict::Keep {
        why.push("nothing tenure sees argues against it".to_owned());
    }
    let evidence = json!({
        "origin": origin.as_str(),
        "request": g.request_id,
        "age_days": age_days,
        "expires_at": g.expires_at.map(ts),
        "peers": peer.map(|(value, holding, members)| json!({
            "attribute": PEER_ATTRIBUTE, "value": value, "holding": holding, "of": members,
        })),
        "why": why,
    });
    (verdict, evidence)
}

fn undecided_items(tx: &dyn ReadTx, campaign: i64) -> Result<Vec<ReviewItemRow>> {
    let q = ReviewItemQuery { reviewer: None, undecided: true };
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = tx.review_items(campaign, &q, after, 1000)?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        out.extend(page);
    }
    Ok(out)
}

/// Record one decision at the item's stage, and carry it out: a revoke takes the grant away
/// through the normal path (sync jobs; verified by read-back); a keep before the last stage
/// passes the item to the next stage's reviewers.
#[expect(clippy::too_many_arguments, reason = "one decision's whole context, inside one transaction")]
fn decide_in(
    tx: &mut dyn WriteTx,
    policy: &Bundle,
    c: &CampaignRow,
    def: Option<&Campaign>,
    item: &ReviewItemRow,
    decision: Verdict,
    reason: &str,
    by: Option<(i64, &str)>,
    now: OffsetDateTime,
) -> Result<()> {
    let identity =
        tx.identity_by_id(item.identity_id)?.ok_or_else(|| EngineError::NotFound(item.identity_id.to_string()))?;
    let mut changes = Changes::default();
    let account_item = item.origin == ACCOUNT_ITEM;
    if account_item {
        // An account, not a grant: revoke disables it, a person's final keep adopts it (the
        // no-answer default never makes an account tenure's, and an identity that holds an
        // account there already is not given a second: kept, it stays as it is); a drift job
        // does either and reads it back.
        let run = item.evidence.get("run").and_then(Value::as_i64).unwrap_or(0);
        let last_stage = item.stage + 1 >= c.stages;
        let holds_one = tx.accounts(identity.id)?.iter().any(|a| a.system == item.system);
        let payload = match decision {
            Verdict::Revoke => Some(json!({ "run": run, "disable": true, "review_item": item.id })),
            Verdict::Keep if by.is_some() && last_stage && !holds_one => {
                Some(json!({ "run": run, "adopt": identity.reference.to_string(), "review_item": item.id }))
            }
            Verdict::Keep => None,
        };
        if let Some(payload) = payload {
            tx.enqueue_drift(&tenure_store::NewDriftJob {
                identity_id: Some(identity.id),
                system: &item.system,
                account: &item.entitlement,
                payload: &payload,
                run_at: now,
            })?;
        }
    }
    if decision == Verdict::Revoke
        && !account_item
        && let Some(g) = tx.grants(identity.id)?.into_iter().find(|g| g.entitlement == item.entitlement)
        && g.state.is_wanted()
    {
        grants::revoke(tx, identity.id, &g, policy.version.as_str(), now)?;
        let mut change = grants::apply_desired(tx, policy, &identity, now).map_err(EngineError::from)?;
        change.revoking.insert(g.entitlement.clone());
        change.systems.insert(g.system.clone());
        grants::enqueue(tx, identity.id, &change.systems, now)?;
        changes = change.recorded();
    }
    let stage = u32::try_from(item.stage).unwrap_or(0);
    let event = ReviewDecided {
        campaign: c.id,
        item: item.id,
        entitlement: item.entitlement.clone(),
        stage,
        decision: decision.as_str().to_owned(),
        reason: reason.to_owned(),
        by_default: by.is_none(),
        recommendation: item.recommendation.clone(),
        changes,
    };
    let stamp = match by {
        Some((_, actor)) => Stamp::new(now, actor, policy.version.as_str()),
        None => Stamp::engine(now, policy.version.as_str()),
    };
    let seq = record_seq(tx, stamp, &identity.reference.to_string(), LedgerEvent::ReviewDecided(event))?;
    let row = ReviewDecisionRow {
        item_id: item.id,
        stage: item.stage,
        decision: decision.as_str().to_owned(),
        reason: reason.to_owned(),
        decided_by: by.map(|(id, _)| id),
        at: now,
        seq,
    };
    if !tx.insert_review_decision(&row)? {
        return Err(EngineError::Conflict(format!("item {} was decided at stage {} already", item.id, item.stage + 1)));
    }
    let last_stage = item.stage + 1 >= c.stages;
    if decision == Verdict::Revoke || last_stage || by.is_none() {
        tx.settle_review_item(item.id, Some(decision.as_str()), now)?;
    } else {
        tx.settle_review_item(item.id, None, now)?;
        let next = usize::try_from(item.stage + 1).ok().and_then(|s| def.and_then(|d| d.stages.get(s)));
        let reviewers = match next {
            Some(s) => {
                let system = account_item.then_some(item.system.as_str());
                let mut refs = candidates(policy, s, &identity, &item.entitlement, system);
                refs.extend(s.fallback.iter().cloned());
                let found = people_named(&*tx, refs)?;
                reviewers_for(policy, s, &identity, (&item.entitlement, system), &|r: &str| found.get(r).copied())
            }
            None => Vec::new(),
        };
        tx.assign_reviewers(item.id, item.stage + 1, &reviewers)?;
        let about = identity.reference.to_string();
        for r in reviewers {
            let at = (item.stage + 1, Some(item.id));
            notify_assigned(tx, policy, (c.id, &c.name, c.deadline), at, r, 1, Some(&about), now)?;
        }
    }
    Ok(())
}

/// Every undecided item of `c` decided by its default (`apply_default`), or kept.
fn apply_defaults(
    tx: &mut dyn WriteTx,
    policy: &Bundle,
    c: &CampaignRow,
    def: Option<&Campaign>,
    now: OffsetDateTime,
    apply_default: bool,
) -> Result<()> {
    for item in undecided_items(&*tx, c.id)? {
        let verdict = if apply_default { default_for(def, &item) } else { Verdict::Keep };
        let reason = match (apply_default, def.map(|d| d.no_answer)) {
            (false, _) => "no answer by the deadline; kept on release".to_owned(),
            (true, Some(n)) => format!("no answer by the deadline; the campaign's default ({})", n.as_str()),
            (true, None) => "no answer by the deadline; the campaign is no longer in policy: kept".to_owned(),
        };
        decide_in(tx, policy, c, def, &item, verdict, &reason, None, now)?;
    }
    Ok(())
}

/// An open campaign with nothing undecided moves to `completing`.
fn finish_if_decided(tx: &mut dyn WriteTx, c: &CampaignRow, now: OffsetDateTime) -> Result<()> {
    if !tx.any_undecided(c.id)? {
        tx.set_campaign_state(c.id, "open", "completing", now)?;
    }
    Ok(())
}

/// Whether each revoked item's grant is verified revoked (by read-back), or gone with its
/// identity's closure.
fn revocation_verified(tx: &dyn ReadTx, item: &ReviewItemRow) -> Result<bool> {
    if item.origin == ACCOUNT_ITEM {
        return Ok(item.verified_seq.is_some());
    }
    Ok(tx
        .grants(item.identity_id)?
        .iter()
        .find(|g| g.entitlement == item.entitlement)
        .is_none_or(|g| g.state == GrantState::RevocationVerified))
}

/// A reviewer deciding at least this many items …
const STAMP_ITEMS: i64 = 10;
/// … at under this many seconds an item on average is flagged as rubber-stamping.
const STAMP_SECONDS: f64 = 5.0;

/// The reviewers of a campaign who decided many items in seconds, in words.
pub(crate) fn rubber_stamping(tx: &dyn ReadTx, campaign_id: i64) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for (who, n, first, last) in tx.reviewer_pace(campaign_id)? {
        let secs = (last - first).as_seconds_f64();
        if n >= STAMP_ITEMS && secs / (n - 1) as f64 <= STAMP_SECONDS {
            let who = tx.identity_by_id(who)?.map_or_else(|| who.to_string(), |r| r.reference.to_string());
            out.push(format!("{who} decided {n} items in {secs:.0} s"));
        }
    }
    Ok(out)
}

pub(crate) fn campaign_view(tx: &dyn ReadTx, c: CampaignRow) -> Result<CampaignView> {
    Ok(CampaignView {
        rubber_stamping: rubber_stamping(tx, c.id)?,
        items: tx.review_counts(c.id)?,
        id: c.id,
        name: c.name,
        state: c.state,
        policy_version: c.policy_version,
        stages: c.stages,
        started_at: ts(c.started_at),
        started_by: c.started_by,
        deadline: ts(c.deadline),
        closed_at: c.closed_at.map(ts),
    })
}

pub(crate) fn item_view(tx: &dyn ReadTx, i: ReviewItemRow) -> Result<ReviewItemView> {
    let identity = tx.identity_by_id(i.identity_id)?.ok_or_else(|| EngineError::NotFound(i.identity_id.to_string()))?;
    let reviewers = if i.outcome.is_none() {
        let mut out = Vec::new();
        for id in tx.item_reviewers(i.id, i.stage)? {
            if let Some(r) = tx.identity_by_id(id)? {
                out.push(r.reference.to_string());
            }
        }
        out
    } else {
        Vec::new()
    };
    let status = match i.outcome.as_deref() {
        None => "pending".to_owned(),
        Some("revoke") if revocation_verified(tx, &i)? => "revoked (verified)".to_owned(),
        Some("revoke") => "revoking".to_owned(),
        Some(_) => "kept".to_owned(),
    };
    let mut decisions = Vec::new();
    for d in tx.item_decisions(i.id)? {
        let by = match d.decided_by {
            Some(id) => tx.identity_by_id(id)?.map(|r| r.reference.to_string()),
            None => None,
        };
        decisions.push(ReviewDecisionView {
            stage: d.stage,
            decision: d.decision,
            reason: d.reason,
            by,
            at: ts(d.at),
            entry: d.seq,
        });
    }
    Ok(ReviewItemView {
        id: i.id,
        campaign: i.campaign_id,
        identity: identity.reference.to_string(),
        name: identity.name,
        kind: identity.kind.to_string(),
        entitlement: i.entitlement,
        system: i.system,
        origin: i.origin,
        privileged: i.privileged,
        granted_at: i.granted_at.map(ts),
        stage: i.stage,
        reviewers,
        recommendation: i.recommendation,
        evidence: i.evidence,
        status,
        decisions,
    })
}
