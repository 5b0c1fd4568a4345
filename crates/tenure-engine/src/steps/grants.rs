//! Grant and account steps inside a caller's write transaction: desired grants from policy
//! (with guardrails and their findings), grants to revoke, accounts following them, the sync
//! jobs that carry them out, and recomputing an identity after a deployment. The joiner and
//! mover flows (ingest) and the leaver flow (`leaver.rs`) are built from them.

use crate::ledger::{Stamp, record};
use std::collections::{BTreeMap, BTreeSet};
use tenure_ledger::LedgerEvent;
use tenure_ledger::event::AccountConflict;
use tenure_model::{AccountState, GrantOrigin, GrantState};
use tenure_policy::{Bundle, Held, Subject};
use tenure_store::{GrantRow, IdentityRow, JobKind, NewGrant, NewJob, ReadTx, StoreError, WriteTx};
use time::OffsetDateTime;

#[derive(Debug)]
pub(crate) enum WorkflowError {
    Store(StoreError),
    AccountTaken { system: String, name: String, holder: String },
    Transition(tenure_model::TransitionError),
}

impl From<WorkflowError> for crate::EngineError {
    fn from(e: WorkflowError) -> Self {
        match e {
            WorkflowError::Store(s) => Self::Store(s),
            WorkflowError::AccountTaken { system, name, holder } => {
                Self::Conflict(format!("account `{name}` in `{system}` is held by `{holder}`"))
            }
            WorkflowError::Transition(t) => Self::Conflict(t.to_string()),
        }
    }
}

impl From<StoreError> for WorkflowError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// What a step changed, for the ledger entry.
#[derive(Debug, Default)]
pub(crate) struct Change {
    pub added: BTreeSet<String>,
    pub revoking: BTreeSet<String>,
    pub systems: BTreeSet<String>,
    /// Entitlements policy wanted that guardrails blocked, with the blocking policies.
    pub blocked: BTreeMap<String, Vec<String>>,
    /// Entitlements no longer blocked (their findings resolved).
    pub unblocked: BTreeSet<String>,
    /// Credentials revoked.
    pub credentials: Vec<String>,
    /// Whether revoked credentials (these or earlier ones) wait for verification.
    pub credentials_pending: bool,
}

impl Change {
    pub fn is_empty(&self) -> bool {
        self.systems.is_empty() && self.blocked.is_empty() && self.unblocked.is_empty() && !self.credentials_pending
    }

    /// What the ledger entry of the step says it changed.
    pub fn recorded(&self) -> tenure_ledger::event::Changes {
        tenure_ledger::event::Changes {
            grants_added: self.added.iter().cloned().collect(),
            grants_revoking: self.revoking.iter().cloned().collect(),
            guardrail_blocked: self.blocked.clone(),
            guardrail_unblocked: self.unblocked.iter().cloned().collect(),
            credentials_revoked: self.credentials.clone(),
            jobs: self.systems.iter().map(|s| format!("sync:{s}")).collect(),
        }
    }
}

/// The account name of an identity in a system, by the system's `account_name` pattern.
pub(crate) fn account_name(policy: &Bundle, system: &str, identity: &IdentityRow) -> String {
    let pattern =
        policy.systems.get(system).and_then(|s| s.settings.get("account_name")).map_or("{external_id}", String::as_str);
    tenure_connectors::expand_account_name(pattern, identity.reference.source(), identity.reference.external_id())
}

/// The kind of finding a guardrail that blocks a wanted grant opens.
pub(crate) const FINDING_GUARDRAIL: &str = "guardrail_blocked";

/// An identity with what it holds (wanted grants), for policy questions.
pub(crate) struct Holder {
    pub row: IdentityRow,
    reference: String,
    owner: Option<String>,
    pub holding: BTreeSet<String>,
}

impl Holder {
    pub fn new(row: IdentityRow, holding: BTreeSet<String>) -> Self {
        Self { reference: row.reference.to_string(), owner: row.owner.as_ref().map(ToString::to_string), row, holding }
    }

    /// The identity with its wanted grants.
    pub fn load(tx: &dyn ReadTx, row: IdentityRow) -> Result<Self, StoreError> {
        let holding = tx.grants(row.id)?.into_iter().filter(|g| g.state.is_wanted()).map(|g| g.entitlement).collect();
        Ok(Self::new(row, holding))
    }

    pub fn subject(&self) -> Subject<'_> {
        Subject {
            reference: &self.reference,
            kind: self.row.kind,
            source: self.row.reference.source(),
            state: self.row.state,
            name: &self.row.name,
            attributes: &self.row.attributes,
            owner: self.owner.as_deref(),
            purpose: self.row.purpose.as_deref(),
            holding: &self.holding,
        }
    }
}

