//! Review reports: what an access review campaign decided, who decided each item, when, on
//! what recommendation, and how each revocation was verified, every claim resting on ledger
//! entries carried with their inclusion proofs against a signed checkpoint; the whole signed
//! with the ledger's key. [`verify`] checks one offline, with the public key alone.
//!
//! ```text
//! { "report": { "version": "tenure-review/1", "campaign", "name", "policy_version",
//!               "started_at", "deadline", "closed_at", "started", "closed",
//!               "items": [{ "item", "identity", "entitlement", "system", "origin",
//!                           "recommendation", "outcome",
//!                           "decisions": [{ "stage", "decision", "reason", "by", "at", "evidence" }],
//!                           "verification": seq | null }],
//!               "evidence": [{ "seq", "entry", "proof": [hex…] }…], "tree_size", "checkpoint" },
//!   "signature": base64 Ed25519 over "tenure review report v1\n" + canonical JSON of "report",
//!   "signer": the verifier key }
//! ```
//!
//! `started` and `closed` are the seqs of the campaign's `review.started` and `review.closed`
//! entries; a decision's `evidence` is its `review.decided` entry (about the identity, by the
//! reviewer or, `by` null, by the engine's no-answer default); a revoked item's `verification`
//! is the `system.synced` entry after the decision whose read-back verified the grant gone, or,
//! for an account under review (origin `unlinked`), the `reconcile.corrected` entry whose
//! read-back verified the account disabled.

use crate::entry::Entry;
use crate::event::LedgerEvent;
use crate::note::Verifier;
use crate::signed::{self, DocumentError, field, text};
use serde_json::Value;
use std::collections::BTreeMap;

pub const CONTEXT: &str = "tenure review report v1";
pub const VERSION: &str = "tenure-review/1";

/// The actor the engine's own entries name (the no-answer default).
const ENGINE: &str = "tenure";
/// The origin of an item that is an account under review rather than a grant.
pub const ACCOUNT_ITEM: &str = "unlinked";

/// What a verified report states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub campaign: i64,
    pub name: String,
    pub closed_at: String,
    pub items: u64,
    pub kept: u64,
    /// Each revoked as `identity entitlement`, verified by read-back.
    pub revoked: Vec<String>,
    pub by_default: u64,
    pub tree_size: u64,
}

use DocumentError::{Malformed, Unsupported};

fn int(v: &Value, k: &str, at: &str) -> Result<i64, DocumentError> {
    field(v, k)?.as_i64().ok_or_else(|| Malformed(format!("{at}.{k}: expected a number")))
}

