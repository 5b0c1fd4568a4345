//! What a ledger entry records: one [`LedgerEvent`] variant per action, with typed details.
//! Producers construct variants; replay, the closure builder, the closure verifier and the CLI
//! match on them, so a renamed field is a compile error, not a silently broken replay.
//!
//! The serialized form is the entry's `action` (the variant's name, e.g. `system.synced`) and
//! `detail` (the variant's fields as a JSON object), exactly as entries were written before the
//! details were typed: a field that was always written is always serialized (`null` when
//! absent), a field that was written only when it said something is skipped when empty. Fields
//! added after the first entries of their action were written read as empty when missing.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use tenure_model::{AccountState, ApproverRole, CredentialKind, GrantState, LifecycleState, RequestKind};

/// One action tenure took or observed, with what it did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", content = "detail")]
pub enum LedgerEvent {
    /// A source said a new identity joined.
    #[serde(rename = "identity.joined")]
    Joined(IdentityEvent),
    /// A source changed an identity's attributes (a mover, among others).
    #[serde(rename = "identity.changed")]
    Changed(IdentityEvent),
    /// A source said an identity left: it is `leaving` (or `closed` with nothing to undo).
    #[serde(rename = "identity.left")]
    Left(IdentityEvent),
    /// A source named a new owner for a non-human identity.
    #[serde(rename = "identity.owner_changed")]
    OwnerChanged(IdentityEvent),
    /// A source named the owner a non-human identity already has.
    #[serde(rename = "identity.owner_unchanged")]
    OwnerUnchanged(IdentityEvent),
    /// A source extended an identity's expiry.
    #[serde(rename = "identity.renewed")]
    Renewed(IdentityEvent),
    /// A source suspended an identity (accounts disabled, credentials revoked), or said so of
    /// one already suspended (`state` absent).
    #[serde(rename = "identity.suspended_by_source")]
    SourceSuspended(IdentityEvent),
    /// A source lifted its suspension (`state` absent where there was none to lift).
    #[serde(rename = "identity.resumed")]
    Resumed(IdentityEvent),
    /// An identity's owner (or an operator) extended its expiry, saying why.
    #[serde(rename = "identity.renewed_by")]
    RenewedBy(RenewedBy),
    /// An identity's expiry is near: a notice at one of the policy's offsets.
    #[serde(rename = "identity.expiring")]
    Expiring(Expiring),
    /// An identity's expiry came: it is leaving (the leaver flow) or suspended, as policy says.
    #[serde(rename = "identity.expired")]
    Expired(Expired),
    /// A source's snapshot import would have made more leavers than its threshold: nothing
    /// was applied (subject: `source:NAME`).
    #[serde(rename = "source.snapshot_quarantined")]
    SnapshotQuarantined(SnapshotQuarantined),
    /// A policy deployment changed what an identity should hold.
    #[serde(rename = "identity.recomputed")]
    Recomputed(Changes),
    /// Policy wanted an account another identity holds; recorded for people, nothing done.
    #[serde(rename = "identity.account_conflict")]
    AccountConflict(AccountConflict),
    /// A departing owner's non-human identity went to the successor policy names.
    #[serde(rename = "identity.owner_transferred")]
    OwnerTransferred(OwnerTransferred),
    /// A departing owner's non-human identity waits for a new owner until a deadline.
    #[serde(rename = "identity.owner_needed")]
    OwnerNeeded(OwnerNeeded),
    /// Every system verified what a joiner or mover should hold.
    #[serde(rename = "identity.activated")]
    Activated(Settled),
    /// Every system and credential of a leaver verified off: the closure certificate's anchor.
    #[serde(rename = "identity.closed")]
    Closed(Settled),
    /// A non-human identity suspended by the clock: nobody took it over, or its owner did not
    /// attest it, by its deadline (`because` says which).
    #[serde(rename = "identity.suspended")]
    Suspended(Suspended),
    /// An NHI's owner reconfirmed it (attestation), resuming it if a missed attestation had
    /// suspended it.
    #[serde(rename = "identity.attested")]
    Attested(Attested),
    /// A leaver's grace period ended: its disabled accounts are being deleted.
    #[serde(rename = "identity.deletion_started")]
    DeletionStarted(DeletionStarted),
    /// A leaver with no job carrying it to `closed`, found and re-queued by the clock.
    #[serde(rename = "leaver.stalled")]
    LeaverStalled(LeaverStalled),
    /// One sync job's outcome: what it changed in the system and the fresh read-back.
    #[serde(rename = "system.synced")]
    Synced(Synced),
    /// A job that exhausted its attempts (or cannot succeed) and waits for a person.
    #[serde(rename = "job.dead")]
    JobDead(JobDead),
    /// Dead jobs put back in the queue by someone.
    #[serde(rename = "jobs.retried")]
    JobsRetried(JobsRetried),
    /// Time-bound grants that ran out.
    #[serde(rename = "grant.expired")]
    GrantExpired(GrantExpired),
    #[serde(rename = "request.created")]
    RequestCreated(RequestCreated),
    /// A request granted: by policy at once, or by the answer that completed its approvals.
    #[serde(rename = "request.granted")]
    RequestGranted(RequestGranted),
    #[serde(rename = "request.approved_by")]
    ApprovedBy(Answer),
    #[serde(rename = "request.denied_by")]
    DeniedBy(Answer),
    /// Approved, then refused by a guardrail that applies at grant time.
    #[serde(rename = "request.blocked")]
    RequestBlocked(RequestBlocked),
    /// A request that ended undecided (its deadline passed, or a party to it left).
    #[serde(rename = "request.expired")]
    RequestExpired(RequestExpired),
    #[serde(rename = "token.issued")]
    TokenIssued(TokenIssued),
    #[serde(rename = "token.revoked")]
    TokenRevoked(TokenRevoked),
    #[serde(rename = "policy.deployed")]
    PolicyDeployed(PolicyDeployed),
    /// A runtime authorization decision.
    #[serde(rename = "authz.decided")]
    AuthzDecided(AuthzDecided),
    #[serde(rename = "credential.issued")]
    CredentialIssued(CredentialIssued),
    #[serde(rename = "credential.revoked")]
    CredentialRevoked(CredentialRevoked),
    /// A revoked credential checked unusable the way a relying party would check it.
    #[serde(rename = "credential.verified")]
    CredentialVerified(CredentialVerified),
    #[serde(rename = "signing_key.rotated")]
    KeyRotated(KeyRotated),
    /// A retired signing key no longer published (its last token expired).
    #[serde(rename = "signing_key.removed")]
    KeyRemoved(KeyRemoved),
    /// A reconciliation run read a whole system and decided what to do (subject: the system).
    #[serde(rename = "reconcile.run")]
    ReconcileRun(ReconcileRun),
    /// A person released (part of) a quarantined run.
    #[serde(rename = "reconcile.released")]
    ReconcileReleased(ReconcileReleased),
    /// A run stopped before it had read the whole system: nothing was concluded or applied.
    #[serde(rename = "reconcile.failed")]
    ReconcileFailed(ReconcileFailed),
    /// A run's reaction to an account tenure did not make (or a membership no grant accounts
    /// for), carried out and read back (subject: the system).
    #[serde(rename = "reconcile.corrected")]
    ReconcileCorrected(ReconcileCorrected),
    /// An access review campaign started: its items snapshotted and assigned (subject:
    /// `review:ID`).
    #[serde(rename = "review.started")]
    ReviewStarted(ReviewStarted),
    /// A decision on one review item at one stage, by its reviewer or by the campaign's
    /// no-answer default (subject: the identity whose access it is).
    #[serde(rename = "review.decided")]
    ReviewDecided(ReviewDecided),
    /// Reviewers with undecided items reminded before the deadline (subject: `review:ID`).
    #[serde(rename = "review.reminded")]
    ReviewReminded(ReviewReminded),
    /// The deadline came and the no-answer default would revoke past the campaign's
    /// threshold: nothing applied, an admin decides (subject: `review:ID`).
    #[serde(rename = "review.paused")]
    ReviewPaused(ReviewPaused),
    /// An admin let a paused campaign's no-answer default apply, or kept its items.
    #[serde(rename = "review.released")]
    ReviewReleased(ReviewReleased),
    /// Every item decided and every revocation verified by read-back (subject: `review:ID`).
    #[serde(rename = "review.closed")]
    ReviewClosed(ReviewClosed),
}

