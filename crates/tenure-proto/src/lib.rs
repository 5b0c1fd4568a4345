//! Wire types: the JSON shapes that cross tenure's edges (events in, identity views and errors
//! out). They are the public contract and are converted explicitly to and from domain types.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// One lifecycle event as a source sends it. This shape is the public contract.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventWire {
    pub source: String,
    pub id: String,
    #[serde(rename = "type")]
    pub kind: EventType,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub identity: IdentityWire,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    Joined,
    Changed,
    Left,
    OwnerChanged,
    Renewed,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Joined => "joined",
            Self::Changed => "changed",
            Self::Left => "left",
            Self::OwnerChanged => "owner_changed",
            Self::Renewed => "renewed",
        }
    }
}

/// The identity part of an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    pub expires_at: Option<OffsetDateTime>,
}

/// An identity as the API and `tenure identities` show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrantView {
    pub entitlement: String,
    pub system: String,
    pub state: String,
    pub origin: String,
}

/// An identity with its accounts and its timeline (`GET /v1/identities/{ref}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdentityDetail {
    #[serde(flatten)]
    pub identity: IdentityView,
    pub accounts: Vec<AccountView>,
    pub timeline: Vec<AuditView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountView {
    pub system: String,
    pub account: String,
    pub state: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditView {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub policy_version: String,
    pub detail: serde_json::Value,
}

/// The result of an accepted batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestReport {
    pub accepted: usize,
    pub duplicates: usize,
    pub policy_version: String,
}

/// Every error answer of the API: a stable code, a message for people, and per-record details.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<RecordErrorView>,
}

/// One bad record of a rejected batch: where it is (array index or file line) and what is wrong.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordErrorView {
    pub record: usize,
    pub field: String,
    pub message: String,
}
