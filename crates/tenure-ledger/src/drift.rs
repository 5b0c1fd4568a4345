//! Drift reports: what one reconciliation run of one system found and decided, resting on its
//! `reconcile.run` ledger entry (and any `reconcile.released` entries for it), carried with
//! inclusion proofs against a signed checkpoint, the whole signed with the ledger's key.
//! [`verify`] checks one offline with the public key alone, like a closure certificate.
//!
//! ```text
//! { "report": { "version": "tenure-drift/1", "run", "system", "started_at", "finished_at",
//!               "policy_version", "decision", "reasons", "counts": {situation: n},
//!               "plan_digest", "items": [item…],
//!               "evidence": [{ "seq", "entry", "proof": [hex…] }…], "tree_size", "checkpoint" },
//!   "signature": base64 Ed25519 over "tenure drift report v1\n" + canonical JSON of "report",
//!   "signer": the verifier key }
//! ```
//!
//! The plan digest ([`plan_digest`]) is SHA-256 over the canonical JSON of the counts and a
//! newline, then each item's canonical JSON and a newline, in plan order: the ledger entry
//! fixes the digest when the run is recorded, so the items of the report are the plan the run
//! had, item for item.

use crate::entry::canonical_json;
use crate::event::LedgerEvent;
use crate::note::Verifier;
use crate::signed::{self, DocumentError, field, text};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub const CONTEXT: &str = "tenure drift report v1";
pub const VERSION: &str = "tenure-drift/1";

/// The ledger subject of a system's reconciliation entries.
pub fn subject(system: &str) -> String {
    format!("system:{system}")
}

/// SHA-256 (hex) of a plan's canonical form.
pub fn plan_digest<'a>(counts: &Value, items: impl IntoIterator<Item = &'a Value>) -> String {
    let mut h = Sha256::new();
    h.update(canonical_json(counts));
    h.update(b"\n");
    for i in items {
        h.update(canonical_json(i));
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

/// What a verified report states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub system: String,
    pub run: i64,
    pub decision: String,
    pub items: usize,
    /// Items released after the run by the `reconcile.released` entries carried.
    pub released: u64,
    pub tree_size: u64,
}

/// Why a report does not verify (the error every signed document shares).
pub type ReportError = DocumentError;

use DocumentError::{Malformed, Unsupported};

/// Check a report: signature, checkpoint, each entry's inclusion, and the run's statements
/// (system, decision, counts, the items through the plan digest) against its entry.
pub fn verify(doc: &Value, key: &Verifier) -> Result<Verified, ReportError> {
    let opened = signed::open(doc, "report", CONTEXT, VERSION, key)?;
    let (report, size) = (opened.body, opened.size);
    let system = text(report, "system")?.to_owned();
    let run = field(report, "run")?.as_i64().ok_or_else(|| Malformed("run: expected a number".into()))?;
    let mut stated = None;
    let mut released = 0;
    for (seq, e, event) in signed::evidence(&opened, &subject(&system), &format!("system `{system}`"))? {
        match event {
            LedgerEvent::ReconcileRun(r) if r.run == run && r.system == system => stated = Some((e, r)),
            LedgerEvent::ReconcileReleased(r) if r.run == run && r.system == system => released += r.released,
            _ => return Err(Unsupported(format!("entry {seq} is not about run {run} of `{system}`"))),
        }
    }
    let (entry, r) = stated.ok_or_else(|| Unsupported(format!("evidence: no `reconcile.run` entry for run {run}")))?;
    let counts = field(report, "counts")?;
    if counts != &serde_json::to_value(&r.counts).unwrap_or(Value::Null) {
        return Err(Unsupported(format!("counts: differ from ledger entry {}", entry.seq)));
    }
    if text(report, "decision")? != r.decision {
        return Err(Unsupported(format!("decision: differs from ledger entry {}", entry.seq)));
    }
    if text(report, "finished_at")? != entry.at {
        return Err(Unsupported(format!("finished_at: differs from ledger entry {}", entry.seq)));
    }
    let items = field(report, "items")?.as_array().ok_or_else(|| Malformed("items: expected a list".into()))?;
    if plan_digest(counts, items) != r.plan_digest || text(report, "plan_digest")? != r.plan_digest {
        return Err(Unsupported(format!(
            "items: their digest is not the plan digest of ledger entry {} (an item was added, removed or changed)",
            entry.seq
        )));
    }
    Ok(Verified { system, run, decision: r.decision, items: items.len(), released, tree_size: size })
}
