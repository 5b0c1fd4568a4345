//! Reconciliation (docs/reconciliation.md): read a whole system page by page, compare it with
//! what tenure holds ([`diff`]), gate the plan on the system's thresholds, and record the run —
//! its findings, its reactions as jobs, the run row and its `reconcile.run` ledger entry — in
//! one transaction. A run over a threshold is quarantined: findings only, nothing handed to a
//! job, until a person releases all or part of it. A read that stops part way records
//! `reconcile.failed` and concludes nothing.

pub mod diff;

use crate::ledger::{Stamp, record};
use crate::{Engine, EngineError, Result};
use diff::{Classifier, Expected, Item, Plan};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tenure_connectors::{Connector, ScanRequest};
use tenure_ledger::LedgerEvent;
use tenure_ledger::event::{ReconcileFailed, ReconcileReleased, ReconcileRun};
use tenure_model::{AccountState, Principal, Reaction, Situation, rfc3339};
use tenure_policy::reconcile::{ReconcileRules, Thresholds};
use tenure_proto::RunView;
use tenure_store::{NewDriftJob, NewEntry, NewFinding, NewJob, NewRun, Observation, RunRow, WriteTx};
use time::OffsetDateTime;

/// Stable codes of the thresholds a run can cross.
pub const OVER_CHANGES: &str = "RC0001";
pub const OVER_PERCENT: &str = "RC0002";
pub const OVER_CLASS: &str = "RC0003";
pub const OVER_WINDOW: &str = "RC0004";

/// The name tenure's own checks run under, as a system of their own: NHIs without an active
/// human owner or past their expiry, live credentials of identities past theirs. Reserved: no
/// system in a bundle may take it.
pub const TENURE: &str = tenure_policy::reconcile::TENURE_SYSTEM;

/// How often `tenure serve` runs tenure's own checks.
pub const TENURE_EVERY: time::Duration = time::Duration::HOUR;

/// The finding a quarantined run opens (about no identity; `entitlement` is `run N`).
pub const QUARANTINED: &str = "reconcile.quarantined";

/// The thresholds `plan` crosses, each said with its code; empty when it may run.
/// `recent` is what runs of the system changed within the window before this one.
pub fn gate(plan: &Plan, t: &Thresholds, recent: u64) -> Vec<String> {
    let changes = plan.changes();
    let mut reasons = Vec::new();
    if changes > t.max_changes {
        reasons.push(format!("{OVER_CHANGES} {changes} changes, more than max_changes = {}", t.max_changes));
    }
    if let Some(pct) = t.max_percent {
        let accounts = plan.accounts_read.max(1);
        // changes / accounts > pct / 100, in integers.
        if changes.saturating_mul(100) > u64::from(pct).saturating_mul(accounts) && changes > 0 {
            reasons.push(format!(
                "{OVER_PERCENT} {changes} changes of {accounts} accounts, more than max_percent = {pct}%"
            ));
        }
    }
    for (class, max) in &t.per_class {
        let n = plan.items.iter().filter(|i| i.situation == *class && i.reaction.changes()).count() as u64;
        if n > *max {
            reasons.push(format!("{OVER_CLASS} {n} changes for `{class}`, more than max_per_class.{class} = {max}"));
        }
    }
    if changes > 0 && recent.saturating_add(changes) > t.window_max_changes {
        reasons.push(format!(
            "{OVER_WINDOW} {changes} changes on top of {recent} within the last {}s, more than window_max_changes = {}",
            t.window.as_secs(),
            t.window_max_changes
        ));
    }
    reasons
}

/// How far a scan has got (for a progress bar).
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    pub pages: u64,
    pub accounts: u64,
    pub memberships: u64,
    /// Accounts tenure holds in the system: what a progress bar can expect to read at least.
    pub expected: u64,
}

