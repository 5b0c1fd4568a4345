//! Reconciliation's part of the workers: running a system's reconciliation with its connector
//! (or tenure's own checks), the schedule, and drift jobs — disable, delete after a grace
//! period, revoke or adopt one account as a run decided, verified by reading it back.

use super::{Outcome, Workers, fail};
use crate::ledger::{Stamp, record_seq};
use crate::{EngineError, Result};
use tenure_ledger::LedgerEvent;
use tenure_ledger::event::ReadBack;
use tenure_model::AccountState;
use tenure_store::{JobKind, JobRow};
use time::OffsetDateTime;

impl Workers {
    /// `tenure systems check` over the deployed policy with these workers' settings: every
    /// system, or only `only` (not in policy: `NotFound`).
    pub async fn check_systems(&self, only: Option<&str>) -> Result<Vec<tenure_proto::SystemReport>> {
        let policy = self.blocking(|e| e.current_policy()).await?;
        crate::check::check_systems(&policy, &self.lookup, only).await.ok_or_else(|| {
            EngineError::NotFound(format!("system `{}` is not in policy {}", only.unwrap_or_default(), policy.version))
        })
    }

    /// Reconcile one system (see [`crate::reconcile`]) with its connector from the current policy.
    pub async fn reconcile(
        &self,
        system: &str,
        dry_run: bool,
        by: tenure_model::Principal,
        progress: &mut (dyn FnMut(crate::reconcile::Progress) + Send),
    ) -> Result<tenure_proto::RunView> {
        let policy = self.blocking(|e| e.current_policy()).await?;
        let own = system == crate::reconcile::TENURE;
        if !own && !policy.systems.contains_key(system) {
            return Err(EngineError::NotFound(format!("system `{system}` is not in policy {}", policy.version)));
        }
        // One run per system at a time (in this process); lifecycle jobs are never held up.
        let inserted =
            self.reconciling.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(system.to_owned());
        if !inserted {
            return Err(EngineError::Conflict(format!("a reconciliation run of `{system}` is in progress")));
        }
        let started = std::time::Instant::now();
        let run = if own {
            self.blocking(move |e| {
                let (plan, started_at) = e.tenure_plan()?;
                e.record_run(crate::reconcile::TENURE, plan, started_at, dry_run, &by)
            })
            .await
        } else {
            match self.systems_for(&policy).await.get(system) {
                Ok(c) => crate::reconcile::reconcile(self.engine.clone(), c.as_ref(), dry_run, by, progress).await,
                Err(e) => Err(EngineError::Refused(e.to_string())),
            }
        };
        self.reconciling.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(system);
        let state = run.as_ref().map_or("failed", |r| r.state.as_str());
        self.engine.telemetry().reconcile(system, state, started.elapsed());
        self.notify();
        run
    }

    /// Run every system whose `reconcile.every` has passed since its last run (as the engine);
    /// what each came to.
    pub async fn reconcile_due(&self) -> Vec<(String, Result<tenure_proto::RunView>)> {
        let due = self.blocking(|e| e.reconcile_due()).await.unwrap_or_default();
        let mut out = Vec::new();
        for system in due {
            let by = tenure_model::Principal::operator(crate::ACTOR_ENGINE);
            let r = self.reconcile(&system, false, by, &mut |_| {}).await;
            out.push((system, r));
        }
        out
    }

