//! Persistence behind a transactional boundary. Engine code runs its whole unit of work (state
//! change, ledger entries, outbox jobs) inside one [`WriteTx`] and commits once, so a crash at
//! any point leaves all or nothing. [`sqlite::SqliteStore`] is the embedded backend; a
//! PostgreSQL backend implements the same traits.

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub mod rows;
#[cfg(feature = "sqlite")]
pub mod sqlite;

pub use rows::*;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

use std::collections::BTreeMap;
use tenure_model::{AccountState, GrantState, IdentityRef, LifecycleState, RequestState};
use time::OffsetDateTime;

/// Errors of the store. The message is for operators' logs, never for API clients. No variant
/// names a driver's type: the engine and a second backend see the same error.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend failed (I/O, a constraint, a lock it gave up waiting for).
    #[error("ST0001 database error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("ST0002 stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("ST0003 database schema {found} is newer than this tenure understands ({known})")]
    TooNew { found: i64, known: i64 },
    #[error("ST0004 cannot open data directory `{path}`: {source}")]
    DataDir { path: String, source: std::io::Error },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A backend: hands out transactions.
pub trait Store: Send + Sync {
    /// A consistent read snapshot.
    fn read(&self) -> Result<Box<dyn ReadTx + '_>>;
    /// An exclusive write transaction; dropped without [`WriteTx::commit`] it rolls back.
    fn write(&self) -> Result<Box<dyn WriteTx + '_>>;
}

/// Everything that can be read: every read capability.
pub trait ReadTx:
    IdentityReads
    + GrantReads
    + JobReads
    + LedgerReads
    + PolicyReads
    + AccessReads
    + CredentialReads
    + TokenReads
    + FindingReads
    + RunReads
    + ScimReads
    + ReviewReads
    + PostureReads
{
}

/// Everything that can be written, inside one transaction: every write capability.
pub trait WriteTx:
    ReadTx
    + IdentityWrites
    + GrantWrites
    + JobWrites
    + LedgerWrites
    + PolicyWrites
    + AccessWrites
    + CredentialWrites
    + TokenWrites
    + FindingWrites
    + RunWrites
    + ScimWrites
    + ReviewWrites
    + PostureWrites
{
    /// Make everything done in this transaction durable; dropped without it, nothing is.
    fn commit(self: Box<Self>) -> Result<()>;
}

/// Identities and the source events that made them.
pub trait IdentityReads {
    fn identity(&self, r: &IdentityRef) -> Result<Option<IdentityRow>>;
    /// The id and revision of identity `r`. The revision changes in the same transaction as
    /// the identity or any of its grants, whoever writes them: a copy of the identity and its
    /// grants read at the revision it still has is current.
    fn identity_rev(&self, r: &IdentityRef) -> Result<Option<(i64, i64)>>;
    fn identity_by_id(&self, id: i64) -> Result<Option<IdentityRow>>;
    fn identities(&self) -> Result<Vec<IdentityRow>>;
    /// Up to `limit` identities matching `filter` whose reference sorts after `after`, in
    /// reference order: a keyset page, as cheap at the millionth row as at the first.
    fn identities_page(&self, filter: &IdentityFilter, after: Option<&str>, limit: usize) -> Result<Vec<IdentityRow>>;
    fn identities_owned_by(&self, owner: &IdentityRef) -> Result<Vec<IdentityRow>>;
    /// Another identity whose reference looks like `r` (the same UTS #39 skeleton), if any.
    fn identity_like(&self, r: &IdentityRef) -> Result<Option<IdentityRow>>;
    /// Leavers `leaving` since before `since` with no pending or running job: nothing is
    /// carrying their closure forward (the safety net re-queues them and raises an alert).
    fn leavers_stalled(&self, since: OffsetDateTime) -> Result<Vec<IdentityRow>>;
    /// Current NHIs whose wait for a new owner ended at or before `now`.
    fn owners_overdue(&self, now: OffsetDateTime) -> Result<Vec<IdentityRow>>;
    /// Identities not yet leaving (pending, active, or suspended but not by their expiry) whose
    /// expiry is at or before `by`, soonest first.
    fn identities_expiring(&self, by: OffsetDateTime) -> Result<Vec<IdentityRow>>;
    /// Closed identities (closed at or before `closed_by`) that still have a disabled account.
    fn deletions_due(&self, closed_by: OffsetDateTime) -> Result<Vec<i64>>;
    /// The digest stored for an already-accepted event, if any.
    fn event_digest(&self, source: &str, event_id: &str) -> Result<Option<String>>;
    fn event_count(&self) -> Result<i64>;
}