/// Read `system` through `connector`, classify it against what tenure holds, and record the
/// run. An incomplete read is recorded as `reconcile.failed` and returned as the error.
pub async fn reconcile(
    engine: Arc<Engine>,
    connector: &dyn Connector,
    dry_run: bool,
    by: Principal,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<RunView> {
    let system = connector.system().to_owned();
    let e = engine.clone();
    let name = system.clone();
    let (expected, rules, started_at) = tokio::task::spawn_blocking(move || e.reconcile_expected(&name))
        .await
        .map_err(|e| EngineError::Join(e.to_string()))??;
    let mut seen = Progress { expected: expected.accounts_held() as u64, ..Progress::default() };
    let mut classifier = Classifier::new(expected);
    let request = ScanRequest { page_size: rules.page_size, attributes: rules.account_attributes() };
    let read = connector
        .scan(&request, &mut |page| {
            seen.pages += 1;
            seen.accounts += page.accounts.len() as u64;
            seen.memberships +=
                page.memberships.len() as u64 + page.accounts.iter().map(|a| a.memberships.len() as u64).sum::<u64>();
            classifier.page(page);
            progress(seen);
            Ok(())
        })
        .await;
    let e = engine.clone();
    match read {
        Ok(_) => {
            let plan = classifier.finish();
            tokio::task::spawn_blocking(move || e.record_run(&system, plan, started_at, dry_run, &by))
                .await
                .map_err(|e| EngineError::Join(e.to_string()))?
        }
        Err(err) => {
            let message = err.to_string();
            if !dry_run {
                tokio::task::spawn_blocking(move || e.record_failed_run(&system, started_at, &message, &by))
                    .await
                    .map_err(|e| EngineError::Join(e.to_string()))??;
            }
            Err(EngineError::Refused(format!("reconciliation of `{}` applied nothing: {err}", connector.system())))
        }
    }
}

impl Engine {
    /// tenure's own checks (see [`TENURE`]), as a plan to record like any run's.
    pub fn tenure_plan(&self) -> Result<(Plan, OffsetDateTime)> {
        let now = self.clock.now();
        let tx = self.store.read()?;
        let identities = tx.identities()?;
        let by_id: BTreeMap<i64, &tenure_store::IdentityRow> = identities.iter().map(|i| (i.id, i)).collect();
        let by_ref: BTreeMap<String, &tenure_store::IdentityRow> =
            identities.iter().map(|i| (i.reference.to_string(), i)).collect();
        let mut plan = Plan { pages: 1, accounts_read: identities.len() as u64, ..Plan::default() };
        for i in identities.iter().filter(|i| !i.kind.is_human() && i.state.is_current()) {
            let reference = i.reference.to_string();
            let owner = i.owner.as_ref().and_then(|o| by_ref.get(&o.to_string()));
            if !owner.is_some_and(|o| o.kind.is_human() && o.state == tenure_model::LifecycleState::Active) {
                plan.report(Situation::NhiOwnerless, &reference, Some(&reference));
            }
            if i.expires_at.is_some_and(|e| e <= now) {
                plan.report(Situation::NhiExpired, &reference, Some(&reference));
            }
        }
        for c in tx.credentials(None)? {
            let Some(i) = by_id.get(&c.identity_id) else { continue };
            if c.revoked_at.is_none() && c.expires_at > now && i.expires_at.is_some_and(|e| e <= now) {
                plan.report(Situation::CredentialPastExpiry, &c.id, Some(&i.reference.to_string()));
            }
        }
        let linked = plan.accounts_read.saturating_sub(plan.items.len() as u64);
        plan.counts.insert(Situation::Linked, linked);
        plan.sort();
        Ok((plan, now))
    }

    /// What tenure holds of `system`, the system's rules, and the time the run starts.
    pub fn reconcile_expected(&self, system: &str) -> Result<(Expected, ReconcileRules, OffsetDateTime)> {
        let tx = self.store.read()?;
        let policy = self.policy_in(tx.as_ref())?;
        let def = policy
            .systems
            .get(system)
            .ok_or_else(|| EngineError::NotFound(format!("system `{system}` is not in policy {}", policy.version)))?;
        let rules = def.reconcile.clone();
        let started_at = self.clock.now();
        let mut expected = Expected::new(&rules);
        let identities = tx.identities()?;
        let mut refs: BTreeMap<i64, String> = BTreeMap::new();
        for i in &identities {
            let reference = i.reference.to_string();
            expected.identity(&reference, i.state, &i.attributes);
            refs.insert(i.id, reference);
        }
        let mut names: BTreeMap<i64, String> = BTreeMap::new();
        for a in tx.system_accounts(system)? {
            if let Some(r) = refs.get(&a.identity_id) {
                expected.account(r, &a.name, a.state);
                names.insert(a.identity_id, a.name);
            }
        }
        for g in tx.system_grants(system)? {
            let (Some(name), Some(e)) = (names.get(&g.identity_id), policy.entitlements.get(g.entitlement.as_str()))
            else {
                continue;
            };
            expected.grant(name, &e.target, g.state);
        }
        for e in policy.entitlements.values().filter(|e| e.system == system && e.privileged) {
            expected.privileged(&e.target);
        }
        for c in tx.credentials(None)? {
            if let (Some(s), Some(name)) = (&c.system, &c.name)
                && s == system
                && c.kind == tenure_model::CredentialKind::PostgresLogin
            {
                expected.login(name, c.revoked_at.is_none() && c.expires_at > started_at);
            }
        }
        Ok((expected, rules, started_at))
    }

    /// Record a complete read's plan: thresholds, findings, reactions handed to jobs, the run
    /// row and its ledger entry, in one transaction. A dry run records the run (and its entry)
    /// but opens no finding and hands nothing on.
    pub fn record_run(
        &self,
        system: &str,
        mut plan: Plan,
        started_at: OffsetDateTime,
        dry_run: bool,
        by: &Principal,
    ) -> Result<RunView> {
        let now = self.clock.now();
        let policy = self.current_policy()?;
        let rules = policy.systems.get(system).map(|s| s.reconcile.clone()).unwrap_or_default();
        let version = policy.version.to_string();
        let actor = by.actor();
        let mut tx = self.store.write()?;
        // The read took time: what tenure did meanwhile (a joiner provisioned, a grant made, a
        // leaver's account disabled) is not drift. Each item is checked against the store as it
        // is now, in this transaction, before anything is decided.
        let mut stale = Vec::new();
        for (i, item) in plan.items.iter().enumerate() {
            if !still_drift(tx.as_ref(), &policy, system, item)? {
                stale.push(i);
            }
        }
        plan.drop_items(&stale);
        let window = time::Duration::try_from(rules.thresholds.window).unwrap_or(time::Duration::DAY);
        let recent = u64::try_from(tx.changes_since(system, now - window)?).unwrap_or(0);
        let reasons = gate(&plan, &rules.thresholds, recent);
        let decision = if dry_run {
            "dry_run"
        } else if reasons.is_empty() {
            "applied"
        } else {
            "quarantined"
        };
        let digest = plan.digest();
        let items: Vec<Value> = plan.items.iter().map(|i| serde_json::to_value(i).unwrap_or_default()).collect();
        let mut summary = json!({
            "pages": plan.pages, "accounts_read": plan.accounts_read, "memberships_read": plan.memberships_read,
            "reserved": plan.reserved, "counts": plan.counts_json(), "planned_changes": plan.changes(),
            "reasons": reasons, "decision": decision, "actor": actor,
        });
        let id = tx.put_run(&NewRun {
            system,
            state: decision,
            started_at,
            finished_at: now,
            changes: 0,
            summary: &summary,
            plan: &Value::Array(items),
            digest: &digest,
            policy_version: &version,
        })?;
        let stamp = Stamp::new(now, &actor, &version);
        let mut resolved = 0;
        let mut applied = 0;
        if !dry_run {
            // Last sign-ins are observations, recorded whatever the run decides.
            let mut logins = 0u64;
            for (name, at) in &plan.last_logins {
                logins += u64::from(tx.set_account_last_login(system, name, *at)?);
            }
            if let Some(o) = summary.as_object_mut() {
                o.insert("last_logins_recorded".into(), logins.into());
            }
            observe(tx.as_mut(), system, id, &plan.items, decision, &version, now)?;
            resolved = tx.resolve_unseen(system, now, now)?;
            if decision == "applied" {
                applied = react(tx.as_mut(), system, id, plan.items.iter(), &rules, now)?;
                // `review`: people decide, in a micro-review opened in this transaction.
                let asked: Vec<&Item> = plan
                    .items
                    .iter()
                    .filter(|i| i.situation == Situation::Unlinked && i.reaction == Reaction::Review)
                    .collect();
                let ids = identity_ids(tx.as_ref(), asked.iter().copied())?;
                let mut reviews = Vec::new();
                for item in asked {
                    let Some(identity) = item.identity.as_ref().and_then(|r| ids.get(r)) else { continue };
                    let Some(row) = tx.identity_by_id(*identity)? else { continue };
                    reviews.extend(crate::reviews::on_unlinked(
                        tx.as_mut(),
                        &policy,
                        (system, id),
                        &item.account,
                        &row,
                        now,
                    )?);
                }
                if let Some(o) = summary.as_object_mut() {
                    o.insert("reviews_opened".into(), json!(reviews));
                }
            } else {
                let detail = json!({ "run": id, "system": system, "reasons": reasons });
                tx.open_finding(&NewFinding {
                    identity_id: None,
                    kind: QUARANTINED,
                    entitlement: &format!("{system} run {id}"),
                    detail: &detail,
                    policy_version: &version,
                    at: now,
                })?;
            }
        }
        let event = LedgerEvent::ReconcileRun(ReconcileRun {
            run: id,
            system: system.to_owned(),
            pages: plan.pages,
            accounts_read: plan.accounts_read,
            memberships_read: plan.memberships_read,
            counts: plan.counts.iter().map(|(s, n)| (s.as_str().to_owned(), *n)).collect(),
            changes: plan.changes(),
            plan_digest: digest,
            decision: decision.to_owned(),
            reasons,
            resolved,
        });
        let seq = tx.append_entry(&NewEntry {
            at: stamp.at,
            actor: stamp.actor,
            subject: &tenure_ledger::drift::subject(system),
            policy_version: stamp.version,
            event: &event,
            request_id: crate::telemetry::request_id().as_deref(),
        })?;
        tx.set_run_entry(id, seq)?;
        if let Some(o) = summary.as_object_mut() {
            o.insert("resolved".into(), resolved.into());
        }
        tx.update_run(id, decision, applied, &summary)?;
        let row = tx.run(id)?.ok_or_else(|| EngineError::NotFound(format!("run {id}")))?;
        tx.commit()?;
        Ok(run_view(row, true))
    }

    /// A read that stopped part way: a `failed` run (so the schedule waits its interval before
    /// the next try) and its ledger entry; no finding opens or resolves, nothing is handed on.
    pub fn record_failed_run(
        &self,
        system: &str,
        started_at: OffsetDateTime,
        error: &str,
        by: &Principal,
    ) -> Result<()> {
        let now = self.clock.now();
        let version = self.current_policy()?.version.to_string();
        let actor = by.actor();
        let mut tx = self.store.write()?;
        let summary = json!({ "decision": "failed", "error": error, "actor": actor });
        let id = tx.put_run(&NewRun {
            system,
            state: "failed",
            started_at,
            finished_at: now,
            changes: 0,
            summary: &summary,
            plan: &json!([]),
            digest: "",
            policy_version: &version,
        })?;
        let event = LedgerEvent::ReconcileFailed(ReconcileFailed {
            run: id,
            system: system.to_owned(),
            error: error.to_owned(),
        });
        let seq = tx.append_entry(&NewEntry {
            at: now,
            actor: &actor,
            subject: &tenure_ledger::drift::subject(system),
            policy_version: &version,
            event: &event,
            request_id: crate::telemetry::request_id().as_deref(),
        })?;
        tx.set_run_entry(id, seq)?;
        tx.commit()?;
        Ok(())
    }

    /// Release a quarantined run: every item, or only those of some classes or accounts. What
    /// is released goes to jobs now; the run stays quarantined until everything is released.
    pub fn release_run(&self, id: i64, only: &[Situation], accounts: &[String], by: &Principal) -> Result<RunView> {
        let now = self.clock.now();
        let version = self.current_policy()?.version.to_string();
        let actor = by.actor();
        let mut tx = self.store.write()?;
        let run = tx.run(id)?.ok_or_else(|| EngineError::NotFound(format!("reconciliation run {id}")))?;
        if run.state != "quarantined" {
            return Err(EngineError::Conflict(format!(
                "run {id} is {}, not quarantined: nothing to release",
                run.state
            )));
        }
        let items: Vec<Item> =
            serde_json::from_value(run.plan.clone()).map_err(|e| EngineError::Encode(e.to_string()))?;
        let rules = self.current_policy()?.systems.get(&run.system).map(|s| s.reconcile.clone()).unwrap_or_default();
        let mut summary = run.summary.clone();
        let done: BTreeSet<usize> = summary
            .get("released_items")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_u64().and_then(|n| usize::try_from(n).ok()))
            .collect();
        let chosen: Vec<usize> = items
            .iter()
            .enumerate()
            .filter(|(i, item)| {
                !done.contains(i)
                    && item.reaction.changes()
                    && (only.is_empty() || only.contains(&item.situation))
                    && (accounts.is_empty() || accounts.contains(&item.account))
            })
            .map(|(i, _)| i)
            .collect();
        if chosen.is_empty() {
            return Err(EngineError::Invalid {
                field: "release".into(),
                message: format!("run {id} has no unreleased change matching the selection"),
            });
        }
        let applied = react(tx.as_mut(), &run.system, id, chosen.iter().filter_map(|i| items.get(*i)), &rules, now)?;
        let all: BTreeSet<usize> = done.iter().copied().chain(chosen.iter().copied()).collect();
        let pending = items.iter().enumerate().any(|(i, item)| item.reaction.changes() && !all.contains(&i));
        let state = if pending { "quarantined" } else { "released" };
        if let Some(o) = summary.as_object_mut() {
            o.insert("released_items".into(), json!(all));
        }
        tx.update_run(id, state, run.changes + applied, &summary)?;
        if !pending {
            tx.resolve_finding(None, QUARANTINED, &format!("{} run {id}", run.system), now)?;
        }
        record(
            tx.as_mut(),
            Stamp::new(now, &actor, &version),
            &tenure_ledger::drift::subject(&run.system),
            LedgerEvent::ReconcileReleased(ReconcileReleased {
                run: id,
                system: run.system.clone(),
                released: chosen.len() as u64,
                only: only.iter().map(|s| s.as_str().to_owned()).collect(),
                accounts: accounts.to_vec(),
            }),
        )?;
        let row = tx.run(id)?.ok_or_else(|| EngineError::NotFound(format!("run {id}")))?;
        tx.commit()?;
        Ok(run_view(row, true))
    }

    /// Systems whose `reconcile.every` has passed since their last run started.
    pub fn reconcile_due(&self) -> Result<Vec<String>> {
        let policy = self.current_policy()?;
        let now = self.clock.now();
        let tx = self.store.read()?;
        let mut due = Vec::new();
        let schedule = policy
            .systems
            .iter()
            .filter_map(|(name, def)| Some((name.as_str(), time::Duration::try_from(def.reconcile.every?).ok()?)))
            .chain([(TENURE, TENURE_EVERY)]);
        for (name, every) in schedule {
            let last = tx.runs(Some(name), None, 1)?.into_iter().next();
            if last.is_none_or(|r| r.started_at + every <= now) {
                due.push(name.to_owned());
            }
        }
        Ok(due)
    }

    /// One run, with its items.
    pub fn run_view(&self, id: i64) -> Result<RunView> {
        let row =
            self.store.read()?.run(id)?.ok_or_else(|| EngineError::NotFound(format!("reconciliation run {id}")))?;
        Ok(run_view(row, true))
    }

    /// Runs, newest first (without their items).
    /// Runs, newest first (without their plans): at most `limit` with an id below `before`,
    /// and the id the next page starts before (none on the last).
    pub fn runs_page(
        &self,
        system: Option<&str>,
        before: Option<i64>,
        limit: u32,
    ) -> Result<(Vec<RunView>, Option<i64>)> {
        let mut rows = self.store.read()?.runs(system, before, limit.saturating_add(1))?;
        let next = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last().map(|r| r.id)
        } else {
            None
        };
        Ok((rows.into_iter().map(|r| run_view(r, false)).collect(), next))
    }

    /// The signed drift report of a run (see [`tenure_ledger::drift`]).
    pub fn drift_report(&self, id: i64, signer: &tenure_ledger::Signer) -> Result<Value> {
        use tenure_ledger::drift::{CONTEXT, VERSION};
        use tenure_ledger::entry::{canonical_json, sorted};
        let run =
            self.store.read()?.run(id)?.ok_or_else(|| EngineError::NotFound(format!("reconciliation run {id}")))?;
        if run.state == "failed" {
            return Err(EngineError::Conflict(format!(
                "run {id} stopped before it read everything: it has no plan to report"
            )));
        }
        let seq = run.ledger_seq.ok_or_else(|| EngineError::Ledger(format!("run {id} has no ledger entry")))?;
        let subject = tenure_ledger::drift::subject(&run.system);
        let mut seqs = vec![seq];
        for row in self.store.read()?.ledger_for(&subject)? {
            if let LedgerEvent::ReconcileReleased(r) = &row.event
                && r.run == id
            {
                seqs.push(row.seq);
            }
        }
        let crate::ledger::Evidence { checkpoint: cp, items: evidence, entries } = self.evidence(&seqs, signer)?;
        let finished_at = entries.get(&seq).map(|e| e.at.clone()).unwrap_or_default();
        let decision = run.summary.get("decision").cloned().unwrap_or(Value::Null);
        let report = json!({
            "version": VERSION,
            "run": id,
            "system": run.system,
            "state": run.state,
            "started_at": rfc3339(run.started_at),
            "finished_at": finished_at,
            "policy_version": run.policy_version,
            "decision": decision,
            "reasons": run.summary.get("reasons").cloned().unwrap_or(Value::Null),
            "counts": run.summary.get("counts").cloned().unwrap_or(Value::Null),
            "accounts_read": run.summary.get("accounts_read").cloned().unwrap_or(Value::Null),
            "plan_digest": run.digest,
            "items": run.plan,
            "evidence": evidence,
            "tree_size": cp.size,
            "checkpoint": cp.note,
        });
        let signature = signer.sign_message(CONTEXT, &canonical_json(&report));
        Ok(sorted(&json!({ "report": report, "signature": signature, "signer": signer.verifier().to_string() })))
    }
}

