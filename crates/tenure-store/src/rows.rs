//! Rows as the store hands them out and takes them in.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use tenure_model::{
    AccountState, CredentialKind, GrantState, IdentityKind, IdentityRef, LifecycleState, RequestKind, RequestState,
};
use time::OffsetDateTime;

/// Which identities a page lists: every condition given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdentityFilter {
    pub state: Option<LifecycleState>,
    pub kind: Option<IdentityKind>,
    /// The source: references `SOURCE:…`.
    pub source: Option<String>,
}

/// Which requests a page lists: every condition given must hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestQuery {
    pub state: Option<RequestState>,
    pub kind: Option<RequestKind>,
    /// Only those for this identity (its id).
    pub beneficiary_id: Option<i64>,
}

/// Which credentials a page lists: every condition given must hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CredentialQuery<'a> {
    pub identity_id: Option<i64>,
    pub kind: Option<CredentialKind>,
    /// Only dynamic logins on this system.
    pub system: Option<&'a str>,
    /// Only in this state at the query's `now` (`tenure_broker::state`'s names).
    pub state: Option<CredentialStatus>,
}

/// A credential's state as lists filter on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialStatus {
    /// Unrevoked and unexpired.
    Active,
    /// Unrevoked, past its expiry.
    Expired,
    /// Revoked, the revocation not yet verified.
    Revoked,
    /// Revoked and verified so.
    RevocationVerified,
}

impl CredentialStatus {
    pub const ALL: [Self; 4] = [Self::Active, Self::Expired, Self::Revoked, Self::RevocationVerified];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
            Self::RevocationVerified => "revocation-verified",
        }
    }
}

impl FromStr for CredentialStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| format!("expected one of active, expired, revoked, revocation-verified, found `{s}`"))
    }
}

/// Which API tokens a page lists: every condition given must hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenQuery {
    pub identity_id: Option<i64>,
    /// Only in this state at the query's `now`.
    pub state: Option<TokenStatus>,
}

/// An API token's state as lists filter on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenStatus {
    /// Unrevoked and unexpired: it authenticates.
    Active,
    /// Unrevoked, past its expiry.
    Expired,
    Revoked,
}

impl TokenStatus {
    pub const ALL: [Self; 3] = [Self::Active, Self::Expired, Self::Revoked];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }
}

impl FromStr for TokenStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| format!("expected one of active, expired, revoked, found `{s}`"))
    }
}

/// Which jobs a page lists: every condition given must hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobQuery<'a> {
    pub state: Option<JobState>,
    /// Only dead jobs and pending ones with a failed attempt behind them (what needs a look).
    pub failing: bool,
    pub kind: Option<JobKind>,
    pub system: Option<&'a str>,
    pub identity_id: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IdentityRow {
    pub id: i64,
    pub reference: IdentityRef,
    pub kind: IdentityKind,
    pub name: String,
    pub attributes: BTreeMap<String, String>,
    pub owner: Option<IdentityRef>,
    pub purpose: Option<String>,
    pub expires_at: Option<OffsetDateTime>,
    pub state: LifecycleState,
    pub policy_version: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// For an NHI whose owner left: when it is suspended unless someone takes it.
    pub owner_deadline: Option<OffsetDateTime>,
    /// Why it is suspended (`None` unless it is; before migration 12, ownerless NHIs only).
    pub suspended_by: Option<tenure_model::SuspendedBy>,
    /// Its revision: changed by the store in the same transaction as anything about the
    /// identity or its grants (see [`crate::IdentityReads::identity_rev`]).
    pub rev: i64,
}

#[derive(Debug, Clone)]
pub struct NewIdentity<'a> {
    pub reference: &'a IdentityRef,
    pub kind: IdentityKind,
    pub name: &'a str,
    pub attributes: &'a BTreeMap<String, String>,
    pub owner: Option<&'a IdentityRef>,
    pub purpose: Option<&'a str>,
    pub expires_at: Option<OffsetDateTime>,
    pub state: LifecycleState,
    pub policy_version: &'a str,
    pub at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GrantRow {
    pub id: i64,
    pub identity_id: i64,
    pub entitlement: String,
    pub system: String,
    pub state: GrantState,
    pub origin: String,
    pub policy_version: String,
    pub rev: i64,
    /// When a time-bound grant (JIT, exception, request with a duration) ends.
    pub expires_at: Option<OffsetDateTime>,
    /// The request that gave it, if any.
    pub request_id: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct NewGrant<'a> {
    pub identity_id: i64,
    pub entitlement: &'a str,
    pub system: &'a str,
    pub state: GrantState,
    pub origin: &'a str,
    pub policy_version: &'a str,
    pub at: OffsetDateTime,
    pub expires_at: Option<OffsetDateTime>,
    pub request_id: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AccountRow {
    pub identity_id: i64,
    pub system: String,
    /// The account's name in the system (an LDAP uid, a role name, …); fixed at creation.
    pub name: String,
    pub state: AccountState,
    pub rev: i64,
    /// When the system last saw the account sign in, as a reconciliation scan read it (LDAP
    /// `authTimestamp`, AD `lastLogonTimestamp`); `None` where the system does not say.
    pub last_login: Option<OffsetDateTime>,
}

#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    pub source: &'a str,
    pub event_id: &'a str,
    pub kind: &'a str,
    pub identity: &'a str,
    pub at: OffsetDateTime,
    pub received_at: OffsetDateTime,
    pub digest: &'a str,
    pub payload: &'a str,
}

