//! Wire types: the JSON shapes that cross tenure's edges (events in, identity views and errors
//! out). They are the public contract and are converted explicitly to and from domain types.

pub mod broker;
pub mod posture;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// One lifecycle event as a source sends it. This shape is the public contract.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventWire {
    pub source: String,
    pub id: String,
    #[serde(rename = "type")]
    pub kind: EventType,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "DateTime")]
    pub at: OffsetDateTime,
    pub identity: IdentityWire,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    Joined,
    Changed,
    Left,
    OwnerChanged,
    Renewed,
    /// The source holds the identity back for now (a leave of absence, a deactivation).
    Suspended,
    /// The source lifts its suspension.
    Resumed,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Joined => "joined",
            Self::Changed => "changed",
            Self::Left => "left",
            Self::OwnerChanged => "owner_changed",
            Self::Renewed => "renewed",
            Self::Suspended => "suspended",
            Self::Resumed => "resumed",
        }
    }
}

/// The identity part of an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentityWire {
    pub external_id: String,
    pub kind: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub purpose: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<DateTime>")]
    pub expires_at: Option<OffsetDateTime>,
}

/// An identity as the API and `tenure identities` show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IdentityView {
    #[serde(rename = "ref")]
    pub reference: String,
    pub kind: String,
    pub name: String,
    pub state: String,
    pub owner: Option<String>,
    pub purpose: Option<String>,
    pub expires_at: Option<String>,
    pub attributes: BTreeMap<String, String>,
    pub grants: Vec<GrantView>,
    pub policy_version: String,
    pub updated_at: String,
    /// For an NHI whose owner left: when it is suspended unless someone takes it over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_deadline: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GrantView {
    pub entitlement: String,
    pub system: String,
    pub state: String,
    pub origin: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// `GET /healthz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
    pub policy_version: String,
}

/// The queue (`GET /v1/jobs`, `tenure jobs status`): counts by state, and the jobs asked for
/// (the failing ones — dead-lettered or waiting for a retry — unless a state is named).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct JobsView {
    pub counts: std::collections::BTreeMap<String, i64>,
    pub jobs: Vec<JobView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct JobView {
    pub id: i64,
    /// `sync`, `credentials` or `drift`.
    pub kind: String,
    /// The identity's reference (`source:external_id`); `""` for a drift job about an account
    /// nobody holds.
    pub identity: String,
    pub identity_id: Option<i64>,
    pub system: String,
    /// The account a drift job is about.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub account: String,
    pub state: String,
    pub attempts: i64,
    pub error: Option<String>,
}

/// An identity with its accounts and its timeline (`GET /v1/identities/{ref}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IdentityDetail {
    #[serde(flatten)]
    pub identity: IdentityView,
    pub accounts: Vec<AccountView>,
    pub timeline: Vec<LedgerEntryView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AccountView {
    pub system: String,
    pub account: String,
    pub state: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LedgerEntryView {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub policy_version: String,
    pub detail: serde_json::Value,
}

/// The result of an accepted batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IngestReport {
    pub accepted: usize,
    pub duplicates: usize,
    pub policy_version: String,
}

/// Every error answer of the API: a stable code, a message for people, and per-record details.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<RecordErrorView>,
}

/// One bad record of a rejected batch: where it is (array index or file line) and what is wrong.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RecordErrorView {
    pub record: usize,
    pub field: String,
    pub message: String,
}

/// `POST /v1/requests`: access to an entitlement, a JIT elevation, or an exception to a guardrail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestWire {
    /// Who gets the access (`source:external_id`); the caller by default.
    #[serde(default)]
    pub beneficiary: Option<String>,
    pub entitlement: String,
    /// `access` (default), `jit` or `exception`.
    #[serde(default)]
    pub kind: Option<String>,
    /// Why: the declared intent (for an exception, its justification).
    #[serde(default)]
    pub intent: String,
    /// How long the access lasts once granted; required for `jit` and `exception`.
    #[serde(default)]
    pub duration_minutes: Option<i64>,
}

/// `POST /v1/identities/{reference}/renew`: the new expiry, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RenewWire {
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "DateTime")]
    pub expires_at: time::OffsetDateTime,
    pub reason: String,
}

/// `POST /v1/requests/{id}/approve` and `/deny`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerWire {
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ApprovalView {
    pub approver: String,
    pub approve: bool,
    pub reason: String,
    pub at: String,
}

/// A request with its decision and answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RequestView {
    pub id: i64,
    pub kind: String,
    pub requester: String,
    pub beneficiary: String,
    pub entitlement: String,
    pub intent: String,
    pub duration_minutes: Option<i64>,
    pub state: String,
    /// The policy decision when the request was made.
    pub decision: DecisionView,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waives: Vec<String>,
    pub approvals: Vec<ApprovalView>,
    pub created_at: String,
    pub decide_by: String,
    pub decided_at: Option<String>,
}