/// Whether an item found by a read that started earlier is still drift against the store now.
fn still_drift(
    tx: &dyn tenure_store::ReadTx,
    policy: &tenure_policy::Bundle,
    system: &str,
    item: &Item,
) -> Result<bool> {
    if system == TENURE {
        return Ok(true);
    }
    let held = tx.account_by_name(system, &item.account)?;
    let grant = |identity_id: i64| -> Result<Option<tenure_model::GrantState>> {
        let ids: Vec<&str> = policy
            .entitlements
            .values()
            .filter(|e| e.system == system && e.target == item.target)
            .map(|e| e.id.as_str())
            .collect();
        Ok(tx.grants(identity_id)?.into_iter().find(|g| ids.contains(&g.entitlement.as_str())).map(|g| g.state))
    };
    Ok(match item.situation {
        // Made by tenure meanwhile (a joiner provisioned during the read).
        Situation::Unlinked | Situation::Unmatched | Situation::Disputed if !item.managed => held.is_none(),
        Situation::Missing => {
            held.is_some_and(|a| matches!(a.state, AccountState::Verified | AccountState::DisableVerified))
        }
        Situation::MissingMembership => match held {
            Some(a) => grant(a.identity_id)? == Some(tenure_model::GrantState::Verified),
            None => false,
        },
        Situation::UnmanagedMembership | Situation::PrivilegedMembership if item.managed => match held {
            Some(a) => !grant(a.identity_id)?.is_some_and(tenure_model::GrantState::is_wanted),
            None => false,
        },
        Situation::SurvivingLeaver | Situation::EnabledWhileSuspended if item.managed => held.is_some_and(|a| {
            matches!(a.state, AccountState::DisableVerified | AccountState::Deleting | AccountState::DeleteVerified)
        }),
        _ => true,
    })
}

