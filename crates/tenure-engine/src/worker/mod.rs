//! Outbox workers. A job is claimed under a lease in its own transaction; the work runs against
//! the system; the outcome (grant and account verification, lifecycle transitions, ledger entry,
//! job completion) commits in one transaction. A crash between claim and completion only lets
//! the lease run out: the job is claimed again and, being convergent, does the same thing.
//!
//! A sync job makes one identity's account in one system what the store wants, then reads it
//! back; for a leaver it also sweeps the system for correlated accounts tenure did not make
//! (`worker/sweep.rs`). Only what the read-back shows is marked verified. Reconciliation runs
//! and their drift jobs are in `worker/drift.rs`.

use crate::creds::{CredentialRequest, Verification};
use crate::ledger::{Stamp, record};
use crate::systems::{Lookup, Systems};
use crate::{Engine, EngineError, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tenure_connectors::{AccountSpec, Connector, ConnectorError, Probe};
use tenure_ledger::LedgerEvent;
use tenure_ledger::event::{CredentialCheck, JobDead, JobsRetried, Present, ProbeResult, ReadBack, Synced};
use tenure_model::{AccountState, CredentialKind, GrantState};
use tenure_policy::Bundle;
use tenure_proto::IssuedCredentialView;
use tenure_store::{AccountRow, DeadJobs, GrantRow, IdentityRow, JobKind, JobRow, JobState, WriteTx};
use time::{Duration, OffsetDateTime};
use tokio::sync::{Mutex, Notify, watch};

mod drift;
mod notify;
mod sweep;

/// How workers behave.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Jobs run at once.
    pub concurrency: usize,
    /// How long a claimed job is reserved for its worker; after that another may take it.
    pub lease: Duration,
    /// Attempts before a job is dead-lettered.
    pub max_attempts: i64,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// How often an idle worker looks for due jobs (it is also woken by [`Workers::notify`]).
    pub poll: std::time::Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            concurrency: 4,
            lease: Duration::seconds(30),
            max_attempts: 10,
            backoff_base: Duration::seconds(1),
            backoff_max: Duration::minutes(5),
            poll: std::time::Duration::from_millis(250),
        }
    }
}

/// What one job run came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done and verified.
    Verified,
    /// Failed; will be retried.
    Retry(String),
    /// Failed for the last time; dead-lettered.
    Dead(String),
    /// This attempt lost its job (its lease ran out and another attempt holds it): nothing it
    /// did was recorded.
    Stale,
}

/// What [`Workers::run_until_idle_report`] ran.
#[derive(Debug, Default)]
pub struct RunReport {
    /// Attempts made.
    pub ran: usize,
    /// Attempts that finished their job.
    pub verified: usize,
    /// Attempts that failed: the job, the error, and whether it is now dead.
    pub failed: Vec<(JobRow, String, bool)>,
}

/// Milliseconds since this process first asked (monotonic), plus one: 0 means "never".
fn monotonic_millis() -> i64 {
    static BASE: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let base = BASE.get_or_init(std::time::Instant::now);
    i64::try_from(base.elapsed().as_millis()).unwrap_or(i64::MAX).saturating_add(1)
}

tokio::task_local! {
    /// The request id of the job this task runs, for the blocking work it hands off.
    static JOB_REQUEST: Option<String>;
}

/// The job runner of one engine.
pub struct Workers {
    engine: Arc<Engine>,
    lookup: Lookup,
    config: WorkerConfig,
    systems: Mutex<Option<Arc<Systems>>>,
    wake: Notify,
    /// Systems a reconciliation run is reading now: one run per system at a time.
    reconciling: std::sync::Mutex<BTreeSet<String>>,
    /// When the runners last beat ([`monotonic_millis`]); 0 when they are not running.
    heartbeat: std::sync::atomic::AtomicI64,
}

impl Workers {
    pub fn new(engine: Arc<Engine>, lookup: Lookup, config: WorkerConfig) -> Self {
        Self {
            engine,
            lookup,
            config,
            systems: Mutex::new(None),
            wake: Notify::new(),
            reconciling: std::sync::Mutex::new(BTreeSet::new()),
            heartbeat: std::sync::atomic::AtomicI64::new(0),
        }
    }

    /// Wake idle workers (new jobs were enqueued).
    pub fn notify(&self) {
        self.wake.notify_waiters();
    }