/// An entry's detail that does not fit its action.
#[derive(Debug, thiserror::Error)]
#[error("`{action}` entry: {message}")]
pub struct EventError {
    pub action: String,
    pub message: String,
}

impl LedgerEvent {
    /// The event of an entry's `action` and `detail` (taken, not copied: this runs for every
    /// entry replay or a verifier reads).
    pub fn from_parts(action: &str, detail: Value) -> Result<Self, EventError> {
        let mut m = Map::new();
        m.insert("action".into(), Value::String(action.to_owned()));
        m.insert("detail".into(), detail);
        serde_json::from_value(Value::Object(m))
            .map_err(|e| EventError { action: action.to_owned(), message: e.to_string() })
    }

    /// The entry's `action` and `detail`.
    pub fn to_parts(&self) -> (String, Value) {
        // Serializing strings, numbers, lists and maps with string keys cannot fail.
        match serde_json::to_value(self) {
            Ok(Value::Object(mut m)) => {
                let action = match m.remove("action") {
                    Some(Value::String(a)) => a,
                    _ => String::new(),
                };
                (action, m.remove("detail").unwrap_or(Value::Null))
            }
            _ => (String::new(), Value::Null),
        }
    }

    /// The lifecycle state this event moved its subject to, if it moved it.
    pub fn lifecycle_to(&self) -> Option<LifecycleState> {
        match self {
            Self::Joined(e)
            | Self::Changed(e)
            | Self::Left(e)
            | Self::OwnerChanged(e)
            | Self::Renewed(e)
            | Self::SourceSuspended(e)
            | Self::Resumed(e) => e.state.map(|s| s.to),
            Self::Activated(s) | Self::Closed(s) => Some(s.state.to),
            Self::Suspended(s) => Some(s.state.to),
            Self::Expired(e) => Some(e.state.to),
            Self::RenewedBy(r) => r.state.map(|s| s.to),
            Self::Attested(a) => a.state.map(|s| s.to),
            _ => None,
        }
    }