/// The grants other than birthright an identity holds and that have not run out, with the
/// guardrails their exceptions waive.
pub(crate) fn extras(
    tx: &dyn ReadTx,
    grants: &[GrantRow],
    now: OffsetDateTime,
) -> Result<Vec<(String, GrantOrigin, Vec<String>)>, StoreError> {
    let mut out = Vec::new();
    for g in grants {
        let Ok(origin) = g.origin.parse::<GrantOrigin>() else { continue };
        if !g.state.is_wanted() || origin == GrantOrigin::Birthright || g.expires_at.is_some_and(|e| e <= now) {
            continue;
        }
        let waives = match (origin, g.request_id) {
            (GrantOrigin::Exception, Some(r)) => tx.request(r)?.map(|r| r.waives).unwrap_or_default(),
            _ => vec![],
        };
        out.push((g.entitlement.clone(), origin, waives));
    }
    Ok(out)
}

/// Bring an identity's grants to what policy wants now (joiner, mover, deployment): birthright
/// entitlements become `desired`, and any wanted grant policy no longer wants (a birthright
/// lost, a request grant a guardrail now blocks) becomes `revoking`. Guardrails see everything
/// the identity would hold; what they block is a finding, not a silent skip. Accounts follow
/// (wanted while any grant in the system is wanted); one sync job per touched system.
pub(crate) fn apply_desired(
    tx: &mut dyn WriteTx,
    policy: &Bundle,
    identity: &IdentityRow,
    now: OffsetDateTime,
) -> Result<Change, WorkflowError> {
    let grants = tx.grants(identity.id)?;
    apply_desired_to(tx, policy, identity, &grants, now)
}

/// [`apply_desired`] for an identity whose grants the caller has read (in this transaction).
fn apply_desired_to(
    tx: &mut dyn WriteTx,
    policy: &Bundle,
    identity: &IdentityRow,
    grants: &[GrantRow],
    now: OffsetDateTime,
) -> Result<Change, WorkflowError> {
    let have: BTreeMap<String, GrantRow> = grants.iter().map(|g| (g.entitlement.clone(), g.clone())).collect();
    let extra = extras(&*tx, grants, now)?;
    let held: Vec<Held<'_>> =
        extra.iter().map(|(e, origin, waives)| Held { entitlement: e, origin: *origin, waives }).collect();
    let facts = Holder::new(identity.clone(), BTreeSet::new());
    let desired = policy.desired(&facts.subject(), &held);
    let mut change = Change::default();
    let version = policy.version.as_str();

    for (ent, origin) in &desired.grants {
        let Some(def) = policy.entitlement(ent) else { continue };
        match have.get(ent) {
            // Birthright now covers what a request gave: it no longer runs out.
            Some(g)
                if g.state.is_wanted()
                    && *origin == GrantOrigin::Birthright
                    && g.origin != GrantOrigin::Birthright.as_str() =>
            {
                put_birthright(tx, identity.id, ent, &g.system, g.state, version, now)?;
            }
            Some(g) if g.state.is_wanted() => {}
            _ if *origin == GrantOrigin::Birthright => {
                put_birthright(tx, identity.id, ent, &def.system, GrantState::Desired, version, now)?;
                change.added.insert(ent.clone());
                change.systems.insert(def.system.clone());
            }
            _ => {}
        }
    }
    for (ent, g) in &have {
        if g.state.is_wanted() && !desired.grants.contains_key(ent) {
            revoke(tx, identity.id, g, version, now)?;
            change.revoking.insert(ent.clone());
            change.systems.insert(g.system.clone());
        }
    }

    for (ent, d) in &desired.blocked {
        let detail = serde_json::json!({ "policies": d.policies, "reasons": d.reasons, "errors": d.errors });
        let finding = tenure_store::NewFinding {
            identity_id: Some(identity.id),
            kind: FINDING_GUARDRAIL,
            entitlement: ent,
            detail: &detail,
            policy_version: version,
            at: now,
        };
        if tx.open_finding(&finding)? {
            change.blocked.insert(ent.clone(), d.policies.clone());
        }
    }
    for f in tx.open_findings(identity.id)? {
        if f.kind == FINDING_GUARDRAIL
            && !desired.blocked.contains_key(&f.entitlement)
            && tx.resolve_finding(Some(identity.id), FINDING_GUARDRAIL, &f.entitlement, now)?
        {
            change.unblocked.insert(f.entitlement);
        }
    }

    // Accounts: wanted in every system where a grant is wanted, while the identity may use
    // them (a suspended one keeps its grants, its accounts stay disabled).
    let wanted_systems: BTreeSet<String> = if identity.state.is_current() {
        desired.grants.keys().filter_map(|e| policy.entitlement(e)).map(|d| d.system.clone()).collect()
    } else {
        BTreeSet::new()
    };
    accounts_follow(tx, policy, identity, &wanted_systems, &mut change, now)?;
    enqueue(tx, identity.id, &change.systems, now)?;
    Ok(change)
}