    /// Carry out a drift job: disable, delete (after its grace period), revoke or adopt one
    /// account as its run decided, then read the account back; the `reconcile.corrected` entry
    /// says what the read showed.
    pub(super) async fn run_drift(&self, job: &JobRow) -> Result<Outcome> {
        let policy = self.blocking(|e| e.current_policy()).await?;
        let systems = self.systems_for(&policy).await;
        let d = DriftWork::of(job, self.engine.clock.now());
        // Adopting needs the identity, with no account of its own in the system yet.
        let (system, adopt) = (job.system.clone(), d.adopt.clone());
        let adopter = self
            .blocking(move |e| {
                let Some(r) = adopt else { return Ok(None) };
                let tx = e.store.read()?;
                let reference = r.parse().map_err(|_| EngineError::NotFound(r.clone()))?;
                let identity = tx.identity(&reference)?.ok_or_else(|| EngineError::NotFound(r.clone()))?;
                let held = tx.accounts(identity.id)?.into_iter().find(|a| a.system == system);
                Ok(Some((identity.id, r, held.map(|a| a.name))))
            })
            .await;
        let name = job.account.clone();
        let result: std::result::Result<Option<tenure_connectors::AccountRecord>, String> = async {
            if let Ok(Some((_, r, Some(held)))) = &adopter {
                return Err(format!("`{r}` already holds `{held}` in {}: not adopting `{name}`", job.system));
            }
            let c = systems.get(&job.system).map_err(|e| e.to_string())?;
            if d.delete_now {
                c.delete_account(&name).await.map_err(|e| e.to_string())?;
            } else {
                if d.disable {
                    c.disable_account(&name).await.map_err(|e| e.to_string())?;
                }
                for t in &d.revoke {
                    c.revoke(&name, t).await.map_err(|e| e.to_string())?;
                }
                if let Ok(Some((_, r, None))) = &adopter {
                    c.mark(&name, r).await.map_err(|e| e.to_string())?;
                }
            }
            c.read_account(&name).await.map_err(|e| e.to_string())
        }
        .await;
        let adopter = adopter?;
        let job = job.clone();
        let config = self.config.clone();
        self.blocking(move |e| {
            let now = e.clock.now();
            let version = e.current_policy()?.version.to_string();
            let mut tx = e.store.write()?;
            let subject = tenure_ledger::drift::subject(&job.system);
            let read = match result {
                Ok(r) => r,
                Err(err) => {
                    let outcome = fail(tx.as_mut(), &job, &err, now, &config, &subject, &version)?;
                    if outcome != Outcome::Stale {
                        tx.commit()?;
                    }
                    return Ok(outcome);
                }
            };
            let read_back = ReadBack {
                present: read.is_some(),
                enabled: read.as_ref().is_some_and(|r| r.enabled),
                memberships: read.as_ref().map(|r| r.memberships.iter().cloned().collect()).unwrap_or_default(),
            };
            let mut problems = Vec::new();
            if d.delete_now && read_back.present {
                problems.push(format!("`{}` is still present after deletion", job.account));
            }
            if d.disable && !d.delete_now && read_back.enabled {
                problems.push(format!("`{}` is still enabled", job.account));
            }
            for t in d.revoke.iter().filter(|t| read_back.memberships.contains(t)) {
                problems.push(format!("`{}` is still a member of `{t}`", job.account));
            }
            let adopted = adopter.as_ref().map(|(_, r, _)| r.clone());
            if let Some((_, r, _)) = &adopter
                && read.as_ref().and_then(|a| a.managed_by.as_deref()) != Some(r.as_str())
            {
                problems.push(format!("`{}` does not read back marked for `{r}`", job.account));
            }
            let identity = match job.identity_id {
                Some(id) => tx.identity_by_id(id)?.map(|i| i.reference.to_string()),
                None => None,
            };
            let corrected = tenure_ledger::event::ReconcileCorrected {
                run: d.run,
                system: job.system.clone(),
                account: job.account.clone(),
                identity,
                disabled: d.disable && !d.delete_now,
                deleted: d.delete_now,
                revoked: d.revoke.clone(),
                adopted,
                delete_at: d.delete_at.filter(|_| !d.delete_now).map(tenure_model::rfc3339),
                read_back,
                problems: problems.clone(),
            };
            let outcome = if !problems.is_empty() {
                fail(tx.as_mut(), &job, &problems.join("; "), now, &config, &subject, &version)?
            } else if !tx.finish_job(&job, now)? {
                Outcome::Stale
            } else {
                if let Some((identity_id, _, _)) = adopter {
                    // tenure's now: held like an account it made, and converged to what the
                    // identity should hold there (an account is enabled only while it holds an
                    // entitlement in the system).
                    let wanted = tx.grants(identity_id)?.iter().any(|g| g.system == job.system && g.state.is_wanted());
                    let state = if wanted { AccountState::Verified } else { AccountState::Disabling };
                    tx.put_account(identity_id, &job.system, &job.account, state, now)?;
                    tx.enqueue(&tenure_store::NewJob {
                        kind: JobKind::Sync,
                        identity_id,
                        system: &job.system,
                        run_at: now,
                        request_id: crate::telemetry::request_id().as_deref(),
                    })?;
                }
                if let Some(at) = d.delete_at.filter(|_| !d.delete_now) {
                    let payload = serde_json::json!({ "run": d.run, "delete": true });
                    tx.enqueue_drift(&tenure_store::NewDriftJob {
                        identity_id: job.identity_id,
                        system: &job.system,
                        account: &job.account,
                        payload: &payload,
                        run_at: at,
                    })?;
                }
                Outcome::Verified
            };
            // What the read-back showed is recorded either way; a stale attempt's transaction
            // is dropped, not committed: it rolls back.
            if outcome != Outcome::Stale {
                let verified = outcome == Outcome::Verified && corrected.disabled;
                let seq = record_seq(
                    tx.as_mut(),
                    Stamp::engine(now, &version),
                    &subject,
                    LedgerEvent::ReconcileCorrected(corrected),
                )?;
                // A reviewer's revoke of an account: this entry is its verification.
                if let Some(item) = d.review_item.filter(|_| verified) {
                    tx.set_review_item_verified(item, seq)?;
                }
                tx.commit()?;
            }
            Ok(outcome)
        })
        .await
    }
}

/// What a drift job's payload asks.
struct DriftWork {
    run: i64,
    disable: bool,
    revoke: Vec<String>,
    delete_at: Option<OffsetDateTime>,
    /// Delete now: a follow-up job, or the grace period is over.
    delete_now: bool,
    adopt: Option<String>,
    /// The review item (an account under review) whose decision this carries out.
    review_item: Option<i64>,
}

impl DriftWork {
    fn of(job: &JobRow, now: OffsetDateTime) -> Self {
        let p = job.payload.clone().unwrap_or_default();
        let flag = |k: &str| p.get(k).and_then(serde_json::Value::as_bool).unwrap_or(false);
        let delete_at = p
            .get("delete_at")
            .and_then(serde_json::Value::as_str)
            .and_then(|t| OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok());
        Self {
            run: p.get("run").and_then(serde_json::Value::as_i64).unwrap_or(0),
            disable: flag("disable"),
            revoke: p
                .get("revoke")
                .and_then(serde_json::Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            delete_now: flag("delete") || delete_at.is_some_and(|t| t <= now),
            delete_at,
            adopt: p.get("adopt").and_then(serde_json::Value::as_str).map(str::to_owned),
            review_item: p.get("review_item").and_then(serde_json::Value::as_i64),
        }
    }
}