/// The ids of the identities the items name (each looked up once; one that is gone is absent).
fn identity_ids<'a>(
    tx: &dyn tenure_store::ReadTx,
    items: impl Iterator<Item = &'a Item>,
) -> Result<BTreeMap<String, i64>> {
    let mut ids = BTreeMap::new();
    for r in items.filter_map(|i| i.identity.as_ref()) {
        if !ids.contains_key(r)
            && let Ok(parsed) = r.parse()
            && let Some(i) = tx.identity(&parsed)?
        {
            ids.insert(r.clone(), i.id);
        }
    }
    Ok(ids)
}

/// Open or refresh a finding per item.
fn observe(
    tx: &mut dyn WriteTx,
    system: &str,
    run: i64,
    items: &[Item],
    decision: &str,
    version: &str,
    now: OffsetDateTime,
) -> Result<()> {
    let ids = identity_ids(tx, items.iter())?;
    for item in items {
        let Some(kind) = item.situation.finding_kind() else { continue };
        let identity_id = item.identity.as_ref().and_then(|r| ids.get(r).copied());
        let detail = json!({
            "run": run, "situation": item.situation, "reaction": item.reaction, "decision": decision,
            "identity": item.identity, "candidates": item.candidates, "managed": item.managed,
        });
        tx.observe(&Observation {
            identity_id,
            kind: &kind,
            system,
            account: &item.account,
            target: &item.target,
            detail: &detail,
            policy_version: version,
            at: now,
        })?;
    }
    Ok(())
}