/// `POST /v1/reviews`: start a campaign defined in the deployed bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartReviewWire {
    /// The `[reviews.NAME]` to start.
    pub name: String,
}

/// `POST /v1/reviews/{id}/items/{item}/decide`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewDecisionWire {
    /// `keep` or `revoke`.
    pub decision: String,
    /// Why; required to revoke and to keep privileged access.
    #[serde(default)]
    pub reason: String,
}

/// `POST /v1/reviews/{id}/release`: what a paused campaign's undecided items get.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewReleaseWire {
    /// `default` (the campaign's no-answer default applies) or `keep`.
    pub apply: String,
    pub reason: String,
}

/// An access review campaign with its counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CampaignView {
    pub id: i64,
    pub name: String,
    /// `open`, `paused`, `completing`, `closed`.
    pub state: String,
    pub policy_version: String,
    pub stages: i64,
    pub started_at: String,
    pub started_by: String,
    pub deadline: String,
    pub closed_at: Option<String>,
    /// Items by outcome: `undecided`, `keep`, `revoke`.
    pub items: BTreeMap<String, i64>,
    /// Reviewers who decided many items in little time (rubber-stamping), each said in words.
    pub rubber_stamping: Vec<String>,
}

/// One decision on a review item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReviewDecisionView {
    pub stage: i64,
    pub decision: String,
    pub reason: String,
    /// The reviewer; `null` for the campaign's no-answer default.
    pub by: Option<String>,
    pub at: String,
    /// The `review.decided` ledger entry.
    pub entry: i64,
}

/// One grant under review.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReviewItemView {
    pub id: i64,
    pub campaign: i64,
    pub identity: String,
    pub name: String,
    pub kind: String,
    pub entitlement: String,
    pub system: String,
    pub origin: String,
    pub privileged: bool,
    pub granted_at: Option<String>,
    /// 0-based stage it waits at or was decided at.
    pub stage: i64,
    /// Who may decide it now (empty once decided).
    pub reviewers: Vec<String>,
    /// `keep` or `revoke`, and the evidence behind it.
    pub recommendation: String,
    pub evidence: serde_json::Value,
    /// `pending`, `kept`, `revoking` (decided, not yet read back), `revoked (verified)`.
    pub status: String,
    pub decisions: Vec<ReviewDecisionView>,
}

/// `GET /v1/reviews/{id}`: the campaign and a page of the items the caller may see.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReviewPage {
    pub campaign: CampaignView,
    pub items: Vec<ReviewItemView>,
}

/// `POST /v1/authorize`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeWire {
    pub principal: String,
    pub action: String,
    pub resource: ResourceWire,
    #[serde(default = "empty_object")]
    pub context: serde_json::Value,
}

/// The resource of an authorization question: a typed id with attributes and (for
/// `Tenure::Resource`) tags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceWire {
    /// The Cedar entity type; `Tenure::Resource` when left out.
    #[serde(rename = "type", default = "default_resource_type")]
    pub kind: String,
    pub id: String,
    #[serde(default)]
    pub attributes: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

fn default_resource_type() -> String {
    "Tenure::Resource".into()
}

/// A policy decision (`POST /v1/authorize`, and a request's decision): the verdict, the
/// policies and reasons behind it, evaluation errors, who must approve, the policy version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DecisionView {
    /// `allow`, `deny` or `needs_approval`.
    pub decision: String,
    pub policies: Vec<String>,
    pub reasons: Vec<String>,
    pub errors: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalNeeded>,
    pub policy_version: String,
}

/// Who must approve: someone eligible for each role, `count` distinct people in all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ApprovalNeeded {
    pub roles: Vec<String>,
    pub count: u32,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

/// `POST /v1/tokens`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenWire {
    pub identity: String,
    pub roles: Vec<String>,
    #[serde(default)]
    pub ttl_days: Option<i64>,
    #[serde(default)]
    pub description: String,
}

/// An API token as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TokenView {
    pub id: String,
    pub identity: String,
    pub roles: Vec<String>,
    pub description: String,
    pub created_at: String,
    pub expires_at: String,
    pub revoked_at: Option<String>,
}

/// A token just issued: the only time its secret is shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IssuedTokenView {
    #[serde(flatten)]
    pub token: TokenView,
    pub secret: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FindingView {
    pub id: i64,
    pub identity: String,
    pub kind: String,
    pub entitlement: String,
    pub detail: serde_json::Value,
    pub policy_version: String,
    pub opened_at: String,
    pub resolved_at: Option<String>,
    /// The system and account of a reconciliation finding.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub system: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub account: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_at: Option<String>,
}