fn put_birthright(
    tx: &mut dyn WriteTx,
    identity_id: i64,
    entitlement: &str,
    system: &str,
    state: GrantState,
    version: &str,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    tx.put_grant(&NewGrant {
        identity_id,
        entitlement,
        system,
        state,
        origin: GrantOrigin::Birthright.as_str(),
        policy_version: version,
        at: now,
        expires_at: None,
        request_id: None,
    })
}

/// Mark a grant `revoking`, keeping where it came from.
pub(crate) fn revoke(
    tx: &mut dyn WriteTx,
    identity_id: i64,
    g: &GrantRow,
    version: &str,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    tx.put_grant(&NewGrant {
        identity_id,
        entitlement: &g.entitlement,
        system: &g.system,
        state: GrantState::Revoking,
        origin: &g.origin,
        policy_version: version,
        at: now,
        expires_at: g.expires_at,
        request_id: g.request_id,
    })
}

/// Accounts wanted in exactly `wanted_systems`: created or re-enabled there, disabled elsewhere.
pub(crate) fn accounts_follow(
    tx: &mut dyn WriteTx,
    policy: &Bundle,
    identity: &IdentityRow,
    wanted_systems: &BTreeSet<String>,
    change: &mut Change,
    now: OffsetDateTime,
) -> Result<(), WorkflowError> {
    let accounts: BTreeMap<String, tenure_store::AccountRow> =
        tx.accounts(identity.id)?.into_iter().map(|a| (a.system.clone(), a)).collect();
    for system in wanted_systems {
        match accounts.get(system) {
            Some(a) if matches!(a.state, AccountState::Desired | AccountState::Verified) => {}
            Some(a) => {
                tx.put_account(identity.id, system, &a.name, AccountState::Desired, now)?;
                change.systems.insert(system.clone());
            }
            None => {
                let name = account_name(policy, system, identity);
                if let Some(holder) = tx.account_by_name(system, &name)? {
                    let holder =
                        tx.identity_by_id(holder.identity_id)?.map(|h| h.reference.to_string()).unwrap_or_default();
                    return Err(WorkflowError::AccountTaken { system: system.clone(), name, holder });
                }
                tx.put_account(identity.id, system, &name, AccountState::Desired, now)?;
                change.systems.insert(system.clone());
            }
        }
    }
    for (system, a) in &accounts {
        if !wanted_systems.contains(system) && matches!(a.state, AccountState::Desired | AccountState::Verified) {
            tx.put_account(identity.id, system, &a.name, AccountState::Disabling, now)?;
            change.systems.insert(system.clone());
        }
    }
    Ok(())
}

pub(crate) fn enqueue(
    tx: &mut dyn WriteTx,
    identity_id: i64,
    systems: &BTreeSet<String>,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    for system in systems {
        tx.enqueue(&NewJob {
            kind: JobKind::Sync,
            identity_id,
            system,
            run_at: now,
            request_id: crate::telemetry::request_id().as_deref(),
        })?;
    }
    Ok(())
}

/// Recompute one identity after a policy deployment; returns whether anything changed.
pub(crate) fn recompute(
    tx: &mut dyn WriteTx,
    policy: &Bundle,
    identity: &IdentityRow,
    grants: &[GrantRow],
    now: OffsetDateTime,
    actor: &str,
) -> Result<bool, StoreError> {
    let change = match apply_desired_to(tx, policy, identity, grants, now) {
        Ok(c) => c,
        Err(WorkflowError::Store(e)) => return Err(e),
        Err(WorkflowError::Transition(_)) => return Ok(false),
        Err(WorkflowError::AccountTaken { system, name, holder }) => {
            // Not a reason to refuse the deployment; recorded for people to resolve.
            record(
                tx,
                Stamp::new(now, actor, policy.version.as_str()),
                &identity.reference.to_string(),
                LedgerEvent::AccountConflict(AccountConflict { system, account: name, held_by: holder }),
            )?;
            return Ok(false);
        }
    };
    if change.is_empty() {
        return Ok(false);
    }
    record(
        tx,
        Stamp::new(now, actor, policy.version.as_str()),
        &identity.reference.to_string(),
        LedgerEvent::Recomputed(change.recorded()),
    )?;
    Ok(true)
}