/// Hand the items' reactions to jobs; how many items that was. Access on an account tenure made
/// goes through the identity's sync job (after the account is set back to `disabling`, so the
/// job reads it back and records the result); everything else through a drift job per account.
fn react<'a>(
    tx: &mut dyn WriteTx,
    system: &str,
    run: i64,
    items: impl Iterator<Item = &'a Item>,
    rules: &ReconcileRules,
    now: OffsetDateTime,
) -> Result<i64> {
    let mut applied = 0;
    let mut sync: BTreeSet<i64> = BTreeSet::new();
    let mut drift: BTreeMap<String, Drift> = BTreeMap::new();
    let items: Vec<&Item> = items.filter(|i| i.reaction.changes()).collect();
    let ids = identity_ids(tx, items.iter().copied())?;
    for item in items {
        applied += 1;
        let identity = item.identity.as_ref().and_then(|r| ids.get(r).copied());
        let leaver_or_suspended =
            matches!(item.situation, Situation::SurvivingLeaver | Situation::EnabledWhileSuspended);
        if item.managed && leaver_or_suspended && item.reaction == Reaction::Disable {
            if let Some(id) = identity {
                if let Some(a) = tx.accounts(id)?.into_iter().find(|a| a.system == system) {
                    tx.set_account_state(id, system, a.rev, AccountState::Disabling, now)?;
                }
                sync.insert(id);
            }
            continue;
        }
        let entry = drift.entry(item.account.clone()).or_default();
        entry.identity_id = entry.identity_id.or(identity);
        match item.reaction {
            Reaction::Disable => entry.disable = true,
            // Disabled now, deleted once the grace period is over (a follow-up drift job).
            Reaction::Delete => {
                entry.disable = true;
                let grace = time::Duration::try_from(rules.delete_after).unwrap_or(time::Duration::WEEK);
                entry.delete_at = Some(now + grace);
            }
            Reaction::Revoke if !item.target.is_empty() => {
                entry.revoke.insert(item.target.clone());
            }
            Reaction::Adopt => entry.adopt.clone_from(&item.identity),
            _ => {}
        }
    }
    for identity_id in sync {
        tx.enqueue(&NewJob {
            kind: tenure_store::JobKind::Sync,
            identity_id,
            system,
            run_at: now,
            request_id: crate::telemetry::request_id().as_deref(),
        })?;
    }
    for (account, d) in drift {
        let payload = json!({
            "run": run, "disable": d.disable, "revoke": d.revoke, "delete_at": d.delete_at.map(rfc3339),
            "adopt": d.adopt,
        });
        let job = NewDriftJob { identity_id: d.identity_id, system, account: &account, payload: &payload, run_at: now };
        tx.enqueue_drift(&job)?;
    }
    Ok(applied)
}