pub trait IdentityWrites: IdentityReads {
    fn insert_event(&mut self, e: &NewEvent<'_>) -> Result<()>;
    fn insert_identity(&mut self, i: &NewIdentity<'_>) -> Result<i64>;
    fn update_identity(&mut self, i: &IdentityRow) -> Result<()>;
    fn set_identity_state(&mut self, id: i64, state: LifecycleState, at: OffsetDateTime) -> Result<()>;
}

/// Grants (what an identity should hold) and accounts (where it holds it).
pub trait GrantReads {
    fn grants(&self, identity_id: i64) -> Result<Vec<GrantRow>>;
    /// Every grant, keyed by identity id (one query, for listings).
    fn all_grants(&self) -> Result<BTreeMap<i64, Vec<GrantRow>>>;
    /// Wanted grants whose time is up at `now`.
    fn grants_expiring(&self, now: OffsetDateTime) -> Result<Vec<GrantRow>>;
    fn accounts(&self, identity_id: i64) -> Result<Vec<AccountRow>>;
    fn account_by_name(&self, system: &str, name: &str) -> Result<Option<AccountRow>>;
    /// Every account tenure holds in `system` (for reconciliation).
    fn system_accounts(&self, system: &str) -> Result<Vec<AccountRow>>;
    /// Every grant in `system`.
    fn system_grants(&self, system: &str) -> Result<Vec<GrantRow>>;
}

pub trait GrantWrites: GrantReads {
    /// Insert a grant, or bring an existing one (of any state) back to `state`; bumps `rev`.
    fn put_grant(&mut self, g: &NewGrant<'_>) -> Result<()>;
    /// Move a grant to `to` only if it is still at `rev` (a concurrent change wins).
    fn set_grant_state(&mut self, id: i64, rev: i64, to: GrantState, at: OffsetDateTime) -> Result<bool>;
    /// Insert or update the account of an identity in a system; bumps `rev`.
    fn put_account(
        &mut self,
        identity_id: i64,
        system: &str,
        name: &str,
        state: AccountState,
        at: OffsetDateTime,
    ) -> Result<()>;
    /// Record when the system last saw the account sign in, if later than what is recorded
    /// (an observation: `rev` is not bumped). Whether it changed anything.
    fn set_account_last_login(&mut self, system: &str, name: &str, at: OffsetDateTime) -> Result<bool>;
    /// Move an account to `to` only if it is still at `rev`.
    fn set_account_state(
        &mut self,
        identity_id: i64,
        system: &str,
        rev: i64,
        to: AccountState,
        at: OffsetDateTime,
    ) -> Result<bool>;
}

/// Which dead jobs [`JobWrites::retry_dead_jobs`] re-queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadJobs {
    All,
    /// Those of the identity with this row id.
    OfIdentity(i64),
    /// The job with this id, if it is dead.
    One(i64),
}

/// The job queue (the transactional outbox).
pub trait JobReads {
    fn job_counts(&self) -> Result<BTreeMap<String, i64>>;
    fn jobs(&self, state: Option<JobState>) -> Result<Vec<JobRow>>;
    fn job(&self, id: i64) -> Result<Option<JobRow>>;
    /// At most `limit` jobs the query keeps with an id above `after`, in id order (a keyset page).
    fn jobs_page(&self, q: &JobQuery<'_>, after: Option<i64>, limit: usize) -> Result<Vec<JobRow>>;
    /// Jobs of an identity not done (pending, running or dead): work still owed to it. A
    /// notice for the identity is not work on it, and does not count.
    fn unfinished_jobs(&self, identity_id: i64) -> Result<i64>;
}

pub trait JobWrites: JobReads {
    /// Enqueue a job; a pending job for the same (kind, identity, system) absorbs it.
    fn enqueue(&mut self, job: &NewJob<'_>) -> Result<()>;
    /// Enqueue a drift job; a pending one for the same (system, account) takes its payload.
    fn enqueue_drift(&mut self, job: &NewDriftJob<'_>) -> Result<()>;
    /// Enqueue a notify job; one pending for the same (channel, key) stays as it is.
    fn enqueue_notice(&mut self, job: &NewNoticeJob<'_>) -> Result<()>;
    /// Claim the next due job (pending and due, or running with an expired lease).
    /// INVARIANT: at most one live attempt per (kind, identity, system, account).
    fn claim_job(&mut self, now: OffsetDateTime, lease: time::Duration) -> Result<Option<JobRow>>;
    /// Mark the attempt `job` (its id and attempt number, the fencing token) done; false, and
    /// nothing changed, when that attempt no longer holds the job (its lease ran out and another
    /// worker claimed it again): a stale attempt must then roll back everything it did.
    fn finish_job(&mut self, job: &JobRow, at: OffsetDateTime) -> Result<bool>;
    /// Put a failed attempt's job back with a retry time, or to `dead` when `retry_at` is
    /// `None`; false, and nothing changed, when that attempt no longer holds the job.
    fn fail_job(
        &mut self,
        job: &JobRow,
        error: &str,
        retry_at: Option<OffsetDateTime>,
        at: OffsetDateTime,
    ) -> Result<bool>;
    /// Extend a running attempt's lease to `until`; false when that attempt no longer holds it.
    fn renew_lease(&mut self, job: &JobRow, until: OffsetDateTime) -> Result<bool>;
    /// Put dead jobs back to pending, due at `at` (all of them, those of one identity, or one);
    /// returns the ids re-queued. A dead job whose work already has a pending job is closed
    /// as done instead (the pending one will do its work).
    fn retry_dead_jobs(&mut self, which: DeadJobs, at: OffsetDateTime) -> Result<Vec<i64>>;
}

/// The ledger and its signed checkpoints.
pub trait LedgerReads {
    /// The last entry's position and leaf hash: what the next entry chains to.
    fn ledger_head(&self) -> Result<Option<LedgerHead>>;
    fn ledger_for(&self, subject: &str) -> Result<Vec<LedgerRow>>;
    /// The latest entry about `subject` of `action` (`authz.decided`: its last authorization).
    fn ledger_last(&self, subject: &str, action: &str) -> Result<Option<LedgerRow>>;
    fn ledger_count(&self) -> Result<i64>;
    /// Ledger entries from `from` on (at most `limit`), as (seq, the exact hashed bytes).
    fn ledger_entries(&self, from: i64, limit: i64) -> Result<Vec<(i64, Vec<u8>)>>;
    /// Leaf hashes of entries `from..to`.
    fn ledger_leaves(&self, from: i64, to: i64) -> Result<Vec<tenure_ledger::Hash>>;
    fn checkpoints(&self) -> Result<Vec<CheckpointRow>>;
    fn latest_checkpoint(&self) -> Result<Option<CheckpointRow>>;
}

pub trait LedgerWrites: LedgerReads {
    /// Append an entry chained to the head and return its seq.
    /// INVARIANT: seq runs 0, 1, 2, … without gaps, each entry's `prev` is the leaf hash of the
    /// one before: a backend with several writers must serialize appends on the head (SQLite
    /// does, holding its write lock for the whole transaction).
    fn append_entry(&mut self, e: &NewEntry<'_>) -> Result<i64>;
    fn add_checkpoint(&mut self, c: &CheckpointRow) -> Result<()>;
}

/// Deployed policy bundles.
pub trait PolicyReads {
    fn current_policy(&self) -> Result<Option<StoredPolicy>>;
    /// The current policy's version alone (cheap; for cache lookups).
    fn current_policy_version(&self) -> Result<Option<String>>;
}

pub trait PolicyWrites: PolicyReads {
    fn deploy_policy(&mut self, p: &StoredPolicy, at: OffsetDateTime) -> Result<()>;
}

/// Access, JIT and exception requests with their approvals.
pub trait AccessReads {
    fn request(&self, id: i64) -> Result<Option<RequestRow>>;
    /// Requests, newest first; only those in `state` when given.
    fn requests(&self, state: Option<RequestState>) -> Result<Vec<RequestRow>>;
    /// At most `limit` requests the query keeps with an id below `before`, newest first (a
    /// keyset page: the next one starts before the last id of this one).
    fn requests_page(&self, q: &RequestQuery, before: Option<i64>, limit: usize) -> Result<Vec<RequestRow>>;
    /// Pending requests an identity is a party to (as beneficiary or requester).
    fn pending_requests_of(&self, identity_id: i64) -> Result<Vec<RequestRow>>;
    /// Pending requests whose decision deadline has passed at `now`.
    fn requests_overdue(&self, now: OffsetDateTime) -> Result<Vec<RequestRow>>;
    fn approvals(&self, request_id: i64) -> Result<Vec<ApprovalRow>>;
}

pub trait AccessWrites: AccessReads {
    fn insert_request(&mut self, r: &NewRequest<'_>) -> Result<i64>;
    /// Move a pending request to a final state; false if it was no longer pending.
    fn finish_request(&mut self, id: i64, to: RequestState, at: OffsetDateTime) -> Result<bool>;
    /// Record an approver's answer; false if this approver already answered.
    fn insert_approval(&mut self, a: &ApprovalRow) -> Result<bool>;
}

/// The broker's credentials (fingerprints, never secrets) and signing keys.
pub trait CredentialReads {
    fn credential(&self, id: &str) -> Result<Option<CredentialRow>>;
    fn credential_by_fingerprint(&self, fingerprint: &str) -> Result<Option<CredentialRow>>;
    /// Credentials, newest first; only an identity's when given.
    fn credentials(&self, identity_id: Option<i64>) -> Result<Vec<CredentialRow>>;
    /// At most `limit` credentials the query keeps (states as at `now`), newest first, after
    /// the credential `after` in that order (a keyset page; `after` unknown: none).
    fn credentials_page(
        &self,
        q: &CredentialQuery<'_>,
        now: OffsetDateTime,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<CredentialRow>>;
    /// An identity's credentials that are revoked but not yet verified so.
    fn credentials_to_verify(&self, identity_id: i64) -> Result<Vec<CredentialRow>>;
    /// An identity's credentials a leaver event must revoke: unrevoked and either unexpired
    /// at `now` or a dynamic login not yet dropped.
    fn credentials_live(&self, identity_id: i64, now: OffsetDateTime) -> Result<Vec<CredentialRow>>;
    /// Unrevoked dynamic logins whose time is up at `now` (to be dropped).
    fn logins_expired(&self, now: OffsetDateTime) -> Result<Vec<CredentialRow>>;
    /// Revoked X.509-SVIDs not yet expired at `now` (what the CRL lists).
    fn revoked_certificates(&self, now: OffsetDateTime) -> Result<Vec<CredentialRow>>;
    /// When the last JWT-SVID signed with `kid` expires.
    fn last_expiry_signed_by(&self, kid: &str) -> Result<Option<OffsetDateTime>>;
    /// Credentials by state at `now`: `active`, `expired`, `revoked` (not yet verified),
    /// `revocation-verified`.
    fn credential_counts(&self, now: OffsetDateTime) -> Result<BTreeMap<String, i64>>;
    /// Signing keys, oldest first.
    fn signing_keys(&self) -> Result<Vec<SigningKeyRow>>;
}

pub trait CredentialWrites: CredentialReads {
    fn insert_credential(&mut self, c: &CredentialRow) -> Result<()>;
    /// Revoke an unrevoked credential; false when it was revoked already.
    fn revoke_credential(&mut self, id: &str, at: OffsetDateTime, reason: &str) -> Result<bool>;
    fn set_credential_verified(&mut self, id: &str, at: OffsetDateTime, evidence: &serde_json::Value) -> Result<()>;
    fn insert_signing_key(&mut self, k: &SigningKeyRow) -> Result<()>;
    /// Stop signing with a key (it stays published); false if it was retired already.
    fn retire_signing_key(&mut self, kid: &str, at: OffsetDateTime) -> Result<bool>;
    /// Stop publishing a key; false if it was removed already.
    fn remove_signing_key(&mut self, kid: &str, at: OffsetDateTime) -> Result<bool>;
}

/// API tokens (hashes, never secrets).
pub trait TokenReads {
    fn token(&self, id: &str) -> Result<Option<TokenRow>>;
    fn tokens(&self) -> Result<Vec<TokenRow>>;
    /// At most `limit` tokens the query keeps (usable as at `now`), oldest first, after the
    /// token `after` in that order (a keyset page; `after` unknown: none).
    fn tokens_page(
        &self,
        q: &TokenQuery,
        now: OffsetDateTime,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<TokenRow>>;
}

pub trait TokenWrites: TokenReads {
    fn insert_token(&mut self, t: &TokenRow) -> Result<()>;
    /// Revoke a token; false if it was unknown or already revoked.
    fn revoke_token(&mut self, id: &str, at: OffsetDateTime) -> Result<bool>;
}

/// Which findings a page holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FindingQuery<'a> {
    /// Only unresolved ones.
    pub open_only: bool,
    /// Only resolved ones.
    pub resolved_only: bool,
    /// Only those about this system.
    pub system: Option<&'a str>,
    /// Only this kind, or this reconciliation class (`unmatched` for `reconcile.unmatched`).
    pub kind: Option<&'a str>,
}

/// What people must look at; a finding may be about an identity or about none (an account
/// nobody governs).
pub trait FindingReads {
    /// Findings, oldest first; only unresolved ones when `open_only`.
    fn findings(&self, open_only: bool) -> Result<Vec<FindingRow>>;
    /// At most `limit` findings the query keeps with an id above `after`, in id order (a
    /// keyset page: the next one starts after the last id of this one).
    fn findings_page(&self, q: &FindingQuery<'_>, after: Option<i64>, limit: usize) -> Result<Vec<FindingRow>>;
    fn open_findings(&self, identity_id: i64) -> Result<Vec<FindingRow>>;
}

pub trait FindingWrites: FindingReads {
    /// Open a finding unless the same one (identity or none, kind, entitlement) is open; true
    /// if opened.
    fn open_finding(&mut self, f: &NewFinding<'_>) -> Result<bool>;
    /// Resolve an open finding; true if one was open.
    fn resolve_finding(
        &mut self,
        identity_id: Option<i64>,
        kind: &str,
        entitlement: &str,
        at: OffsetDateTime,
    ) -> Result<bool>;
    /// Open a reconciliation finding, or refresh its detail and last-seen time if it is open;
    /// its id.
    fn observe(&mut self, o: &Observation<'_>) -> Result<i64>;
    /// Resolve the open reconciliation findings (`reconcile.*`) of `system` last seen before
    /// `seen_before`: a later complete run no longer sees them. How many.
    fn resolve_unseen(&mut self, system: &str, seen_before: OffsetDateTime, at: OffsetDateTime) -> Result<u64>;
}

/// The SCIM resources sources pushed (`/scim/v2/Users`), each tied to the identity it made.
pub trait ScimReads {
    fn scim_user(&self, source: &str, id: &str) -> Result<Option<ScimRow>>;
    /// By `userName`, case-insensitively.
    fn scim_user_named(&self, source: &str, user_name: &str) -> Result<Option<ScimRow>>;
    /// Every resource of a source, oldest first.
    fn scim_users(&self, source: &str) -> Result<Vec<ScimRow>>;
    /// The resource an identity was made by, if any.
    fn scim_user_of(&self, identity_id: i64) -> Result<Option<ScimRow>>;
}

pub trait ScimWrites: ScimReads {
    /// Insert or update (by source and id); a userName another resource holds is an error.
    fn put_scim_user(&mut self, r: &ScimRow) -> Result<()>;
    fn delete_scim_user(&mut self, source: &str, id: &str) -> Result<bool>;
}

/// Reconciliation runs: their plans, counts and threshold decisions.
pub trait RunReads {
    fn run(&self, id: i64) -> Result<Option<RunRow>>;
    /// Newest first, at most `limit` with an id below `before`, of one system or all (a keyset
    /// page).
    fn runs(&self, system: Option<&str>, before: Option<i64>, limit: u32) -> Result<Vec<RunRow>>;
    /// Changes carried out by runs of `system` that started at or after `since`.
    fn changes_since(&self, system: &str, since: OffsetDateTime) -> Result<i64>;
}

pub trait RunWrites: RunReads {
    fn put_run(&mut self, r: &NewRun<'_>) -> Result<i64>;
    /// A run's new state, summary and count of changes carried out (a release adds to them).
    fn update_run(&mut self, id: i64, state: &str, changes: i64, summary: &serde_json::Value) -> Result<bool>;
    fn set_run_entry(&mut self, id: i64, seq: i64) -> Result<()>;
}

/// Access review campaigns, their items (grants snapshotted at the start), who reviews each
/// item at its stage, and the decisions.
pub trait ReviewReads {
    fn campaign(&self, id: i64) -> Result<Option<CampaignRow>>;
    /// Campaigns, newest first; only those in `state` when given.
    fn campaigns(&self, state: Option<&str>) -> Result<Vec<CampaignRow>>;
    /// The last campaign started from `[reviews.NAME]`, if any.
    fn last_campaign(&self, name: &str) -> Result<Option<CampaignRow>>;
    fn review_item(&self, id: i64) -> Result<Option<ReviewItemRow>>;
    /// At most `limit` items of a campaign the query keeps with an id above `after`, in id
    /// order (a keyset page).
    fn review_items(
        &self,
        campaign_id: i64,
        q: &ReviewItemQuery,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Vec<ReviewItemRow>>;
    /// Who reviews an item at `stage`.
    fn item_reviewers(&self, item_id: i64, stage: i64) -> Result<Vec<i64>>;
    /// Every decision on a campaign's items, by item then stage.
    fn review_decisions(&self, campaign_id: i64) -> Result<Vec<ReviewDecisionRow>>;
    /// The decisions on one item, by stage.
    fn item_decisions(&self, item_id: i64) -> Result<Vec<ReviewDecisionRow>>;
    /// Whether any of a campaign's items is undecided (cheap at any campaign size).
    fn any_undecided(&self, campaign_id: i64) -> Result<bool>;
    /// Whether any item a campaign revoked still has its grant not verified revoked by
    /// read-back (a grant gone counts as verified: it went with its identity).
    fn revocations_unverified(&self, campaign_id: i64) -> Result<bool>;
    /// A campaign's items by outcome: `undecided`, `keep`, `revoke`.
    fn review_counts(&self, campaign_id: i64) -> Result<BTreeMap<String, i64>>;
    /// Per reviewer who decided items of a campaign: how many, the first and the last time.
    fn reviewer_pace(&self, campaign_id: i64) -> Result<Vec<(i64, i64, OffsetDateTime, OffsetDateTime)>>;
    /// When an NHI's owner last attested it, if ever.
    fn last_attested(&self, identity_id: i64) -> Result<Option<OffsetDateTime>>;
    /// Active identities of `kind` last attested (or, never attested, created) before `before`.
    fn attestations_due(&self, kind: tenure_model::IdentityKind, before: OffsetDateTime) -> Result<Vec<IdentityRow>>;
    /// Reviewers with undecided items at their stage, and how many each has (for reminders).
    fn reviewers_pending(&self, campaign_id: i64) -> Result<Vec<(i64, i64)>>;
    /// The latest review item about `account` in `system` (origin `unlinked`), in any campaign.
    fn account_review(&self, system: &str, account: &str) -> Result<Option<i64>>;
}

pub trait ReviewWrites: ReviewReads {
    fn insert_campaign(&mut self, c: &NewCampaign<'_>) -> Result<i64>;
    fn insert_review_item(&mut self, i: &NewReviewItem<'_>) -> Result<i64>;
    /// Assign reviewers to an item at a stage.
    fn assign_reviewers(&mut self, item_id: i64, stage: i64, reviewers: &[i64]) -> Result<()>;
    /// Record a decision at the item's current stage; false, and nothing changed, when that
    /// stage was decided already (a concurrent decision wins).
    fn insert_review_decision(&mut self, d: &ReviewDecisionRow) -> Result<bool>;
    /// Move an undecided item on: to `outcome` (final), or to the next stage when `None`.
    fn settle_review_item(&mut self, id: i64, outcome: Option<&str>, at: OffsetDateTime) -> Result<bool>;
    /// Record the ledger entry that verified an account item's revoke (once).
    fn set_review_item_verified(&mut self, id: i64, seq: i64) -> Result<bool>;
    /// Move a campaign from `from` to `to`; false if it was no longer in `from`.
    fn set_campaign_state(&mut self, id: i64, from: &str, to: &str, at: OffsetDateTime) -> Result<bool>;
    fn set_campaign_reminded(&mut self, id: i64, reminded: i64) -> Result<()>;
    /// Record an owner's attestation of an NHI (the last one counts).
    fn put_attestation(&mut self, identity_id: i64, by: i64, reason: &str, at: OffsetDateTime) -> Result<()>;
}

/// Posture report snapshots, kept so a report shows each check's trend.
pub trait PostureReads {
    /// The last `limit` snapshots, newest first: when, and the report as JSON.
    fn posture_snapshots(&self, limit: usize) -> Result<Vec<(OffsetDateTime, serde_json::Value)>>;
}

pub trait PostureWrites: PostureReads {
    fn put_posture_snapshot(&mut self, at: OffsetDateTime, report: &serde_json::Value) -> Result<()>;
}