/// A reconciliation run (`GET /v1/reconcile/runs/ID`, `tenure reconcile show`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunView {
    pub id: i64,
    pub system: String,
    /// `dry_run`, `applied`, `quarantined` or `released`.
    pub state: String,
    pub started_at: String,
    pub finished_at: String,
    pub pages: u64,
    pub accounts_read: u64,
    pub memberships_read: u64,
    /// Items per situation, `linked` included.
    pub counts: std::collections::BTreeMap<String, u64>,
    /// Reactions the plan holds that change the system.
    pub planned_changes: u64,
    /// Of those, handed to jobs so far (all of them once applied, the released part of a
    /// quarantined run).
    pub applied_changes: i64,
    /// Thresholds a quarantined run crossed, each with its stable code.
    pub reasons: Vec<String>,
    pub plan_digest: String,
    pub ledger_seq: Option<i64>,
    /// Why a `failed` run stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The access reviews this run opened (reaction `review`: one per account), by id.
    #[serde(default)]
    pub reviews_opened: Vec<i64>,
    /// Last sign-ins read and recorded on tenure's accounts (where the system keeps them).
    #[serde(default)]
    pub last_logins_recorded: u64,
    /// The plan's items that are not `linked` (absent in listings).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<serde_json::Value>,
}

/// `POST /v1/reconcile`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReconcileWire {
    /// One system; every system with reconciliation rules when absent.
    #[serde(default)]
    pub system: Option<String>,
    #[serde(default)]
    pub dry_run: bool,
}

/// `POST /v1/credentials`: ask the broker for a credential for an NHI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialWire {
    /// `source:external_id` of the NHI; defaults to the caller when it is an NHI itself.
    #[serde(default)]
    pub identity: Option<String>,
    /// `jwt-svid`, `x509-svid`, `api-key` or `postgres-login`.
    pub kind: String,
    /// Lifetime, e.g. `5m`; defaults to the policy's maximum.
    #[serde(default)]
    pub ttl: Option<String>,
    /// JWT-SVID audiences (at least one).
    #[serde(default)]
    pub audience: Vec<String>,
    /// X.509-SVID: the PEM certificate request.
    #[serde(default)]
    pub csr: Option<String>,
    /// Dynamic login: the postgres system.
    #[serde(default)]
    pub system: Option<String>,
    #[serde(default)]
    pub purpose: Option<String>,
}

/// `POST /v1/credentials/{id}/rotate` (an X.509-SVID needs a new CSR) and `…/revoke`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialActionWire {
    #[serde(default)]
    pub csr: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
}

/// A credential as listed: never its secret, only its fingerprint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CredentialView {
    pub id: String,
    pub identity: String,
    pub kind: String,
    /// `active`, `expired`, `revoked` or `revocation-verified`.
    pub state: String,
    /// Hex SHA-256 of the secret form.
    pub fingerprint: String,
    pub spiffe_id: Option<String>,
    pub audience: Vec<String>,
    pub system: Option<String>,
    /// A dynamic login's role, an X.509-SVID's serial, a JWT-SVID's signing key id.
    pub name: Option<String>,
    pub purpose: String,
    pub owner: Option<String>,
    pub issued_by: String,
    pub issued_at: String,
    pub expires_at: String,
    /// When the holder should ask for its replacement (half its lifetime, like SPIRE).
    pub rotate_after: String,
    pub revoked_at: Option<String>,
    pub revoke_reason: Option<String>,
    pub verified_at: Option<String>,
    pub replaces: Option<String>,
}

/// A credential just issued: the only time its secret is shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IssuedCredentialView {
    #[serde(flatten)]
    pub credential: CredentialView,
    /// The JWT, the API key, the login's password, or the certificate (PEM).
    pub secret: String,
    /// A dynamic login's user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// An X.509-SVID's trust bundle (PEM), to verify peers with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle: Option<String>,
}

/// The schema of a timestamp on the wire: an RFC 3339 string (`time`'s `OffsetDateTime`, which
/// has no schema of its own).
pub struct DateTime;

impl JsonSchema for DateTime {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "DateTime".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string", "format": "date-time" })
    }
}

/// How one check of a system ended (`GET /v1/systems`, `tenure systems check`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckOutcome {
    Ok,
    Failed,
    /// Not checked (and why is in the detail).
    NotChecked,
}

/// One check of one system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SystemCheck {
    /// `settings`, `tls`, `reach`, `credentials`, `base`, `read groups`, `write`.
    pub check: String,
    pub outcome: CheckOutcome,
    pub detail: String,
    /// What to do, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remedy: Option<String>,
}

/// Every check of one system of the deployed policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SystemReport {
    pub system: String,
    /// `ldap`, `postgres`, `scim` or `exec`.
    #[serde(rename = "type")]
    pub kind: String,
    pub checks: Vec<SystemCheck>,
}

impl SystemReport {
    /// Whether any check failed.
    pub fn failed(&self) -> bool {
        self.checks.iter().any(|c| c.outcome == CheckOutcome::Failed)
    }
}
