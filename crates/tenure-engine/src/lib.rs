//! The workflows of tenure, in layers (docs/ARCHITECTURE.md): transaction steps (`steps/`, no
//! `Engine` receiver), the flows built from them ([`Engine::ingest`], [`leaver`], [`access`],
//! [`authz`], [`tokens`], [`creds`], deploy), sync ([`sync`]'s plan and the [`worker`] that
//! executes it), evidence ([`ledger`], [`closure`]) and one [`clock`] tick. A flow's state
//! change, ledger entries and outbox jobs commit together or not at all; the worker converges
//! one identity's account in one system, verified by read-back, and identities move on only
//! when every check passed (`pending → active`, `leaving → closed`).

pub mod access;
pub mod authz;
pub mod check;
pub mod clock;
pub mod closure;
mod commit;
pub use commit::Gather;
pub mod creds;
pub mod expiry;
pub mod impact;
pub mod import;
pub mod ingest;
pub mod leaver;
pub mod ledger;
pub mod lists;
pub mod parse;
pub mod posture;
pub mod reconcile;
pub mod reviews;
pub mod scim;
mod steps;
pub mod sync;
pub mod systems;
pub mod telemetry;
pub mod tokens;
pub mod views;
pub mod worker;

#[cfg(test)]
mod access_tests;
#[cfg(test)]
mod tests;

pub use ingest::Event;
pub use parse::{Format, Position, RecordError};
pub use tenure_store::{IdentityFilter, JobRow, JobState};

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use tenure_model::Clock;
use tenure_policy::{Bundle, BundleError};
use tenure_store::{Store, StoreError, StoredPolicy};

/// Errors of the engine; one variant per cause, each with a stable code ([`EngineError::code`])
/// that both `Display` and the HTTP mapping use.
#[derive(Debug)]
pub enum EngineError {
    Rejected(Vec<RecordError>),
    NoPolicy,
    Store(StoreError),
    NotFound(String),
    BadStoredPolicy {
        version: String,
        source: BundleError,
    },
    /// A blocking task the async side handed off died (a panic).
    Join(String),
    NoEntry(i64),
    Ledger(String),
    Invalid {
        field: String,
        message: String,
    },
    Refused(String),
    Conflict(String),
    Unauthenticated(String),
    Forbidden(String),
    NoCheckpoint(i64),
    /// The broker could not keep, load or use a key.
    Broker(tenure_broker::BrokerError),
    /// A value could not be encoded as JSON (a bug: every recorded value is encodable).
    Encode(String),
    /// The credential broker has no key store configured (`Engine::set_key_dir`).
    NoKeyStore,
    /// The group commit a unit of work shared failed as a whole.
    GroupCommit(String),
    /// A lifecycle move the identity's state does not allow.
    Transition(tenure_model::TransitionError),
}

impl EngineError {
    /// Bad input in `field`, said in `message`.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Invalid { field: field.to_owned(), message: message.into() }
    }

    /// The stable code of this cause.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Rejected(_) => "EN0001",
            Self::NoPolicy => "EN0002",
            Self::Store(_) => "EN0003",
            Self::NotFound(_) => "EN0004",
            Self::BadStoredPolicy { .. } => "EN0005",
            Self::Join(_) => "EN0006",
            Self::NoEntry(_) => "EN0007",
            Self::Ledger(_) => "EN0008",
            Self::Invalid { .. } => "EN0009",
            Self::Refused(_) => "EN0010",
            Self::Conflict(_) => "EN0011",
            Self::Unauthenticated(_) => "EN0012",
            Self::Forbidden(_) => "EN0013",
            Self::NoCheckpoint(_) => "EN0014",
            Self::Broker(_) => "EN0015",
            Self::Encode(_) => "EN0016",
            Self::NoKeyStore => "EN0017",
            Self::GroupCommit(_) => "EN0018",
            Self::Transition(_) => "EN0019",
        }
    }
}