/// What a drift job is to do to one account.
#[derive(Default)]
struct Drift {
    identity_id: Option<i64>,
    disable: bool,
    /// Delete at this time (disabled until then).
    delete_at: Option<OffsetDateTime>,
    revoke: BTreeSet<String>,
    /// Mark the account as tenure's for this identity and manage it from then on.
    adopt: Option<String>,
}

fn run_view(r: RunRow, with_items: bool) -> RunView {
    let s = &r.summary;
    let n = |k: &str| s.get(k).and_then(Value::as_u64).unwrap_or(0);
    RunView {
        id: r.id,
        system: r.system,
        state: r.state,
        started_at: rfc3339(r.started_at),
        finished_at: rfc3339(r.finished_at),
        pages: n("pages"),
        accounts_read: n("accounts_read"),
        memberships_read: n("memberships_read"),
        counts: s
            .get("counts")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
            .collect(),
        planned_changes: n("planned_changes"),
        applied_changes: r.changes,
        reasons: s
            .get("reasons")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        plan_digest: r.digest,
        ledger_seq: r.ledger_seq,
        error: s.get("error").and_then(Value::as_str).map(str::to_owned),
        reviews_opened: s
            .get("reviews_opened")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_i64)
            .collect(),
        last_logins_recorded: n("last_logins_recorded"),
        items: if with_items { r.plan.as_array().cloned().unwrap_or_default() } else { Vec::new() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(changes: usize, reports: usize, accounts: u64) -> Plan {
        let item = |reaction| Item {
            situation: Situation::Unmatched,
            account: "a".into(),
            target: String::new(),
            identity: None,
            candidates: vec![],
            managed: false,
            reaction,
        };
        let mut items: Vec<Item> = (0..changes).map(|_| item(Reaction::Disable)).collect();
        items.extend((0..reports).map(|_| item(Reaction::Report)));
        Plan { items, accounts_read: accounts, ..Plan::default() }
    }

    #[test]
    fn thresholds_name_their_code_and_reports_never_count() {
        let t = Thresholds {
            max_changes: 3,
            max_percent: Some(10),
            per_class: BTreeMap::new(),
            window: std::time::Duration::from_secs(3600),
            window_max_changes: 5,
        };
        assert!(gate(&plan(3, 1000, 100), &t, 0).is_empty());
        let over = gate(&plan(4, 0, 1000), &t, 0);
        assert!(over.len() == 1 && over[0].starts_with(OVER_CHANGES), "{over:?}");
        let pct = gate(&plan(2, 0, 10), &t, 0);
        assert!(pct.len() == 1 && pct[0].starts_with(OVER_PERCENT), "{pct:?}");
        // A slow drip: each run under its limit, the window not.
        let drip = gate(&plan(2, 0, 1000), &t, 4);
        assert!(drip.len() == 1 && drip[0].starts_with(OVER_WINDOW), "{drip:?}");
        assert!(gate(&plan(0, 5, 1), &t, 100).is_empty(), "a run that changes nothing is never held");
        let mut per = t.clone();
        per.per_class.insert(Situation::Unmatched, 1);
        assert!(gate(&plan(2, 0, 1000), &per, 0).iter().any(|r| r.starts_with(OVER_CLASS)));
    }
}