    /// What this event did to its subject's grants: (entitlement, the state it is in now).
    pub fn grant_states(&self) -> Vec<(&str, GrantState)> {
        let mut out = Vec::new();
        let changes = match self {
            Self::Joined(e)
            | Self::Changed(e)
            | Self::Left(e)
            | Self::OwnerChanged(e)
            | Self::Renewed(e)
            | Self::SourceSuspended(e)
            | Self::Resumed(e) => Some(&e.changes),
            Self::Expired(e) => Some(&e.changes),
            Self::RenewedBy(r) => Some(&r.changes),
            Self::Recomputed(c) => Some(c),
            Self::Suspended(s) => Some(&s.changes),
            Self::RequestGranted(r) => Some(&r.changes),
            Self::GrantExpired(g) => Some(&g.changes),
            Self::ReviewDecided(d) => Some(&d.changes),
            Self::Attested(a) => Some(&a.changes),
            _ => None,
        };
        if let Some(c) = changes {
            out.extend(c.grants_added.iter().map(|g| (g.as_str(), GrantState::Desired)));
            out.extend(c.grants_revoking.iter().map(|g| (g.as_str(), GrantState::Revoking)));
        }
        if let Self::Synced(s) = self {
            out.extend(s.provisioned.iter().map(|g| (g.as_str(), GrantState::Provisioned)));
            out.extend(s.verified.iter().map(|g| (g.as_str(), GrantState::Verified)));
            out.extend(s.revoked_unverified.iter().map(|g| (g.as_str(), GrantState::Revoked)));
            out.extend(s.revocation_verified.iter().map(|g| (g.as_str(), GrantState::RevocationVerified)));
        }
        out
    }
}

/// A value before and after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BeforeAfter<T> {
    pub before: T,
    pub after: T,
}

/// A value that changed from one thing to another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FromTo<F, T = F> {
    pub from: F,
    pub to: T,
}

/// A lifecycle move; `from` is left out where the identity is new.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateChange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<LifecycleState>,
    pub to: LifecycleState,
}

impl StateChange {
    pub fn new(from: LifecycleState, to: LifecycleState) -> Self {
        Self { from: Some(from), to }
    }
}

