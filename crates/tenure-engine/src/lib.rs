//! The workflows of tenure. [`Engine::ingest`] validates a batch of lifecycle events against the
//! current policy and applies it in one transaction: identity state changes, desired grants,
//! audit entries and outbox jobs commit together or not at all. [`worker`] executes the jobs
//! (idempotent convergence of one identity's account in one system, verified by read-back) and
//! moves identities on when every check passed (`pending → active`, `leaving → closed`).

pub mod access;
pub mod authz;
pub mod closure;
mod commit;
pub mod creds;
pub mod impact;
pub mod ingest;
pub mod ledger;
pub mod parse;
pub mod systems;
pub mod tokens;
pub mod views;
pub mod worker;
mod workflow;

#[cfg(test)]
mod access_tests;
#[cfg(test)]
mod tests;

pub use ingest::Event;
pub use parse::{Format, Position, RecordError};
pub use tenure_store::{JobRow, JobState};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tenure_model::Clock;
use tenure_policy::{Bundle, BundleError};
use tenure_store::{AuditEntry, Store, StoreError, StoredPolicy};

/// Errors of the engine; each variant has a stable code and is raised from one place.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("EN0001 batch rejected: {} bad record(s); nothing was applied", .0.len())]
    Rejected(Vec<RecordError>),
    #[error("EN0002 no policy is deployed in this data directory; pass --policy DIR (or set TENURE_POLICY)")]
    NoPolicy,
    #[error("EN0003 {0}")]
    Store(#[from] StoreError),
    #[error("EN0004 no identity `{0}`")]
    NotFound(String),
    #[error("EN0005 the deployed policy {version} cannot be loaded: {source}")]
    BadStoredPolicy { version: String, source: BundleError },
    #[error("EN0006 a worker task failed: {0}")]
    Task(String),
    #[error("EN0007 no ledger entry {0}")]
    NoEntry(i64),
    #[error("EN0008 the ledger in the database is inconsistent: {0}")]
    Ledger(String),
    #[error("EN0009 {field}: {message}")]
    Invalid { field: String, message: String },
    #[error("EN0010 refused: {0}")]
    Refused(String),
    #[error("EN0011 conflict: {0}")]
    Conflict(String),
    #[error("EN0012 not authenticated: {0}")]
    Unauthenticated(String),
    #[error("EN0013 forbidden: {0}")]
    Forbidden(String),
    #[error(
        "EN0014 no checkpoint of size {0} (`tenure audit checkpoint` signs one; sizes are listed in an export's checkpoints/)"
    )]
    NoCheckpoint(i64),
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// Who did something, as the audit record names it.
pub const ACTOR_ENGINE: &str = "tenure";

/// The engine over one store.
pub struct Engine {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    policies: Mutex<HashMap<String, Arc<Bundle>>>,
    /// Group commit of decisions and issued credentials.
    commits: commit::GroupCommit,
    keys: std::sync::OnceLock<creds::KeyRing>,
    public_url: std::sync::OnceLock<String>,
    auth_failures: tokens::AuthFailures,
}

/// What deploying a bundle did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deployed {
    /// The bundle was already current.
    Unchanged,
    /// It became current; `from` was the previous version, if any; `affected` identities had
    /// their desired grants recomputed.
    Changed { from: Option<String>, to: String, affected: usize },
}

impl Engine {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            policies: Mutex::new(HashMap::new()),
            commits: commit::GroupCommit::default(),
            keys: std::sync::OnceLock::new(),
            public_url: std::sync::OnceLock::new(),
            auth_failures: tokens::AuthFailures::default(),
        }
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
    pub fn deploy(&self, bundle: &Bundle, actor: &str) -> Result<Deployed> {
        let now = self.clock.now();
        let mut tx = self.store.write()?;
        let from = tx.current_policy()?.map(|p| p.version);
        if from.as_deref() == Some(bundle.version.as_str()) {
            return Ok(Deployed::Unchanged);
        }
        tx.deploy_policy(&StoredPolicy { version: bundle.version.to_string(), files: bundle.files.clone() }, now)?;
        tx.append_audit(&AuditEntry {
            at: now,
            actor,
            action: "policy.deployed",
            subject: "policy",
            policy_version: bundle.version.as_str(),
            detail: serde_json::json!({ "from": from, "to": bundle.version.as_str(), "name": bundle.name }),
        })?;
        let mut affected = 0;
        for identity in tx.identities()? {
            if identity.state.has_left() {
                continue;
            }
            if workflow::recompute(tx.as_mut(), bundle, &identity, now, actor)? {
                affected += 1;
            }
        }
        tx.commit()?;
        self.policies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(bundle.version.to_string(), Arc::new(bundle.clone()));
        Ok(Deployed::Changed { from, to: bundle.version.to_string(), affected })
    }
}
