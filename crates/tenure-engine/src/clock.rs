//! One clock tick: each feature says what is due at `now` and does it, each in transactions
//! of its own. `tenure serve` ticks every few seconds; `tenure jobs run` ticks once first.

use crate::{Engine, EngineError, Result};

/// What one tick did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tick {
    /// `identity entitlement` of each grant that ran out.
    pub grants: Vec<String>,
    /// Ids of requests that expired undecided.
    pub requests: Vec<i64>,
    /// NHIs suspended because nobody took them over by their deadline.
    pub suspended: Vec<String>,
    /// Identities given an expiry notice.
    pub expiring: Vec<String>,
    /// Identities whose expiry came: leaving or suspended, as policy says.
    pub expired: Vec<String>,
    /// Closed leavers whose grace period ended: their accounts are being deleted.
    pub deleting: Vec<String>,
    /// Dynamic logins ended and retired signing keys unpublished.
    pub credentials: usize,
    /// Leavers found `leaving` with no job carrying their closure forward: re-queued, with a
    /// `leaver.stalled` ledger entry and an open `leaver_stalled` finding.
    pub stalled: Vec<String>,
    /// What access reviews did: reminders, deadlines, pauses, closures, recurring starts.
    pub reviews: Vec<String>,
    /// Ownership attestation: notices to owners, NHIs suspended for want of one.
    pub attestations: Vec<String>,
    /// The day's posture report snapshot, when one was taken (for each check's trend).
    pub posture: Option<String>,
}

impl Engine {
    /// Do what is due now: identities whose expiry is near or has come (`expiry`), grants and
    /// requests whose time is up (access), stalled leavers, ownerless NHIs past their deadline
    /// and accounts past the grace period (the leaver), dynamic logins and signing keys (the
    /// broker), and the posture report's daily snapshot.
    pub fn tick(&self) -> Result<Tick> {
        let now = self.clock.now();
        let policy = match self.current_policy() {
            Ok(p) => p,
            Err(EngineError::NoPolicy) => return Ok(Tick::default()),
            Err(e) => return Err(e),
        };
        Ok(Tick {
            expired: self.expire_identities(&policy, now)?,
            expiring: self.notice_expiring(&policy, now)?,
            credentials: self.expire_credentials(&policy)?,
            stalled: self.requeue_stalled_leavers(&policy, now)?,
            grants: self.expire_grants(&policy, now)?,
            suspended: self.suspend_ownerless(&policy, now)?,
            deleting: self.start_deletions(&policy, now)?,
            requests: self.expire_requests(&policy, now)?,
            reviews: self.reviews_due(&policy, now)?,
            attestations: self.attestations_due(&policy, now)?,
            posture: self.posture_due(now)?,
        })
    }
}