/// What a step did to an identity's grants, accounts and credentials; every list is left out
/// when empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changes {
    /// Entitlements newly wanted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grants_added: Vec<String>,
    /// Entitlements being revoked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grants_revoking: Vec<String>,
    /// Entitlements policy wanted that guardrails blocked, with the blocking policies.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub guardrail_blocked: BTreeMap<String, Vec<String>>,
    /// Entitlements no longer blocked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guardrail_unblocked: Vec<String>,
    /// Credentials revoked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub credentials_revoked: Vec<String>,
    /// The jobs enqueued: `sync:SYSTEM`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jobs: Vec<String>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// What an event from a source did to its identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdentityEvent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<StateChange>,
    /// A `changed` event's attributes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<BeforeAfter<BTreeMap<String, String>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<OwnerChange>,
    /// A `renewed` event's expiry (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<FromTo<Option<String>, String>>,
    #[serde(flatten)]
    pub changes: Changes,
    /// A person's non-human identities, as they left.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owned_nhis: Vec<Succession>,
    /// Digests of the identity's record before and after (none before a joiner).
    pub identity_digest: BeforeAfter<Option<String>>,
    /// The event as the source sent it.
    pub event: SourceEvent,
}

/// An owner named again, or changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OwnerChange {
    Unchanged { unchanged: String },
    Changed(FromTo<Option<String>, String>),
}

/// A source event's identity: which source, its id and type, when it happened, its digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceEvent {
    pub source: String,
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub at: String,
    pub digest: String,
}

/// What happened to one of a departing owner's non-human identities.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Succession {
    pub nhi: String,
    /// `owner_transferred` or `owner_needed`.
    pub outcome: String,
    pub detail: SuccessionDetail,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SuccessionDetail {
    Transferred(OwnerTransferred),
    Needed(OwnerNeeded),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OwnerTransferred {
    pub owner: FromTo<String>,
    pub because: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OwnerNeeded {
    pub owner_left: String,
    /// RFC 3339.
    pub deadline: String,
    pub because: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountConflict {
    pub system: String,
    pub account: String,
    pub held_by: String,
}

/// An identity whose systems all verified: what it holds, as the closing entry lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settled {
    pub state: StateChange,
    pub accounts: Vec<AccountAt>,
    pub grants: Vec<GrantAt>,
    /// Every credential whose revocation was verified: a certificate has a claim for each.
    #[serde(default)]
    pub credentials: Vec<CredentialRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountAt {
    pub system: String,
    pub account: String,
    pub state: AccountState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantAt {
    pub entitlement: String,
    pub state: GrantState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialRef {
    pub credential: String,
    pub kind: CredentialKind,
    pub fingerprint: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suspended {
    pub state: StateChange,
    pub because: String,
    /// RFC 3339.
    pub deadline: String,
    #[serde(flatten)]
    pub changes: Changes,
}

/// An owner's attestation: who, why, until when the next one is due.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attested {
    pub by: String,
    pub reason: String,
    /// RFC 3339: the next attestation's deadline.
    pub next_due: Option<String>,
    /// Set where the attestation resumed an identity a missed one had suspended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<StateChange>,
    #[serde(flatten)]
    pub changes: Changes,
}

/// A renewal by a person rather than a source: who, why, and the new expiry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenewedBy {
    /// RFC 3339 (`from` null where there was no expiry).
    pub expires_at: FromTo<Option<String>, String>,
    /// The actor: the owner's reference, or the operator.
    pub by: String,
    pub reason: String,
    /// Set where the renewal resumed an identity its expiry had suspended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<StateChange>,
    #[serde(flatten)]
    pub changes: Changes,
}

/// A snapshot held back by its threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotQuarantined {
    pub source: String,
    /// Records in the snapshot.
    pub records: usize,
    /// Current identities of the source before it.
    pub current: usize,
    /// Leavers it would have made.
    pub leavers: usize,
    pub max_leavers: usize,
    pub max_leavers_percent: u32,
    /// SHA-256 of the records as read.
    pub digest: String,
}

/// An expiry notice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expiring {
    /// RFC 3339.
    pub expires_at: String,
    /// The policy's offset this notice is for (`lifecycle.expiry_notice_days`).
    pub notice_days: i64,
    /// What policy will do at the expiry: `leave` or `suspend`.
    pub then: String,
}

/// An expiry that came.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expired {
    /// RFC 3339.
    pub expires_at: String,
    /// `leave` or `suspend` (`lifecycle.on_expiry`).
    pub outcome: String,
    pub state: StateChange,
    #[serde(flatten)]
    pub changes: Changes,
    /// A person's non-human identities, as they left.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owned_nhis: Vec<Succession>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeletionStarted {
    pub grace_days: i64,
    pub systems: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaverStalled {
    /// RFC 3339.
    pub leaving_since: String,
    pub retried_jobs: Vec<i64>,
    pub systems: Vec<String>,
    /// Whether a credentials job was queued.
    pub credentials: bool,
}

/// A sync job's outcome in one system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Synced {
    pub system: String,
    pub account: Option<String>,
    pub created: bool,
    pub disabled: bool,
    pub deleted: bool,
    /// Memberships added and removed.
    pub granted: Vec<String>,
    pub revoked: Vec<String>,
    /// The fresh read after converging.
    pub read_back: ReadBack,
    /// A leaver's account tried as its holder would.
    pub probe: Option<ProbeResult>,
    /// Elevated attributes removed as the account was disabled.
    #[serde(default)]
    pub stripped: Vec<String>,
    /// Grants now verified present, verified gone, provisioned, revoked but not yet verified.
    pub verified: Vec<String>,
    pub revocation_verified: Vec<String>,
    pub provisioned: Vec<String>,
    pub revoked_unverified: Vec<String>,
    /// Why the sync did not verify; empty when it did.
    pub problems: Vec<String>,
    /// For a leaver, in a system with correlation rules: the accounts tenure did not make that
    /// correlate to them, and what was done (entries before sweeps existed have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<Sweep>,
    /// Mapped attributes written, with their values (absent: none changed).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, Vec<String>>,
}

/// A leaver's closure sweep of one system: each correlation rule looked up, every account it
/// found that tenure did not make, taken off, and read back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sweep {
    /// The rules looked up, `account=identity` (`employeenumber=external_id`).
    pub rules: Vec<String>,
    pub accounts: Vec<SweptAccount>,
}