/// Check a report: signature, checkpoint, every evidence entry's inclusion, and every claim
/// against its evidence. The error names what failed.
pub fn verify(doc: &Value, key: &Verifier) -> Result<Verified, DocumentError> {
    let opened = signed::open(doc, "report", CONTEXT, VERSION, key)?;
    let (report, size) = (opened.body, opened.size);
    let campaign = int(report, "campaign", "report")?;
    let entries: BTreeMap<u64, (Entry, LedgerEvent)> =
        signed::evidence_about(&opened, None)?.into_iter().map(|(seq, e, ev)| (seq, (e, ev))).collect();
    let entry = |seq: i64, at: &str| {
        u64::try_from(seq)
            .ok()
            .and_then(|s| entries.get(&s))
            .ok_or_else(|| Unsupported(format!("{at}: evidence {seq} is not in the report")))
    };
    let subject = format!("review:{campaign}");
    let (started, started_event) = entry(int(report, "started", "report")?, "started")?;
    match started_event {
        LedgerEvent::ReviewStarted(s) if s.campaign == campaign && started.subject == subject => {
            if text(report, "name")? != s.name || text(report, "deadline")? != s.deadline {
                return Err(Unsupported("name, deadline: differ from the `review.started` entry".into()));
            }
            if text(report, "started_at")? != started.at {
                return Err(Unsupported("started_at: differs from the `review.started` entry".into()));
            }
        }
        _ => return Err(Unsupported(format!("started: not the `review.started` entry of review {campaign}"))),
    }
    let (closed, closed_event) = entry(int(report, "closed", "report")?, "closed")?;
    let closing = match closed_event {
        LedgerEvent::ReviewClosed(c) if c.campaign == campaign && closed.subject == subject => c,
        _ => return Err(Unsupported(format!("closed: not the `review.closed` entry of review {campaign}"))),
    };
    if text(report, "closed_at")? != closed.at {
        return Err(Unsupported("closed_at: differs from the `review.closed` entry".into()));
    }
    let items = field(report, "items")?.as_array().ok_or_else(|| Malformed("items: expected a list".into()))?;
    let (mut kept, mut revoked, mut by_default) = (0u64, Vec::new(), 0u64);
    for (i, item) in items.iter().enumerate() {
        let at = format!("items[{i}]");
        let id = int(item, "item", &at)?;
        let identity = text(item, "identity")?;
        let entitlement = text(item, "entitlement")?;
        let decisions = field(item, "decisions")?
            .as_array()
            .ok_or_else(|| Malformed(format!("{at}.decisions: expected a list")))?;
        let mut last: Option<(u64, String, bool)> = None;
        for (j, d) in decisions.iter().enumerate() {
            let dat = format!("{at}.decisions[{j}]");
            let seq = int(d, "evidence", &dat)?;
            let (e, event) = entry(seq, &dat)?;
            let LedgerEvent::ReviewDecided(r) = event else {
                return Err(Unsupported(format!("{dat}: evidence {seq} is not a `review.decided` entry")));
            };
            if r.campaign != campaign || r.item != id || e.subject != identity || r.entitlement != entitlement {
                return Err(Unsupported(format!("{dat}: evidence {seq} decides another item")));
            }
            let by = match field(d, "by")? {
                Value::Null => None,
                Value::String(s) => Some(s.as_str()),
                _ => return Err(Malformed(format!("{dat}.by: expected a string or null"))),
            };
            let actor_ok = match by {
                Some(by) => !r.by_default && e.actor == by,
                None => r.by_default && e.actor == ENGINE,
            };
            if !actor_ok {
                return Err(Unsupported(format!("{dat}.by: differs from ledger entry {seq}")));
            }
            if by == Some(identity) {
                return Err(Unsupported(format!("{dat}: `{identity}` decided on their own access")));
            }
            if text(d, "decision")? != r.decision
                || text(d, "reason")? != r.reason
                || text(d, "at")? != e.at
                || int(d, "stage", &dat)? != i64::from(r.stage)
            {
                return Err(Unsupported(format!("{dat}: differs from ledger entry {seq}")));
            }
            if r.decision == "revoke" && r.reason.trim().is_empty() {
                return Err(Unsupported(format!("{dat}: a revoke without a reason")));
            }
            last = Some((e.seq, r.decision.clone(), r.by_default));
        }
        let Some((decided_seq, decision, defaulted)) = last else {
            return Err(Unsupported(format!("{at}: no decision")));
        };
        if text(item, "outcome")? != decision {
            return Err(Unsupported(format!("{at}.outcome: not the last decision")));
        }
        by_default += u64::from(defaulted);
        match decision.as_str() {
            "revoke" if text(item, "origin")? == ACCOUNT_ITEM => {
                // An account under review: a drift job's read-back verified it disabled.
                let seq = int(item, "verification", &at)?;
                let system = text(item, "system")?;
                let (e, event) = entry(seq, &format!("{at}.verification"))?;
                let LedgerEvent::ReconcileCorrected(c) = event else {
                    return Err(Unsupported(format!(
                        "{at}.verification: evidence {seq} is not a `reconcile.corrected` entry"
                    )));
                };
                if e.subject != crate::drift::subject(system)
                    || e.seq <= decided_seq
                    || c.account != entitlement
                    || c.identity.as_deref() != Some(identity)
                    || !c.disabled
                    || c.read_back.enabled
                    || !c.problems.is_empty()
                {
                    return Err(Unsupported(format!(
                        "{at}.verification: entry {seq} does not verify account `{entitlement}` of `{identity}` disabled in `{system}` after the decision"
                    )));
                }
                revoked.push(format!("{identity} {system}:{entitlement}"));
            }
            "revoke" => {
                let seq = int(item, "verification", &at)?;
                let (e, event) = entry(seq, &format!("{at}.verification"))?;
                let LedgerEvent::Synced(s) = event else {
                    return Err(Unsupported(format!(
                        "{at}.verification: evidence {seq} is not a `system.synced` entry"
                    )));
                };
                if e.subject != identity
                    || e.seq <= decided_seq
                    || !s.revocation_verified.iter().any(|g| g == entitlement)
                    || !s.problems.is_empty()
                {
                    return Err(Unsupported(format!(
                        "{at}.verification: entry {seq} does not verify `{entitlement}` of `{identity}` revoked after the decision"
                    )));
                }
                revoked.push(format!("{identity} {entitlement}"));
            }
            _ => kept += 1,
        }
    }
    let count = u64::try_from(items.len()).unwrap_or(u64::MAX);
    if closing.items != count || closing.kept != kept || closing.revoked != u64::try_from(revoked.len()).unwrap_or(0) {
        return Err(Unsupported(format!(
            "items: {count} ({kept} kept, {} revoked), the `review.closed` entry says {} ({} kept, {} revoked)",
            revoked.len(),
            closing.items,
            closing.kept,
            closing.revoked
        )));
    }
    Ok(Verified {
        campaign,
        name: text(report, "name")?.to_owned(),
        closed_at: closed.at.clone(),
        items: count,
        kept,
        revoked,
        by_default,
        tree_size: size,
    })
}