impl std::fmt::Display for EngineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ", self.code())?;
        match self {
            Self::Rejected(r) => write!(f, "batch rejected: {} bad record(s); nothing was applied", r.len()),
            Self::NoPolicy => {
                f.write_str("no policy is deployed in this data directory; pass --policy DIR (or set TENURE_POLICY)")
            }
            Self::Store(e) => write!(f, "{e}"),
            // What is missing names its kind ("request 7", "credential c-1"); a bare reference
            // is an identity's.
            Self::NotFound(what) if what.contains(' ') => write!(f, "no {what}"),
            Self::NotFound(r) => write!(f, "no identity `{r}`"),
            Self::BadStoredPolicy { version, source } => {
                write!(f, "the deployed policy {version} cannot be loaded: {source}")
            }
            Self::Join(m) => write!(f, "a worker task failed: {m}"),
            Self::NoEntry(s) => write!(f, "no ledger entry {s}"),
            Self::Ledger(m) => write!(f, "the ledger in the database is inconsistent: {m}"),
            Self::Invalid { field, message } => write!(f, "{field}: {message}"),
            Self::Refused(m) => write!(f, "refused: {m}"),
            Self::Conflict(m) => write!(f, "conflict: {m}"),
            Self::Unauthenticated(m) => write!(f, "not authenticated: {m}"),
            Self::Forbidden(m) => write!(f, "forbidden: {m}"),
            Self::NoCheckpoint(s) => write!(
                f,
                "no checkpoint of size {s} (`tenure ledger checkpoint` signs one; sizes are listed in an export's checkpoints/)"
            ),
            Self::Broker(e) => write!(f, "credential broker: {e}"),
            Self::Encode(m) => write!(f, "could not encode a value: {m}"),
            Self::NoKeyStore => f.write_str("the credential broker has no key store (no data directory was given)"),
            Self::GroupCommit(m) => write!(f, "the shared commit failed: {m}"),
            Self::Transition(t) => write!(f, "{t}"),
        }
    }
}

impl std::error::Error for EngineError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Store(e) => Some(e),
            Self::BadStoredPolicy { source, .. } => Some(source),
            Self::Broker(e) => Some(e),
            _ => None,
        }
    }
}

impl From<tenure_broker::BrokerError> for EngineError {
    fn from(e: tenure_broker::BrokerError) -> Self {
        match e {
            tenure_broker::BrokerError::Invalid { field, message } => {
                Self::Invalid { field: field.to_owned(), message }
            }
            e => Self::Broker(e),
        }
    }
}

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// `v` as a JSON value, for what is recorded (requests' decisions, findings' details).
pub(crate) fn encode<T: serde::Serialize>(v: &T) -> Result<serde_json::Value> {
    serde_json::to_value(v).map_err(|e| EngineError::Encode(e.to_string()))
}

/// Who did something, as the ledger names it.
pub const ACTOR_ENGINE: &str = "tenure";

/// The engine over one store.
pub struct Engine {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    policies: Mutex<HashMap<String, Arc<Bundle>>>,
    /// Group commit of decisions and issued credentials.
    commits: commit::GroupCommit,
    /// Identities as runtime authorization last read them, checked against their revision.
    holders: authz::HolderCache,
    keys: std::sync::OnceLock<tenure_broker::keys::KeyRing>,
    public_url: std::sync::OnceLock<String>,
    auth_failures: tokens::AuthFailures,
    /// When the clock last looked for expiry notices to raise (they are days apart: once a
    /// minute is enough).
    notices_checked: Mutex<Option<time::OffsetDateTime>>,
    /// What this process has done since it started (`/metrics`).
    telemetry: telemetry::Telemetry,
}

/// What deploying a bundle did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deployed {
    /// The bundle was already current.
    Unchanged,
    /// It became current; `from` was the previous version, if any; `affected` identities had
    /// their desired grants recomputed; `remapped` accounts get their changed mapped attributes
    /// written and read back.
    Changed { from: Option<String>, to: String, affected: usize, remapped: usize },
}

