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

use crate::entry::{Entry, canonical_json};
use crate::event::LedgerEvent;
use crate::merkle::{self, Hash};
use crate::note::Verifier;
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

/// Why a report does not verify; each message names what failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error("signature: does not verify with this key (the report was altered or signed by another key)")]
    Signature,
    #[error("{0}")]
    Malformed(String),
    #[error("{0}")]
    Checkpoint(String),
    /// A statement its ledger entries do not support, or an entry not in the signed ledger.
    #[error("{0}")]
    Unsupported(String),
}

use ReportError::{Checkpoint, Malformed, Unsupported};

fn field<'a>(v: &'a Value, k: &str) -> Result<&'a Value, ReportError> {
    v.get(k).ok_or_else(|| Malformed(format!("missing field `{k}`")))
}

fn text<'a>(v: &'a Value, k: &str) -> Result<&'a str, ReportError> {
    field(v, k)?.as_str().ok_or_else(|| Malformed(format!("field `{k}`: expected a string")))
}

/// Check a report: signature, checkpoint, each entry's inclusion, and the run's statements
/// (system, decision, counts, the items through the plan digest) against its entry.
pub fn verify(doc: &Value, key: &Verifier) -> Result<Verified, ReportError> {
    let report = field(doc, "report")?;
    if !key.verify_message(CONTEXT, &canonical_json(report), text(doc, "signature")?) {
        return Err(ReportError::Signature);
    }
    if text(report, "version")? != VERSION {
        return Err(Malformed(format!("version: expected `{VERSION}`")));
    }
    let cp = key.open(text(report, "checkpoint")?).map_err(|e| Checkpoint(format!("checkpoint: {e}")))?;
    let size = field(report, "tree_size")?.as_u64().ok_or_else(|| Malformed("tree_size: expected a number".into()))?;
    if cp.size != size {
        return Err(Checkpoint(format!("checkpoint: signs size {}, the report says {size}", cp.size)));
    }
    let system = text(report, "system")?.to_owned();
    let run = field(report, "run")?.as_i64().ok_or_else(|| Malformed("run: expected a number".into()))?;
    let mut stated = None;
    let mut released = 0;
    for (i, ev) in field(report, "evidence")?
        .as_array()
        .ok_or_else(|| Malformed("evidence: expected a list".into()))?
        .iter()
        .enumerate()
    {
        let at = format!("evidence[{i}]");
        let seq = field(ev, "seq")?.as_u64().ok_or_else(|| Malformed(format!("{at}.seq: expected a number")))?;
        let bytes = text(ev, "entry")?.as_bytes();
        let proof: Vec<Hash> = field(ev, "proof")?
            .as_array()
            .ok_or_else(|| Malformed(format!("{at}.proof: expected a list")))?
            .iter()
            .map(|h| h.as_str().and_then(|h| hex::decode(h).ok()).and_then(|b| b.try_into().ok()))
            .collect::<Option<_>>()
            .ok_or_else(|| Malformed(format!("{at}.proof: expected hex SHA-256 hashes")))?;
        if !merkle::verify_inclusion(seq, size, &merkle::leaf_hash(bytes), &proof, &cp.root) {
            return Err(Unsupported(format!("{at}: entry {seq} is not in the signed ledger of size {size}")));
        }
        let mut e = Entry::parse(bytes).map_err(|m| Malformed(format!("{at}: {m}")))?;
        if e.seq != seq || e.subject != subject(&system) {
            return Err(Unsupported(format!("{at}: entry {seq} is not about system `{system}`")));
        }
        match LedgerEvent::from_parts(&e.action, std::mem::take(&mut e.detail))
            .map_err(|m| Malformed(format!("{at}: {m}")))?
        {
            LedgerEvent::ReconcileRun(r) if r.run == run && r.system == system => stated = Some((e, r)),
            LedgerEvent::ReconcileReleased(r) if r.run == run && r.system == system => released += r.released,
            _ => return Err(Unsupported(format!("{at}: entry {seq} is not about run {run} of `{system}`"))),
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