    async fn systems_for(&self, policy: &Bundle) -> Arc<Systems> {
        let mut slot = self.systems.lock().await;
        match slot.as_ref() {
            Some(s) if s.version == policy.version.as_str() => s.clone(),
            _ => {
                let s = Arc::new(Systems::build(policy, &self.lookup));
                *slot = Some(s.clone());
                s
            }
        }
    }

    async fn blocking<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Engine) -> Result<T> + Send + 'static,
    {
        let engine = self.engine.clone();
        // Inside a job, what it writes carries the request the job came of.
        let request = JOB_REQUEST.try_with(Clone::clone).ok().flatten();
        tokio::task::spawn_blocking(move || crate::telemetry::with_request_id(request.as_deref(), || f(&engine)))
            .await
            .map_err(|e| EngineError::Join(e.to_string()))?
    }

    /// Whether the job runners beat within `within` (false before [`Workers::run`] started
    /// and after it stopped).
    pub fn beating(&self, within: std::time::Duration) -> bool {
        let last = self.heartbeat.load(std::sync::atomic::Ordering::Relaxed);
        last > 0 && monotonic_millis().saturating_sub(last) <= i64::try_from(within.as_millis()).unwrap_or(i64::MAX)
    }

    /// Claim and run one due job; `None` when nothing is due.
    pub async fn run_one(&self) -> Result<Option<(JobRow, Outcome)>> {
        let lease = self.config.lease;
        let job = self
            .blocking(move |e| {
                let now = e.clock.now();
                let mut tx = e.store.write()?;
                let job = tx.claim_job(now, lease)?;
                tx.commit()?;
                Ok(job)
            })
            .await?;
        let Some(job) = job else { return Ok(None) };
        let started = std::time::Instant::now();
        let work = async {
            match job.kind {
                JobKind::Sync => self.run_sync(&job).await,
                JobKind::Credentials => self.run_credentials(&job).await,
                JobKind::Drift => self.run_drift(&job).await,
                JobKind::Notify => self.run_notify(&job).await,
            }
        };
        let outcome = JOB_REQUEST.scope(job.request_id.clone(), self.holding(&job, work)).await?;
        let (label, error) = match &outcome {
            Outcome::Verified => ("done", None),
            Outcome::Stale => ("stale", None),
            Outcome::Retry(e) => ("retry", Some(e.as_str())),
            Outcome::Dead(e) => ("dead", Some(e.as_str())),
        };
        self.engine.telemetry().job(&job.system, job.kind.as_str(), label, started.elapsed(), error);
        if outcome == Outcome::Stale {
            tracing::warn!(job = job.id, attempt = job.attempts, system = %job.system, "a stale attempt was fenced off; nothing of it was recorded");
        }
        Ok(Some((job, outcome)))
    }

    /// Run an attempt while renewing its lease, so a slow system does not let another worker
    /// claim the same job while this attempt still runs. Should renewal fail (the lease ran out
    /// anyway, say the process stalled), the attempt is fenced: it can no longer finish or
    /// fail the job, and what it computed is rolled back.
    async fn holding<T>(&self, job: &JobRow, work: impl std::future::Future<Output = T>) -> T {
        let lease = self.config.lease;
        let every = std::time::Duration::try_from(lease / 3)
            .unwrap_or(std::time::Duration::from_secs(1))
            .max(std::time::Duration::from_millis(50));
        let mut work = std::pin::pin!(work);
        loop {
            tokio::select! {
                out = &mut work => return out,
                _ = tokio::time::sleep(every) => {
                    let held = job.clone();
                    let renewed = self
                        .blocking(move |e| {
                            let mut tx = e.store.write()?;
                            let ok = tx.renew_lease(&held, e.clock.now() + lease)?;
                            tx.commit()?;
                            Ok(ok)
                        })
                        .await;
                    match renewed {
                        Ok(true) => {}
                        Ok(false) => tracing::warn!(job = job.id, attempt = job.attempts, "lease lost while the attempt runs"),
                        Err(e) => tracing::warn!(job = job.id, error = %e, "lease renewal failed"),
                    }
                }
            }
        }
    }

    /// Run jobs until none is due; returns how many ran.
    pub async fn run_until_idle(&self) -> Result<usize> {
        Ok(self.run_until_idle_report().await?.ran)
    }

    /// [`Workers::run_until_idle`], saying how the attempts ended.
    pub async fn run_until_idle_report(&self) -> Result<RunReport> {
        let mut report = RunReport::default();
        loop {
            let mut batch = Vec::new();
            for _ in 0..self.config.concurrency.max(1) {
                batch.push(self.run_one());
            }
            let results = futures_join_all(batch).await;
            let mut any = false;
            for r in results {
                if let Some((job, outcome)) = r? {
                    report.ran += 1;
                    any = true;
                    match outcome {
                        Outcome::Verified | Outcome::Stale => report.verified += 1,
                        Outcome::Retry(e) => report.failed.push((job, e, false)),
                        Outcome::Dead(e) => report.failed.push((job, e, true)),
                    }
                }
            }
            if !any {
                return Ok(report);
            }
        }
    }

    /// Run until `shutdown` turns true, with `concurrency` loops.
    pub async fn run(self: Arc<Self>, shutdown: watch::Receiver<bool>) {
        let mut tasks = Vec::new();
        // The heartbeat readiness checks: beats every second while the runners are up.
        let me = self.clone();
        let mut stop = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            while !*stop.borrow() {
                me.heartbeat.store(monotonic_millis(), std::sync::atomic::Ordering::Relaxed);
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                    _ = stop.changed() => {}
                }
            }
            me.heartbeat.store(0, std::sync::atomic::Ordering::Relaxed);
        }));
        for _ in 0..self.config.concurrency.max(1) {
            let me = self.clone();
            let mut shutdown = shutdown.clone();
            tasks.push(tokio::spawn(async move {
                while !*shutdown.borrow() {
                    match me.run_one().await {
                        Ok(Some(_)) => continue,
                        Ok(None) => {}
                        Err(e) => tracing::error!(error = %e, "job runner failed; retrying"),
                    }
                    tokio::select! {
                        _ = me.wake.notified() => {}
                        _ = tokio::time::sleep(me.config.poll) => {}
                        _ = shutdown.changed() => {}
                    }
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    }

    async fn run_sync(&self, job: &JobRow) -> Result<Outcome> {
        let system = job.system.clone();
        let identity_id =
            job.identity_id.ok_or_else(|| EngineError::NotFound(format!("the identity of job {}", job.id)))?;
        let snap = self
            .blocking(move |e| {
                let tx = e.store.read()?;
                let identity =
                    tx.identity_by_id(identity_id)?.ok_or_else(|| EngineError::NotFound(identity_id.to_string()))?;
                let account = tx.accounts(identity_id)?.into_iter().find(|a| a.system == system);
                let grants: Vec<GrantRow> =
                    tx.grants(identity_id)?.into_iter().filter(|g| g.system == system).collect();
                let policy = e.policy_in(tx.as_ref())?;
                let attributes = match &account {
                    Some(a) => crate::steps::attributes::wanted(tx.as_ref(), &policy, &system, &identity, &a.name)?,
                    None => Default::default(),
                };
                drop(tx);
                Ok(Snapshot { identity, account, grants, policy, attributes })
            })
            .await?;
        let systems = self.systems_for(&snap.policy).await;
        // A system's concurrency limit (`max_concurrency`): wait for a permit.
        let _permit = match systems.limit(&job.system) {
            Some(s) => s.acquire_owned().await.ok(),
            None => None,
        };
        let result = match systems.get(&job.system) {
            Ok(c) => match converge(c.as_ref(), &snap).await {
                Ok(mut got) if snap.identity.state.has_left() => match sweep::sweep(c.as_ref(), &snap).await {
                    Ok(swept) => {
                        got.sweep = swept;
                        Ok(got)
                    }
                    Err(e) => Err(e),
                },
                other => other,
            },
            Err(e) => Err(e),
        };
        let job = job.clone();
        let config = self.config.clone();
        self.blocking(move |e| complete(e, &job, &snap, result, &config)).await
    }
}

impl Workers {
    /// Issue a credential; a dynamic login is created in its system before the answer.
    pub async fn issue_credential(
        &self,
        req: CredentialRequest,
        by: tenure_model::Principal,
    ) -> Result<IssuedCredentialView> {
        let (issued, pending) = self.blocking(move |e| e.issue_credential(&req, &by)).await?;
        let Some(p) = pending else { return Ok(issued) };
        let policy = self.blocking(|e| e.current_policy()).await?;
        let systems = self.systems_for(&policy).await;
        let connector = systems.get(&p.system);
        let created = match &connector {
            Ok(c) => c.create_login(&p.login).await,
            Err(e) => Err(e.clone()),
        };
        let id = p.credential.clone();
        if let Err(err) = created {
            let msg = err.to_string();
            self.blocking(move |e| e.login_failed(&id, &msg)).await?;
            self.notify();
            return Err(EngineError::Refused(format!("the login could not be created: {err}")));
        }
        // A leaver (or a revocation) may have committed while the login was being made, and its
        // job may already have verified the login absent: end it here too.
        let check = id.clone();
        let revoked = self
            .blocking(move |e| Ok(e.store.read()?.credential(&check)?.is_some_and(|c| c.revoked_at.is_some())))
            .await?;
        if revoked {
            if let Ok(c) = &connector {
                let _ = c.delete_account(&p.login.name).await;
            }
            self.notify();
            return Err(EngineError::Refused(format!("credential {id} was revoked while it was being issued")));
        }
        Ok(issued)
    }

    /// Carry out and verify the revocation of an identity's revoked credentials.
    async fn run_credentials(&self, job: &JobRow) -> Result<Outcome> {
        let identity_id =
            job.identity_id.ok_or_else(|| EngineError::NotFound(format!("the identity of job {}", job.id)))?;
        let (pending, policy) =
            self.blocking(move |e| Ok((e.credentials_to_verify(identity_id)?, e.current_policy()?))).await?;
        let (logins, others): (Vec<_>, Vec<_>) =
            pending.into_iter().partition(|c| c.kind == CredentialKind::PostgresLogin);
        let mut results = self.blocking(move |e| e.verify_revoked(&others)).await?;
        let mut errors = Vec::new();
        let systems = self.systems_for(&policy).await;
        for c in logins {
            let system = c.system.clone().unwrap_or_default();
            let name = c.name.clone().unwrap_or_default();
            let outcome = match systems.get(&system) {
                Ok(conn) => drop_login(conn.as_ref(), &system, &name).await,
                Err(e) => Err(e),
            };
            match outcome {
                Ok((ok, evidence)) => results.push(Verification { credential: c.id.clone(), ok, evidence }),
                Err(e) => errors.push(format!("credential {}: {e}", c.id)),
            }
        }
        let job = job.clone();
        let config = self.config.clone();
        self.blocking(move |e| {
            let now = e.clock.now();
            let version = e.current_policy()?.version.to_string();
            let mut tx = e.store.write()?;
            let subject = tx.identity_by_id(identity_id)?.map(|i| i.reference.to_string()).unwrap_or_default();
            errors.extend(crate::steps::credentials::record_verifications(
                tx.as_mut(),
                &subject,
                &results,
                &version,
                now,
            )?);
            let mut closed = None;
            let outcome = if errors.is_empty() {
                if !tx.finish_job(&job, now)? {
                    return Ok(Outcome::Stale);
                }
                closed = crate::steps::lifecycle::advance_lifecycle(tx.as_mut(), identity_id, now, &version)?;
                Outcome::Verified
            } else {
                fail(tx.as_mut(), &job, &errors.join("; "), now, &config, &subject, &version)?
            };
            // A stale attempt's transaction is dropped, not committed: it rolls back.
            if outcome != Outcome::Stale {
                tx.commit()?;
                crate::steps::lifecycle::ClosedIn::report(closed, e.telemetry());
            }
            Ok(outcome)
        })
        .await
    }
}

/// Drop a dynamic login and check, as its holder would find, that it is gone.
async fn drop_login(c: &dyn Connector, system: &str, name: &str) -> Result<(bool, CredentialCheck), ConnectorError> {
    c.delete_account(name).await?;
    let present = c.read_account(name).await?.is_some();
    let probe = c.probe(name).await?;
    let ok = !present && probe != Probe::Allowed;
    Ok((
        ok,
        CredentialCheck::PostgresLogin {
            system: system.to_owned(),
            login: name.to_owned(),
            read_back: Present { present },
            probe: recorded_probe(&probe),
        },
    ))
}

fn recorded_probe(p: &Probe) -> ProbeResult {
    match p {
        Probe::Refused(m) => ProbeResult::Refused { detail: m.clone() },
        Probe::Allowed => ProbeResult::Allowed,
        Probe::Unsupported(m) => ProbeResult::Unsupported { detail: m.clone() },
    }
}

/// Drive all futures concurrently on this task and collect their outputs (a small join_all,
/// to avoid a dependency for one call).
async fn futures_join_all<F: std::future::Future>(futs: Vec<F>) -> Vec<F::Output> {
    let mut futs: Vec<_> = futs.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, fut) in outputs.iter_mut().zip(futs.iter_mut()) {
            if slot.is_none() {
                match fut.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

/// What the job saw of the store when it started.
struct Snapshot {
    identity: IdentityRow,
    account: Option<AccountRow>,
    grants: Vec<GrantRow>,
    policy: Arc<Bundle>,
    /// What the account should carry by the system's attribute mappings.
    attributes: tenure_policy::attributes::Values,
}

impl Snapshot {
    fn enabled_wanted(&self) -> bool {
        self.identity.state.is_current()
            && self.account.as_ref().is_some_and(|a| matches!(a.state, AccountState::Desired | AccountState::Verified))
    }

    fn target(&self, g: &GrantRow) -> String {
        match self.policy.entitlement(&g.entitlement) {
            Some(d) => d.target.clone(),
            // An entitlement the current policy no longer lists: its name after `SYSTEM/`.
            None => g.entitlement.split_once('/').map_or(g.entitlement.clone(), |(_, t)| t.to_owned()),
        }
    }
}

/// What the read-back showed.
#[derive(Default)]
struct Converged {
    present: bool,
    enabled: bool,
    memberships: BTreeSet<String>,
    granted: Vec<String>,
    revoked: Vec<String>,
    disabled: bool,
    created: bool,
    deleted: bool,
    /// For a leaver: trying to use the account as its holder would.
    probe: Option<Probe>,
    /// Elevated attributes removed when the account was disabled.
    stripped: Vec<String>,
    /// Elevated attributes the read-back still shows.
    privileges: BTreeSet<String>,
    /// A leaver's closure sweep of the system, where it has correlation rules.
    sweep: Option<tenure_ledger::event::Sweep>,
    /// Mapped attributes written (after creation), with their values.
    attributes: BTreeMap<String, Vec<String>>,
    /// Mapped attributes the read-back does not show as written.
    attribute_problems: Vec<String>,
}

/// Mapped values as the system writes them: an account reference named the system's way (an
/// LDAP DN, a SCIM id), left out when the system holds no such account.
async fn render(
    c: &dyn Connector,
    values: &tenure_policy::attributes::Values,
) -> Result<BTreeMap<String, Vec<String>>, ConnectorError> {
    use tenure_policy::attributes::Value;
    let mut out = BTreeMap::new();
    for (target, vs) in values {
        let mut rendered = Vec::new();
        for v in vs {
            match v {
                Value::Text(t) => rendered.push(t.clone()),
                Value::Account(a) => rendered.extend(c.account_reference(a).await?),
            }
        }
        out.insert(target.clone(), rendered);
    }
    Ok(out)
}

/// Make the system hold what the snapshot wants (the [`crate::sync::plan`] of it, executed
/// step by step), then read it back.
async fn converge(c: &dyn Connector, s: &Snapshot) -> Result<Converged, ConnectorError> {
    use crate::sync::{Step, Want, plan};
    let Some(account) = &s.account else {
        return Ok(Converged::default());
    };
    let name = &account.name;
    let want = Want {
        reference: s.identity.reference.to_string(),
        enabled: s.enabled_wanted(),
        left: s.identity.state.has_left(),
        // After the grace period a closed leaver's account is deleted, and the read-back must
        // find nothing.
        delete: matches!(account.state, AccountState::Deleting | AccountState::DeleteVerified),
        grants: s.grants.iter().filter(|g| g.state.is_wanted()).map(|g| s.target(g)).collect(),
        revokes: s.grants.iter().filter(|g| !g.state.is_wanted()).map(|g| s.target(g)).collect(),
    };
    let mut out = Converged::default();
    let mut actual = c.read_account(name).await?;
    let mut steps = plan(c.system(), &want, actual.as_ref())?;
    // Mapped attributes are kept while the account is in use; a leaver's are left as they were.
    let mapped = if want.enabled && !want.delete { render(c, &s.attributes).await? } else { BTreeMap::new() };
    if steps.first() == Some(&Step::Create) {
        c.create_account(&AccountSpec {
            name: name.clone(),
            display_name: s.identity.name.clone(),
            kind: s.identity.kind.as_str().to_owned(),
            reference: want.reference.clone(),
            expires_at: s.identity.expires_at.map(tenure_model::rfc3339),
            attributes: mapped.clone(),
        })
        .await?;
        out.created = true;
        // Plan again from what the system now holds (someone may have made it meanwhile).
        actual = c.read_account(name).await?;
        if actual.is_none() {
            return Err(ConnectorError::Refused {
                system: c.system().to_owned(),
                operation: "create account".into(),
                message: format!("`{name}` is still absent after creation"),
            });
        }
        steps = plan(c.system(), &want, actual.as_ref())?;
    }
    for step in steps {
        match step {
            // A second Create cannot be planned: the account exists now.
            Step::Create => {}
            Step::Enable => c.enable_account(name).await?,
            Step::Disable => {
                c.disable_account(name).await?;
                out.disabled = true;
                // Elevated attributes go with the login (recorded in the ledger entry);
                // enabling again does not restore them.
                out.stripped = actual.as_ref().map(|r| r.privileges.iter().cloned().collect()).unwrap_or_default();
            }
            Step::Delete => {
                c.delete_account(name).await?;
                out.deleted = true;
            }
            Step::Grant(t) => {
                c.grant(name, &t).await?;
                out.granted.push(t);
            }
            Step::Revoke(t) => {
                c.revoke(name, &t).await?;
                out.revoked.push(t);
            }
        }
    }
    if want.delete {
        if let Some(r) = c.read_account(name).await? {
            out.present = true;
            out.enabled = r.enabled;
            out.memberships = r.memberships;
        }
        return Ok(out);
    }
    let left = want.left;
    if !mapped.is_empty() {
        set_mapped(c, name, &mapped, out.created, &mut out).await?;
    }

    // Verification is a fresh read, never the write's status.
    if let Some(r) = c.read_account(name).await? {
        out.present = true;
        out.enabled = r.enabled;
        out.memberships = r.memberships;
        out.privileges = r.privileges;
    }
    // A leaver's account must also refuse its holder (a bind, a login) where the system can tell.
    if left {
        out.probe = Some(c.probe(name).await?);
    }
    Ok(out)
}

/// Bring the account's mapped attributes to `mapped` (those that differ, with one write) and
/// read them back; what still differs is a problem of the job.
async fn set_mapped(
    c: &dyn Connector,
    name: &str,
    mapped: &BTreeMap<String, Vec<String>>,
    created: bool,
    out: &mut Converged,
) -> Result<(), ConnectorError> {
    let targets: Vec<String> = mapped.keys().cloned().collect();
    let differs = |have: &BTreeMap<String, Vec<String>>| -> BTreeMap<String, Vec<String>> {
        mapped
            .iter()
            .filter(|(t, v)| !c.same_values(t, v, have.get(*t).map_or(&[], Vec::as_slice)))
            .map(|(t, v)| (t.clone(), v.clone()))
            .collect()
    };
    let Some(have) = c.read_attributes(name, &targets).await? else { return Ok(()) };
    let diff = differs(&have);
    if !diff.is_empty() {
        c.set_attributes(name, &diff).await?;
    }
    // What creation wrote is recorded as set too.
    out.attributes = if created { mapped.clone() } else { diff };
    let again = c.read_attributes(name, &targets).await?.unwrap_or_default();
    for (t, v) in differs(&again) {
        let got = again.get(&t).cloned().unwrap_or_default();
        out.attribute_problems.push(format!("`{t}` reads back {got:?} after setting {v:?}"));
    }
    Ok(())
}

fn backoff(config: &WorkerConfig, attempts: i64) -> Duration {
    let exp = u32::try_from(attempts.clamp(1, 20) - 1).unwrap_or(0);
    let base = config.backoff_base.saturating_mul(2_i32.saturating_pow(exp)).min(config.backoff_max);
    // ±50% jitter so retries against a recovering system spread out.
    let factor = 0.5 + rand::random::<f64>();
    Duration::seconds_f64(base.as_seconds_f64() * factor)
}

/// Record what the job achieved, all in one transaction.
fn complete(
    e: &Engine,
    job: &JobRow,
    s: &Snapshot,
    result: Result<Converged, ConnectorError>,
    config: &WorkerConfig,
) -> Result<Outcome> {
    let now = e.clock.now();
    let mut tx = e.store.write()?;
    let subject = s.identity.reference.to_string();
    let version = s.policy.version.as_str();
    let got = match result {
        Ok(g) => g,
        Err(err) => {
            let msg = err.to_string();
            // An account tenure did not make: a person decides (a finding), retrying will not help.
            let permanent = if let ConnectorError::NotManaged { account, why, .. } = &err {
                let detail = serde_json::json!({ "system": job.system, "account": account, "why": why });
                let finding = tenure_store::NewFinding {
                    identity_id: Some(s.identity.id),
                    kind: "account_not_managed",
                    entitlement: &job.system,
                    detail: &detail,
                    policy_version: version,
                    at: now,
                };
                if tx.open_finding(&finding)? {
                    tracing::error!(subject, system = %job.system, account, why, "refused to take over an account tenure did not make");
                }
                true
            } else {
                false
            };
            let outcome = fail(
                tx.as_mut(),
                job,
                &msg,
                now,
                &WorkerConfig { max_attempts: if permanent { 0 } else { config.max_attempts }, ..config.clone() },
                &subject,
                version,
            )?;
            if outcome != Outcome::Stale {
                tx.commit()?;
            }
            return Ok(outcome);
        }
    };

    let mut problems = Vec::new();
    let mut verified = Vec::new();
    let mut revocation_verified = Vec::new();
    let mut provisioned = Vec::new();
    let mut revoked = Vec::new();
    for g in &s.grants {
        let t = s.target(g);
        let present = got.memberships.contains(&t);
        let to = match (g.state.is_wanted(), present) {
            (true, true) => GrantState::Verified,
            (false, false) => GrantState::RevocationVerified,
            (true, false) => {
                problems.push(format!("`{t}` is not held after granting"));
                GrantState::Provisioned
            }
            (false, true) => {
                problems.push(format!("`{t}` is still held after revoking"));
                GrantState::Revoked
            }
        };
        if g.state != to && tx.set_grant_state(g.id, g.rev, to, now)? {
            match to {
                GrantState::Verified => verified.push(g.entitlement.clone()),
                GrantState::RevocationVerified => revocation_verified.push(g.entitlement.clone()),
                GrantState::Provisioned => provisioned.push(g.entitlement.clone()),
                GrantState::Revoked => revoked.push(g.entitlement.clone()),
                _ => {}
            }
        }
    }
    if let Some(a) =
        s.account.as_ref().filter(|a| matches!(a.state, AccountState::Deleting | AccountState::DeleteVerified))
    {
        if got.present {
            problems.push(format!("account `{}` still exists after deleting", a.name));
        } else if a.state != AccountState::DeleteVerified {
            tx.set_account_state(a.identity_id, &a.system, a.rev, AccountState::DeleteVerified, now)?;
        }
    } else if let Some(a) = &s.account {
        let wanted = s.enabled_wanted();
        let ok = if wanted { got.present && got.enabled } else { !got.present || !got.enabled };
        if s.identity.state.has_left() && !got.memberships.is_empty() {
            problems.push(format!("leaver still in {:?}", got.memberships));
        }
        if !wanted && !got.privileges.is_empty() {
            problems.push(format!("disabled account `{}` still holds {:?}", a.name, got.privileges));
        }
        if got.probe == Some(Probe::Allowed) {
            // An account its holder can still use is not verified disabled, whatever it reads as.
            problems.push(format!("probe: `{}` can still be used", a.name));
        } else if ok {
            let to = if wanted { AccountState::Verified } else { AccountState::DisableVerified };
            if a.state != to {
                tx.set_account_state(a.identity_id, &a.system, a.rev, to, now)?;
            }
        } else {
            problems.push(format!(
                "account `{}` is {} after converging",
                a.name,
                if got.enabled { "enabled" } else { "disabled or absent" }
            ));
        }
    }

    problems.extend(got.attribute_problems.iter().cloned());
    if let Some(sw) = &got.sweep {
        for a in sw.accounts.iter().filter(|a| !a.read_back.is_closed()) {
            problems.push(format!(
                "`{}`, made outside tenure for this leaver, is still {}",
                a.account,
                if a.read_back.enabled { "enabled" } else { "in a group" }
            ));
        }
    }
    let synced = Synced {
        system: job.system.clone(),
        account: s.account.as_ref().map(|a| a.name.clone()),
        created: got.created,
        disabled: got.disabled,
        deleted: got.deleted,
        granted: got.granted,
        revoked: got.revoked,
        read_back: ReadBack {
            present: got.present,
            enabled: got.enabled,
            memberships: got.memberships.into_iter().collect(),
        },
        probe: got.probe.as_ref().map(recorded_probe),
        stripped: got.stripped,
        verified,
        revocation_verified,
        provisioned,
        revoked_unverified: revoked,
        problems,
        sweep: got.sweep,
        attributes: got.attributes,
    };
    let problems = synced.problems.clone();
    record(tx.as_mut(), Stamp::engine(now, version), &subject, LedgerEvent::Synced(synced))?;

    let mut closed = None;
    let outcome = if problems.is_empty() {
        if !tx.finish_job(job, now)? {
            // Fenced: another attempt holds the job; everything above rolls back with `tx`.
            return Ok(Outcome::Stale);
        }
        closed = crate::steps::lifecycle::advance_lifecycle(tx.as_mut(), s.identity.id, now, version)?;
        Outcome::Verified
    } else {
        fail(
            tx.as_mut(),
            job,
            &format!("verification failed: {}", problems.join("; ")),
            now,
            config,
            &subject,
            version,
        )?
    };
    if outcome != Outcome::Stale {
        tx.commit()?;
        crate::steps::lifecycle::ClosedIn::report(closed, e.telemetry());
    }
    Ok(outcome)
}

fn fail(
    tx: &mut dyn WriteTx,
    job: &JobRow,
    msg: &str,
    now: OffsetDateTime,
    config: &WorkerConfig,
    subject: &str,
    version: &str,
) -> Result<Outcome> {
    if job.attempts >= config.max_attempts {
        if !tx.fail_job(job, msg, None, now)? {
            return Ok(Outcome::Stale);
        }
        let dead = JobDead { job: job.id, system: job.system.clone(), attempts: job.attempts, error: msg.to_owned() };
        record(tx, Stamp::engine(now, version), subject, LedgerEvent::JobDead(dead))?;
        tracing::error!(job = job.id, system = %job.system, subject, error = msg, "job dead-lettered");
        return Ok(Outcome::Dead(msg.to_owned()));
    }
    let retry_at = now + backoff(config, job.attempts);
    if !tx.fail_job(job, msg, Some(retry_at), now)? {
        return Ok(Outcome::Stale);
    }
    tracing::warn!(job = job.id, system = %job.system, subject, error = msg, attempts = job.attempts, "job failed; will retry");
    Ok(Outcome::Retry(msg.to_owned()))
}

/// Which dead jobs [`Engine::retry_dead_jobs`] puts back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryJobs<'a> {
    /// Every dead job.
    Dead,
    /// The dead jobs of this identity (`source:external_id`).
    OfIdentity(&'a str),
    /// This job.
    One(i64),
}

impl Engine {
    /// Put dead-lettered jobs back in the queue (all, those of an identity, or one), with a
    /// `jobs.retried` ledger entry naming who asked; returns the ids re-queued. One job that
    /// does not exist is not found; one that is not dead is a conflict.
    pub fn retry_dead_jobs(&self, which: RetryJobs<'_>, by: &tenure_model::Principal) -> Result<Vec<i64>> {
        let actor = by.actor();
        let now = self.clock.now();
        let version = self.current_policy()?.version.to_string();
        let mut tx = self.store.write()?;
        let (row, selector) = match which {
            RetryJobs::Dead => (None, DeadJobs::All),
            RetryJobs::OfIdentity(r) => {
                let reference: tenure_model::IdentityRef =
                    r.parse().map_err(|_| EngineError::NotFound(r.to_owned()))?;
                let row = tx.identity(&reference)?.ok_or_else(|| EngineError::NotFound(r.to_owned()))?;
                let id = row.id;
                (Some(row), DeadJobs::OfIdentity(id))
            }
            RetryJobs::One(id) => {
                let job = tx.job(id)?.ok_or_else(|| EngineError::NotFound(format!("job {id}")))?;
                if job.state != JobState::Dead {
                    return Err(EngineError::Conflict(format!(
                        "job {id} is {}, not dead: only a dead job is retried",
                        job.state.as_str()
                    )));
                }
                (None, DeadJobs::One(id))
            }
        };
        let ids = tx.retry_dead_jobs(selector, now)?;
        if !ids.is_empty() {
            let subject = row.map_or_else(|| "jobs".to_owned(), |r| r.reference.to_string());
            let event = LedgerEvent::JobsRetried(JobsRetried { jobs: ids.clone() });
            record(tx.as_mut(), Stamp::new(now, &actor, &version), &subject, event)?;
        }
        tx.commit()?;
        Ok(ids)
    }
}