/// The systems where `remapped` rewrites more accounts than the system's `max_changes`
/// (its reconcile thresholds), each said as `N accounts in `NAME` (max_changes = M)`.
pub(crate) fn remap_over(bundle: &Bundle, remapped: &crate::steps::attributes::Remapped) -> Vec<String> {
    remapped
        .iter()
        .filter_map(|(system, accounts)| {
            let max = bundle.systems.get(system).map_or(0, |d| d.reconcile.thresholds.max_changes);
            (accounts.len() as u64 > max)
                .then(|| format!("{} accounts in `{system}` (max_changes = {max})", accounts.len()))
        })
        .collect()
}

impl Engine {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        let started = clock.now();
        Self {
            store,
            clock,
            policies: Mutex::new(HashMap::new()),
            commits: commit::GroupCommit::default(),
            holders: authz::HolderCache::default(),
            keys: std::sync::OnceLock::new(),
            public_url: std::sync::OnceLock::new(),
            auth_failures: tokens::AuthFailures::default(),
            notices_checked: Mutex::new(None),
            telemetry: telemetry::Telemetry::new(started),
        }
    }

    /// This process's counters and histograms.
    pub fn telemetry(&self) -> &telemetry::Telemetry {
        &self.telemetry
    }

    /// How the group commit of decisions and issued credentials waits for fuller batches.
    pub fn set_gather(&self, gather: Gather) {
        self.commits.set_gather(gather);
    }

    /// Group-commit transactions written, and the units (decisions, credentials) in them.
    pub fn group_commit_totals(&self) -> (u64, u64) {
        self.commits.totals()
    }

    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// The bundle of a stored version, parsed once and cached.
    fn bundle(&self, stored: StoredPolicy) -> Result<Arc<Bundle>> {
        let mut cache = self.policies.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(b) = cache.get(&stored.version) {
            return Ok(b.clone());
        }
        let version = stored.version.clone();
        let b = Arc::new(
            Bundle::load(stored.files)
                .map_err(|source| EngineError::BadStoredPolicy { version: version.clone(), source })?,
        );
        cache.insert(version, b.clone());
        Ok(b)
    }

    /// The policy currently deployed.
    pub fn current_policy(&self) -> Result<Arc<Bundle>> {
        self.policy_in(self.store.read()?.as_ref())
    }

    /// The policy current in `tx` (its files are read only when the version is not cached).
    pub(crate) fn policy_in(&self, tx: &dyn tenure_store::ReadTx) -> Result<Arc<Bundle>> {
        let version = tx.current_policy_version()?.ok_or(EngineError::NoPolicy)?;
        if let Some(b) = self.policies.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&version) {
            return Ok(b.clone());
        }
        self.bundle(tx.current_policy()?.ok_or(EngineError::NoPolicy)?)
    }

    pub fn has_policy(&self) -> Result<bool> {
        Ok(self.store.read()?.current_policy()?.is_some())
    }

    /// Make `bundle` the current policy (no-op when it already is). Recording the deployment
    /// (with both versions), recomputing every current identity's birthright grants and
    /// enqueueing the resulting jobs happen in one transaction.
    pub fn deploy(&self, bundle: &Bundle, by: &tenure_model::Principal) -> Result<Deployed> {
        self.deploy_as(bundle, by, None, None)
    }

    /// [`Engine::deploy`], only once the bundle's own test cases pass (a bundle without any
    /// deploys): access does not change by accident. With `force` (a reason), failing cases do
    /// not stop it, and the deployment entry names them with the reason. `accept_remap` is the
    /// number of accounts a person accepts having their mapped attributes rewritten past a
    /// system's threshold (see [`Engine::deploy`]'s guard; it must match).
    pub fn deploy_tested(
        &self,
        bundle: &Bundle,
        by: &tenure_model::Principal,
        force: Option<&str>,
        accept_remap: Option<usize>,
    ) -> Result<Deployed> {
        let results = tenure_policy::cases::run(bundle).map_err(|e| EngineError::invalid("tests", e.to_string()))?;
        let failed: Vec<String> =
            results.iter().filter(|r| !r.passed()).map(|r| format!("{}: {}", r.file, r.name)).collect();
        if failed.is_empty() {
            return self.deploy_as(bundle, by, None, accept_remap);
        }
        match force.map(str::trim) {
            Some(reason) if !reason.is_empty() => self.deploy_as(
                bundle,
                by,
                Some(tenure_ledger::event::ForcedDeploy { reason: reason.to_owned(), failed_cases: failed }),
                accept_remap,
            ),
            _ => Err(EngineError::Refused(format!(
                "{} of the bundle's {} test case(s) fail ({}); nothing was deployed (fix them, or deploy \
                 anyway with --force --reason)",
                failed.len(),
                results.len(),
                failed.join("; ")
            ))),
        }
    }

    fn deploy_as(
        &self,
        bundle: &Bundle,
        by: &tenure_model::Principal,
        forced: Option<tenure_ledger::event::ForcedDeploy>,
        accept_remap: Option<usize>,
    ) -> Result<Deployed> {
        let actor = by.actor();
        let actor = actor.as_str();
        let now = self.clock.now();
        let mut tx = self.store.write()?;
        let from = tx.current_policy()?.map(|p| p.version);
        if from.as_deref() == Some(bundle.version.as_str()) {
            return Ok(Deployed::Unchanged);
        }
        // A changed mapping rewrites accounts: past a system's threshold, only with a person's
        // say-so for exactly that many.
        let remapped = match self.policy_in(&*tx) {
            Ok(old) => crate::steps::attributes::remapped(&*tx, &old, bundle)?,
            Err(EngineError::NoPolicy) => BTreeMap::new(),
            Err(e) => return Err(e),
        };
        let total: usize = remapped.values().map(Vec::len).sum();
        let over = remap_over(bundle, &remapped);
        if !over.is_empty() && accept_remap != Some(total) {
            return Err(EngineError::Refused(format!(
                "the new mapping rewrites the attributes of {}, past the threshold; nothing was deployed \
                 (see `tenure policy diff`, then deploy with --accept-remap {total})",
                over.join(", ")
            )));
        }
        tx.deploy_policy(&StoredPolicy { version: bundle.version.to_string(), files: bundle.files.clone() }, now)?;
        let event = tenure_ledger::event::PolicyDeployed {
            from: from.clone(),
            to: bundle.version.to_string(),
            name: bundle.name.clone(),
            forced,
            remapped: remapped.iter().map(|(s, a)| (s.clone(), a.len() as u64)).collect(),
            remap_accepted: (!over.is_empty()).then_some(total as u64),
        };
        ledger::record(
            tx.as_mut(),
            ledger::Stamp::new(now, actor, bundle.version.as_str()),
            "policy",
            tenure_ledger::LedgerEvent::PolicyDeployed(event),
        )?;
        let mut affected = 0;
        // Every grant in one query, not one per identity (recomputing one writes only its own).
        let mut grants = tx.all_grants()?;
        for identity in tx.identities()? {
            if identity.state.has_left() {
                continue;
            }
            let held = grants.remove(&identity.id).unwrap_or_default();
            if crate::steps::grants::recompute(tx.as_mut(), bundle, &identity, &held, now, actor)? {
                affected += 1;
            }
        }
        crate::steps::attributes::resync(tx.as_mut(), &remapped, now)?;
        tx.commit()?;
        self.policies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(bundle.version.to_string(), Arc::new(bundle.clone()));
        Ok(Deployed::Changed { from, to: bundle.version.to_string(), affected, remapped: total })
    }
}