impl Sweep {
    /// No correlated account is enabled or in a group.
    pub fn is_closed(&self) -> bool {
        self.accounts.iter().all(|a| a.read_back.is_closed())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweptAccount {
    pub account: String,
    pub disabled: bool,
    pub revoked: Vec<String>,
    pub read_back: ReadBack,
}

/// An account as a fresh read found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadBack {
    pub present: bool,
    pub enabled: bool,
    pub memberships: Vec<String>,
}

impl ReadBack {
    /// Off (absent or disabled) and in no group: what a leaver's account must read as.
    pub fn is_closed(&self) -> bool {
        (!self.present || !self.enabled) && self.memberships.is_empty()
    }
}

/// Trying to use an account as its holder would.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "lowercase")]
pub enum ProbeResult {
    Refused { detail: String },
    Allowed,
    Unsupported { detail: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobDead {
    pub job: i64,
    pub system: String,
    pub attempts: i64,
    pub error: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobsRetried {
    pub jobs: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrantExpired {
    pub ended: Vec<EndedGrant>,
    #[serde(flatten)]
    pub changes: Changes,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndedGrant {
    pub entitlement: String,
    pub origin: String,
    pub request: Option<i64>,
    /// RFC 3339.
    pub expired_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestCreated {
    pub request: i64,
    pub kind: RequestKind,
    pub entitlement: String,
    pub intent: String,
    pub duration_minutes: Option<i64>,
    /// Policy's answer when the request was made.
    pub decision: RecordedDecision,
    /// Guardrails an exception waives.
    pub waives: Vec<String>,
}

/// A policy decision as recorded: the verdict (`allow`, `deny`, `needs_approval`), the
/// policies and reasons behind it, evaluation errors, and who must approve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedDecision {
    pub decision: String,
    pub policies: Vec<String>,
    pub reasons: Vec<String>,
    pub errors: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
    pub policy_version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    pub roles: Vec<ApproverRole>,
    pub count: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestGranted {
    pub request: i64,
    #[serde(flatten)]
    pub changes: Changes,
}

/// An approver's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub request: i64,
    pub reason: String,
    /// The approver roles the answer counts for.
    pub roles: Vec<ApproverRole>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestBlocked {
    pub request: i64,
    pub policies: Vec<String>,
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestExpired {
    pub request: i64,
    /// The deadline that passed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decide_by: Option<String>,
    /// Why it ended otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub because: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenIssued {
    pub token: String,
    pub roles: Vec<String>,
    /// RFC 3339.
    pub expires_at: String,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenRevoked {
    pub token: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyDeployed {
    pub from: Option<String>,
    pub to: String,
    pub name: String,
    /// Deployed although some of the bundle's own test cases failed: who said so and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forced: Option<ForcedDeploy>,
    /// System → accounts whose mapped attributes the new mapping rewrites (each gets a sync).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub remapped: BTreeMap<String, u64>,
    /// Past a system's threshold: the number of rewritten accounts a person accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remap_accepted: Option<u64>,
}

/// A deployment past failing test cases (`tenure policy deploy --force --reason`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForcedDeploy {
    pub reason: String,
    /// The failing cases, `file: name`.
    pub failed_cases: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthzDecided {
    pub action: String,
    pub resource: AuthzResource,
    pub context: Value,
    pub decision: String,
    pub policies: Vec<String>,
    pub reasons: Vec<String>,
    pub errors: Vec<String>,
}

/// The resource of an authorization question.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthzResource {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    pub attributes: Map<String, Value>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CredentialIssued {
    pub credential: String,
    pub kind: CredentialKind,
    pub fingerprint: String,
    pub spiffe_id: Option<String>,
    pub audience: Vec<String>,
    pub system: Option<String>,
    pub name: Option<String>,
    pub purpose: String,
    pub owner: Option<String>,
    /// RFC 3339.
    pub expires_at: String,
    pub replaces: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CredentialRevoked {
    pub credential: String,
    pub kind: CredentialKind,
    pub fingerprint: String,
    pub reason: String,
    /// The credential a rotation replaced it with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CredentialVerified {
    pub credential: String,
    pub kind: CredentialKind,
    pub fingerprint: String,
    /// RFC 3339.
    pub revoked_at: Option<String>,
    pub reason: Option<String>,
    /// How it was checked, and what the check saw.
    pub evidence: CredentialCheck,
    /// `verified`.
    pub result: String,
}

/// How a revoked credential was found unusable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method")]
pub enum CredentialCheck {
    /// RFC 7662 introspection said inactive (JWT-SVIDs, API keys).
    #[serde(rename = "introspection")]
    Introspection { introspection: Value },
    /// Introspection said inactive and the served CRL lists the certificate.
    #[serde(rename = "crl")]
    Crl { introspection: Value, crl_listed: bool, crl_entries: usize },
    /// The certificate expired (RFC 3339).
    #[serde(rename = "expired")]
    Expired { introspection: Value, expired_at: String },
    /// A dynamic login: dropped, read back absent, and refused when tried.
    #[serde(rename = "postgres-login")]
    PostgresLogin { system: String, login: String, read_back: Present, probe: ProbeResult },
}

impl CredentialCheck {
    /// Whether the check shows the credential unusable.
    pub fn shows_unusable(&self) -> bool {
        let inactive = |i: &Value| i.get("active") == Some(&Value::Bool(false));
        match self {
            Self::Introspection { introspection } | Self::Expired { introspection, .. } => inactive(introspection),
            Self::Crl { introspection, crl_listed, .. } => inactive(introspection) && *crl_listed,
            Self::PostgresLogin { read_back, probe, .. } => !read_back.present && *probe != ProbeResult::Allowed,
        }
    }

    /// The method's name, as serialized.
    pub fn method(&self) -> &'static str {
        match self {
            Self::Introspection { .. } => "introspection",
            Self::Crl { .. } => "crl",
            Self::Expired { .. } => "expired",
            Self::PostgresLogin { .. } => "postgres-login",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Present {
    pub present: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyRotated {
    /// `jwt` or `ca`.
    pub usage: String,
    pub kid: String,
    /// The key it replaced.
    pub retired: Option<String>,
    /// A JWT key's reason: `scheduled` or `on demand`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// A CA's trust domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_domain: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyRemoved {
    pub usage: String,
    pub kid: String,
    /// RFC 3339.
    pub last_token_expired: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReconcileRun {
    pub run: i64,
    pub system: String,
    pub pages: u64,
    pub accounts_read: u64,
    pub memberships_read: u64,
    /// Items per situation (`linked` included).
    pub counts: BTreeMap<String, u64>,
    /// Reactions that would change the system.
    pub changes: u64,
    /// SHA-256 (hex) of the plan's canonical form (see docs/reconciliation.md).
    pub plan_digest: String,
    /// `applied`, `quarantined` or `dry_run`.
    pub decision: String,
    /// Why a run was quarantined: the thresholds it crossed, with their stable codes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    /// Findings resolved because this run no longer saw them.
    pub resolved: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReconcileReleased {
    pub run: i64,
    pub system: String,
    /// Items released now.
    pub released: u64,
    /// Situation classes the release was limited to, if any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub only: Vec<String>,
    /// Accounts the release was limited to, if any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReconcileCorrected {
    pub run: i64,
    pub system: String,
    pub account: String,
    /// The identity the account belongs or correlates to, if any.
    pub identity: Option<String>,
    pub disabled: bool,
    pub deleted: bool,
    pub revoked: Vec<String>,
    /// The identity the account was marked for and is managed for from now on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopted: Option<String>,
    /// When the disabled account is to be deleted (RFC 3339), for a `delete` reaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_at: Option<String>,
    pub read_back: ReadBack,
    /// Why the read-back does not show what was done; empty when it does.
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReconcileFailed {
    pub run: i64,
    pub system: String,
    pub error: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Details in the shape the untyped producers wrote them, for the actions the fixture export
    /// (`tests/fixtures/before-typed-events`) has no entry of: each reads as its variant and
    /// writes back the same JSON.
    #[test]
    fn details_of_every_action_read_and_write_back_unchanged() {
        let event = json!({ "source": "hr", "id": "e1", "type": "owner_changed", "at": "2026-11-01T09:00:00Z", "digest": "ab" });
        let cases = [
            ("identity.recomputed", json!({ "grants_added": ["ldap/vpn"], "jobs": ["sync:ldap"] })),
            (
                "identity.recomputed",
                json!({ "guardrail_blocked": { "ldap/admins": ["sod-1"] }, "guardrail_unblocked": ["ldap/x"] }),
            ),
            ("identity.account_conflict", json!({ "system": "ldap", "account": "E1", "held_by": "hr:E2" })),
            (
                "identity.owner_needed",
                json!({ "owner_left": "hr:E1", "deadline": "2026-12-01T00:00:00Z", "because": "no successor" }),
            ),
            (
                "identity.owner_unchanged",
                json!({ "owner": { "unchanged": "hr:E1" }, "identity_digest": { "before": "x", "after": "x" }, "event": event }),
            ),
            (
                "identity.left",
                json!({
                    "state": { "from": "active", "to": "leaving" }, "grants_revoking": ["ldap/vpn"], "jobs": ["sync:ldap"],
                    "owned_nhis": [{ "nhi": "reg:svc", "outcome": "owner_needed", "detail": { "owner_left": "hr:E1", "deadline": "2026-12-01T00:00:00Z", "because": "b" } }],
                    "identity_digest": { "before": "x", "after": "y" }, "event": event,
                }),
            ),
            (
                "identity.suspended",
                json!({
                    "state": { "from": "active", "to": "suspended" }, "because": "nobody took it over by its deadline",
                    "deadline": "2026-12-01T00:00:00Z", "credentials_revoked": ["crd_1"], "jobs": ["sync:ldap"],
                }),
            ),
            ("identity.deletion_started", json!({ "grace_days": 30, "systems": ["ldap"] })),
            (
                "identity.renewed_by",
                json!({
                    "expires_at": { "from": "2026-12-01T00:00:00Z", "to": "2027-03-01T00:00:00Z" }, "by": "hr:E1",
                    "reason": "contract extended", "state": { "from": "suspended", "to": "active" }, "jobs": ["sync:ldap"],
                }),
            ),
            (
                "source.snapshot_quarantined",
                json!({ "source": "hr", "records": 40, "current": 100, "leavers": 60, "max_leavers": 10, "max_leavers_percent": 5, "digest": "ab" }),
            ),
            ("identity.expiring", json!({ "expires_at": "2026-12-01T00:00:00Z", "notice_days": 14, "then": "leave" })),
            (
                "identity.expired",
                json!({
                    "expires_at": "2026-12-01T00:00:00Z", "outcome": "leave", "state": { "from": "active", "to": "leaving" },
                    "grants_revoking": ["ldap/vpn"], "jobs": ["sync:ldap"],
                }),
            ),
            (
                "leaver.stalled",
                json!({ "leaving_since": "2026-11-01T09:00:00Z", "retried_jobs": [3], "systems": ["ldap"], "credentials": true }),
            ),
            ("job.dead", json!({ "job": 7, "system": "ldap", "attempts": 8, "error": "CN0001 unreachable" })),
            ("jobs.retried", json!({ "jobs": [7, 9] })),
            (
                "grant.expired",
                json!({
                    "ended": [{ "entitlement": "pg/admin", "origin": "jit", "request": 4, "expired_at": "2026-11-01T10:00:00Z" }],
                    "grants_revoking": ["pg/admin"], "jobs": ["sync:pg"],
                }),
            ),
            ("request.denied_by", json!({ "request": 4, "reason": "not now", "roles": ["manager", "system-owner"] })),
            ("request.blocked", json!({ "request": 4, "policies": ["sod-1"], "reasons": ["toxic pair"] })),
            ("request.expired", json!({ "request": 4, "decide_by": "2026-11-08T09:00:00Z" })),
            ("request.expired", json!({ "request": 4, "because": "a party to it left" })),
            ("signing_key.removed", json!({ "usage": "jwt", "kid": "k1", "last_token_expired": null })),
            (
                "signing_key.rotated",
                json!({ "usage": "ca", "kid": "k2", "retired": null, "trust_domain": "example.org" }),
            ),
            (
                "credential.verified",
                json!({
                    "credential": "crd_1", "kind": "postgres-login", "fingerprint": "ff", "revoked_at": "2026-11-01T09:00:00Z",
                    "reason": "leaver", "result": "verified",
                    "evidence": { "method": "postgres-login", "system": "pg", "login": "tnr_1", "read_back": { "present": false }, "probe": { "result": "refused", "detail": "no such role" } },
                }),
            ),
            (
                "credential.verified",
                json!({
                    "credential": "crd_2", "kind": "x509-svid", "fingerprint": "ee", "revoked_at": null, "reason": null, "result": "verified",
                    "evidence": { "method": "expired", "introspection": { "active": false }, "expired_at": "2026-11-01T09:00:00Z" },
                }),
            ),
        ];
        for (action, detail) in cases {
            let event = LedgerEvent::from_parts(action, detail.clone()).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(event.to_parts(), (action.to_owned(), detail), "{action}");
        }
    }

    #[test]
    fn an_unknown_action_or_a_detail_that_does_not_fit_is_an_error_naming_it() {
        let e = LedgerEvent::from_parts("identity.teleported", json!({})).unwrap_err();
        assert!(e.to_string().starts_with("`identity.teleported` entry: unknown variant"), "{e}");
        let e = LedgerEvent::from_parts("job.dead", json!({ "job": "seven" })).unwrap_err();
        assert!(e.to_string().starts_with("`job.dead` entry: invalid type"), "{e}");
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewStarted {
    pub campaign: i64,
    pub name: String,
    /// A micro-review's one identity (a mover, an NHI with a new owner).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    pub items: u64,
    pub stages: u32,
    /// RFC 3339.
    pub deadline: String,
    /// Items nobody could review (no reviewer but the identity itself, no fallback): they
    /// fall to the no-answer default.
    pub unassigned: u64,
    /// `keep`, `revoke` or `recommend`.
    pub no_answer: String,
    pub max_no_answer_revokes: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewDecided {
    pub campaign: i64,
    pub item: i64,
    pub entitlement: String,
    /// 0-based.
    pub stage: u32,
    /// `keep` or `revoke`.
    pub decision: String,
    pub reason: String,
    /// Decided by the campaign's no-answer default, not a reviewer.
    pub by_default: bool,
    /// What the item's evidence recommended.
    pub recommendation: String,
    #[serde(flatten)]
    pub changes: Changes,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewReminded {
    pub campaign: i64,
    /// Each reviewer with undecided items, and how many.
    pub reviewers: BTreeMap<String, u64>,
    /// RFC 3339.
    pub deadline: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewPaused {
    pub campaign: i64,
    pub undecided: u64,
    pub would_revoke: u64,
    pub max_no_answer_revokes: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewReleased {
    pub campaign: i64,
    /// `default` (the no-answer default applies) or `keep` (undecided items are kept).
    pub apply: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewClosed {
    pub campaign: i64,
    pub items: u64,
    pub kept: u64,
    pub revoked: u64,
    /// Of those, decided by the no-answer default.
    pub by_default: u64,
}