/// What a job does. Jobs are idempotent: they converge a system to what the store wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    /// Make the identity's account and memberships in one system match the store; verify.
    Sync,
    /// Carry out and verify the revocation of the identity's revoked credentials (drop
    /// dynamic logins; check introspection and the CRL say revoked).
    Credentials,
    /// Carry out what a reconciliation run decided about one account tenure did not make (or
    /// one membership no grant accounts for): disable, delete or revoke; verify by read-back.
    Drift,
    /// Deliver one notice through one channel (a webhook, an email); its payload is the notice.
    Notify,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sync => "sync",
            Self::Credentials => "credentials",
            Self::Drift => "drift",
            Self::Notify => "notify",
        }
    }
}

impl FromStr for JobKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sync" => Ok(Self::Sync),
            "credentials" => Ok(Self::Credentials),
            "drift" => Ok(Self::Drift),
            "notify" => Ok(Self::Notify),
            _ => Err(format!("unknown job kind `{s}`")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Pending,
    Running,
    Done,
    Dead,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Done => "done",
            Self::Dead => "dead",
        }
    }
}

impl FromStr for JobState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(Self::Pending),
            "running" => Ok(Self::Running),
            "done" => Ok(Self::Done),
            "dead" => Ok(Self::Dead),
            _ => Err(format!("unknown job state `{s}`")),
        }
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone)]
pub struct NewJob<'a> {
    pub kind: JobKind,
    pub identity_id: i64,
    pub system: &'a str,
    pub run_at: OffsetDateTime,
    /// The API request it came of (`X-Request-Id`), if any.
    pub request_id: Option<&'a str>,
}

/// A notify job: one notice (`key`, unique per notice and recipient) through one channel.
/// Enqueuing a notice already pending for the channel does nothing.
#[derive(Debug, Clone)]
pub struct NewNoticeJob<'a> {
    /// Whom the notice is for, if one identity.
    pub identity_id: Option<i64>,
    pub channel: &'a str,
    pub key: &'a str,
    pub payload: &'a serde_json::Value,
    pub run_at: OffsetDateTime,
}

/// A drift job: about one account in a system, with or without an identity, carrying what to
/// do (its payload replaces a pending job's for the same account).
#[derive(Debug, Clone)]
pub struct NewDriftJob<'a> {
    pub identity_id: Option<i64>,
    pub system: &'a str,
    pub account: &'a str,
    pub payload: &'a serde_json::Value,
    pub run_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq)]
pub struct JobRow {
    pub id: i64,
    pub kind: JobKind,
    /// The identity the job is for; a drift job about an account nobody holds has none.
    pub identity_id: Option<i64>,
    pub system: String,
    /// The account a drift job is about (`""` for other kinds).
    pub account: String,
    pub payload: Option<serde_json::Value>,
    pub state: JobState,
    /// Attempts so far, including the one just claimed.
    pub attempts: i64,
    pub last_error: Option<String>,
    /// The API request it came of, if any.
    pub request_id: Option<String>,
}

/// An entry to append to the ledger: who did what to whom, under which policy.
#[derive(Debug, Clone)]
pub struct NewEntry<'a> {
    pub at: OffsetDateTime,
    pub actor: &'a str,
    pub subject: &'a str,
    pub policy_version: &'a str,
    pub event: &'a tenure_ledger::LedgerEvent,
    /// The API request it came of (`X-Request-Id`), if any.
    pub request_id: Option<&'a str>,
}

/// A ledger entry, read back.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerRow {
    pub seq: i64,
    pub at: OffsetDateTime,
    pub actor: String,
    pub subject: String,
    pub policy_version: String,
    pub event: tenure_ledger::LedgerEvent,
}

/// A deployed policy bundle: its version and files.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPolicy {
    pub version: String,
    pub files: BTreeMap<String, Vec<u8>>,
}

/// A signed checkpoint and the Merkle frontier to continue from.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointRow {
    pub size: i64,
    pub root: Vec<u8>,
    pub frontier: Vec<u8>,
    /// The C2SP signed note.
    pub note: String,
    pub created_at: OffsetDateTime,
}

