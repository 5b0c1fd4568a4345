//! The posture report's JSON shape (`tenure posture --format json`, `GET /v1/posture`): one
//! check per OWASP Non-Human Identities Top 10 (2025) item, per NIST CSF 2.0 `PR.AA`
//! subcategory and per NIST AI RMF function, each with its status, why, its measures, the
//! evidence behind a failure and its trend over the kept snapshots.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PostureReport {
    /// When it was computed.
    pub at: String,
    pub policy_version: String,
    /// The ledger's size then: every evidence entry is below it.
    pub ledger_size: i64,
    /// Checks per status (`pass`, `fail`, `n/a`).
    pub summary: BTreeMap<String, u64>,
    pub sections: Vec<PostureSection>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PostureSection {
    /// `owasp-nhi-2025`, `nist-csf-2.0`, `nist-ai-rmf-1.0`.
    pub framework: String,
    pub title: String,
    pub checks: Vec<PostureCheck>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PostureCheck {
    /// `NHI1`, `PR.AA-05`, `GOVERN`, …
    pub id: String,
    pub title: String,
    /// `pass`, `fail` or `n/a`.
    pub status: String,
    /// What was computed, from which of tenure's data, and why the status follows (or why
    /// tenure cannot compute it).
    pub why: String,
    /// The numbers behind it.
    pub measures: BTreeMap<String, serde_json::Value>,
    /// How many things make it fail.
    pub failing: u64,
    /// What makes it fail, each pointing at what proves it (the first few of `failing`).
    pub evidence: Vec<Evidence>,
    /// Status and failing count in the kept snapshots, oldest first.
    pub trend: Vec<TrendPoint>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Evidence {
    /// What is wrong, in words.
    pub what: String,
    /// The identity it is about, if one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// The ledger entry that proves it (`tenure ledger prove SEQ`), if one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ledger_seq: Option<i64>,
    /// The open finding it is (`GET /v1/findings`), if one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finding: Option<i64>,
    /// Where to look: an API path.
    pub link: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TrendPoint {
    pub at: String,
    pub status: String,
    pub failing: u64,
}