/// An access, JIT or exception request.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestRow {
    pub id: i64,
    pub kind: RequestKind,
    pub requester_id: i64,
    pub beneficiary_id: i64,
    pub entitlement: String,
    pub intent: String,
    pub duration: Option<time::Duration>,
    pub state: RequestState,
    /// The policy decision when it was made (verdict, policies, reasons, approval needed).
    pub decision: serde_json::Value,
    /// Guardrails an exception waives.
    pub waives: Vec<String>,
    pub policy_version: String,
    pub created_at: OffsetDateTime,
    pub decide_by: OffsetDateTime,
    pub decided_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone)]
pub struct NewRequest<'a> {
    pub kind: RequestKind,
    pub requester_id: i64,
    pub beneficiary_id: i64,
    pub entitlement: &'a str,
    pub intent: &'a str,
    pub duration: Option<time::Duration>,
    pub state: RequestState,
    pub decision: &'a serde_json::Value,
    pub waives: &'a [String],
    pub policy_version: &'a str,
    pub at: OffsetDateTime,
    pub decide_by: OffsetDateTime,
}

/// One approver's answer to a request.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalRow {
    pub request_id: i64,
    pub approver_id: i64,
    pub approve: bool,
    pub reason: String,
    pub at: OffsetDateTime,
}

/// An API token: only the SHA-256 of its secret is kept.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRow {
    pub id: String,
    pub identity_id: i64,
    pub roles: Vec<String>,
    pub hash: Vec<u8>,
    pub description: String,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
}

/// Something people must look at: a guardrail that blocked a grant policy wanted, …
#[derive(Debug, Clone, PartialEq)]
pub struct FindingRow {
    pub id: i64,
    /// The identity it is about; none for what no identity holds (an account nobody governs).
    pub identity_id: Option<i64>,
    pub kind: String,
    pub entitlement: String,
    pub detail: serde_json::Value,
    pub policy_version: String,
    pub opened_at: OffsetDateTime,
    pub resolved_at: Option<OffsetDateTime>,
    /// The system and account a reconciliation finding is about (`""` for other findings).
    pub system: String,
    pub account: String,
    /// When a reconciliation run last saw it (it resolves once a run no longer does).
    pub last_seen_at: Option<OffsetDateTime>,
}

/// What a reconciliation run saw about an account (or one of its memberships): opens the
/// finding, or refreshes it when it is open already.
#[derive(Debug, Clone)]
pub struct Observation<'a> {
    /// The identity the account belongs or correlates to, if any.
    pub identity_id: Option<i64>,
    pub kind: &'a str,
    pub system: &'a str,
    pub account: &'a str,
    /// The membership target, `""` for the account as a whole.
    pub target: &'a str,
    pub detail: &'a serde_json::Value,
    pub policy_version: &'a str,
    pub at: OffsetDateTime,
}

/// A reconciliation run, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    pub id: i64,
    pub system: String,
    /// `dry_run`, `applied`, `quarantined`, `released`.
    pub state: String,
    pub started_at: OffsetDateTime,
    pub finished_at: OffsetDateTime,
    /// Changes carried out (reactions other than `report`), for the window threshold.
    pub changes: i64,
    /// Counts, reads, the threshold decision.
    pub summary: serde_json::Value,
    /// The items of the plan that are not `linked`, in plan order.
    pub plan: serde_json::Value,
    /// SHA-256 (hex) of the plan's canonical form.
    pub digest: String,
    /// The `reconcile.run` ledger entry.
    pub ledger_seq: Option<i64>,
    pub policy_version: String,
}

/// A run to record.
#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    pub system: &'a str,
    pub state: &'a str,
    pub started_at: OffsetDateTime,
    pub finished_at: OffsetDateTime,
    pub changes: i64,
    pub summary: &'a serde_json::Value,
    pub plan: &'a serde_json::Value,
    pub digest: &'a str,
    pub policy_version: &'a str,
}

/// A finding to open.
#[derive(Debug, Clone)]
pub struct NewFinding<'a> {
    pub identity_id: Option<i64>,
    pub kind: &'a str,
    /// What it is about within the identity (an entitlement, a system); `""` for the whole.
    pub entitlement: &'a str,
    pub detail: &'a serde_json::Value,
    pub policy_version: &'a str,
    pub at: OffsetDateTime,
}

/// The last entry of the ledger: what the next one chains to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerHead {
    pub seq: i64,
    pub leaf: tenure_ledger::Hash,
}

/// A credential the broker issued. Its secret is never stored: only the fingerprint (hex
/// SHA-256 of the token, key, password or certificate DER).
#[derive(Debug, Clone, PartialEq)]
pub struct CredentialRow {
    pub id: String,
    pub identity_id: i64,
    pub kind: CredentialKind,
    pub fingerprint: String,
    pub spiffe_id: Option<String>,
    pub audience: Vec<String>,
    /// The system of a dynamic login.
    pub system: Option<String>,
    /// A dynamic login's role, an X.509-SVID's serial (hex), a JWT-SVID's signing `kid`.
    pub name: Option<String>,
    pub purpose: String,
    /// The identity's owner when it was issued.
    pub owner: Option<String>,
    pub issued_by: String,
    pub issued_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
    pub revoke_reason: Option<String>,
    /// When the revocation (or a dynamic login's end) was verified, and how.
    pub verified_at: Option<OffsetDateTime>,
    pub evidence: Option<serde_json::Value>,
    /// The credential this one rotated.
    pub replaces: Option<String>,
}

/// A signing key of the broker (its private half lives in the key directory, not here).
#[derive(Debug, Clone, PartialEq)]
pub struct SigningKeyRow {
    /// JWT: the RFC 7638 thumbprint; CA: the certificate's serial (hex).
    pub kid: String,
    /// `jwt` or `ca`.
    pub usage: String,
    /// JWT: the public JWK (JSON); CA: the certificate (PEM).
    pub public: String,
    pub created_at: OffsetDateTime,
    /// No longer used to sign; still published.
    pub retired_at: Option<OffsetDateTime>,
    /// No longer published.
    pub removed_at: Option<OffsetDateTime>,
}

/// A SCIM resource a source pushed, as stored (without `id` and `meta`, which are ours).
#[derive(Debug, Clone, PartialEq)]
pub struct ScimRow {
    pub source: String,
    pub id: String,
    pub identity_id: i64,
    pub user_name: String,
    /// Bumped on every change; the ETag.
    pub version: i64,
    pub resource: serde_json::Value,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// An access review campaign, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignRow {
    pub id: i64,
    /// The `[reviews.NAME]` it was started from.
    pub name: String,
    /// `open`, `paused` (its no-answer default would revoke past the threshold: waits for an
    /// admin), `completing` (every item decided, revocations being verified), `closed`.
    pub state: String,
    pub policy_version: String,
    /// How many stages its items go through.
    pub stages: i64,
    pub started_at: OffsetDateTime,
    pub deadline: OffsetDateTime,
    /// How many of its reminders have gone out.
    pub reminded: i64,
    /// Who started it (the ledger's actor form).
    pub started_by: String,
    pub closed_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone)]
pub struct NewCampaign<'a> {
    pub name: &'a str,
    pub policy_version: &'a str,
    pub stages: i64,
    pub started_at: OffsetDateTime,
    pub deadline: OffsetDateTime,
    pub started_by: &'a str,
}

/// One grant under review: what was snapshotted when the campaign started, where it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewItemRow {
    pub id: i64,
    pub campaign_id: i64,
    pub identity_id: i64,
    pub grant_id: i64,
    pub entitlement: String,
    pub system: String,
    pub origin: String,
    pub privileged: bool,
    /// When it was granted, where tenure knows (the request's decision).
    pub granted_at: Option<OffsetDateTime>,
    /// The stage it waits at (0-based), or was decided at.
    pub stage: i64,
    /// `keep` or `revoke`, with the evidence behind it.
    pub recommendation: String,
    pub evidence: serde_json::Value,
    /// `keep` or `revoke` once final; `None` while undecided.
    pub outcome: Option<String>,
    pub decided_at: Option<OffsetDateTime>,
    /// An account item's revoke (origin `unlinked`): the `reconcile.corrected` entry whose
    /// read-back verified the account disabled. (A grant's revoke is verified on the grant.)
    pub verified_seq: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct NewReviewItem<'a> {
    pub campaign_id: i64,
    pub identity_id: i64,
    pub grant_id: i64,
    pub entitlement: &'a str,
    pub system: &'a str,
    pub origin: &'a str,
    pub privileged: bool,
    pub granted_at: Option<OffsetDateTime>,
    pub recommendation: &'a str,
    pub evidence: &'a serde_json::Value,
}

/// A decision on an item at one stage: a reviewer's, or the campaign's no-answer default
/// (`decided_by` `None`).
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewDecisionRow {
    pub item_id: i64,
    pub stage: i64,
    pub decision: String,
    pub reason: String,
    pub decided_by: Option<i64>,
    pub at: OffsetDateTime,
    /// The `review.decided` ledger entry.
    pub seq: i64,
}

/// Which items of a campaign a page holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReviewItemQuery {
    /// Only those this identity reviews at their current stage.
    pub reviewer: Option<i64>,
    /// Only undecided ones.
    pub undecided: bool,
}
