//! The signed report of a closed campaign.

use super::subject_of;
use crate::{Engine, EngineError, Result};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use tenure_ledger::LedgerEvent;
use tenure_model::rfc3339 as ts;
use tenure_store::{ReadTx, ReviewDecisionRow, ReviewItemQuery};

impl Engine {
    /// The signed report of a closed campaign ([`tenure_ledger::review`] verifies it): every
    /// item with its decisions and, for a revoke, the sync entry that verified it, each resting
    /// on ledger entries carried with inclusion proofs against one signed checkpoint.
    pub fn review_report(&self, id: i64, signer: &tenure_ledger::Signer) -> Result<Value> {
        use tenure_ledger::entry::{canonical_json, sorted};
        use tenure_ledger::review::{CONTEXT, VERSION};
        let tx = self.store.read()?;
        let c = tx.campaign(id)?.ok_or_else(|| EngineError::NotFound(format!("review {id}")))?;
        if c.state != "closed" {
            let counts = tx.review_counts(id)?;
            return Err(EngineError::Conflict(format!(
                "review {id} is {}, not closed: no report until every item is decided and every revocation verified ({} undecided)",
                c.state,
                counts.get("undecided").copied().unwrap_or(0)
            )));
        }
        let own = tx.ledger_for(&subject_of(id))?;
        let (started, deadline) = own
            .iter()
            .find_map(|a| match &a.event {
                LedgerEvent::ReviewStarted(s) if s.campaign == id => Some((a.seq, s.deadline.clone())),
                _ => None,
            })
            .ok_or_else(|| EngineError::Ledger(format!("review {id} has no `review.started` entry")))?;
        let closed = own
            .iter()
            .rev()
            .find(|a| matches!(&a.event, LedgerEvent::ReviewClosed(s) if s.campaign == id))
            .map(|a| a.seq)
            .ok_or_else(|| EngineError::Ledger(format!("review {id} is closed without a `review.closed` entry")))?;
        let mut decisions: BTreeMap<i64, Vec<ReviewDecisionRow>> = BTreeMap::new();
        for d in tx.review_decisions(id)? {
            decisions.entry(d.item_id).or_default().push(d);
        }
        let mut refs: HashMap<i64, String> = HashMap::new();
        let mut name_of = |tx: &dyn ReadTx, id: i64| -> Result<String> {
            if let Some(r) = refs.get(&id) {
                return Ok(r.clone());
            }
            let r = tx.identity_by_id(id)?.map(|i| i.reference.to_string()).unwrap_or_default();
            refs.insert(id, r.clone());
            Ok(r)
        };
        let mut seqs = vec![started, closed];
        let mut items = Vec::new();
        let mut after = None;
        loop {
            let page = tx.review_items(id, &ReviewItemQuery::default(), after, 1000)?;
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            for item in page {
                let identity = name_of(&*tx, item.identity_id)?;
                let mut ds = Vec::new();
                let mut last_seq = 0;
                for d in decisions.remove(&item.id).unwrap_or_default() {
                    let by = match d.decided_by {
                        Some(b) => Some(name_of(&*tx, b)?),
                        None => None,
                    };
                    seqs.push(d.seq);
                    last_seq = d.seq;
                    ds.push(json!({
                        "stage": d.stage, "decision": d.decision, "reason": d.reason,
                        "by": by, "at": ts(d.at), "evidence": d.seq,
                    }));
                }
                let verification = if item.outcome.as_deref() == Some("revoke") && item.origin == super::ACCOUNT_ITEM {
                    // An account under review: the drift job's read-back, recorded on the item.
                    let seq = item.verified_seq.ok_or_else(|| {
                        EngineError::Ledger(format!(
                            "item {}: account `{}` in `{}` is not verified disabled",
                            item.id, item.entitlement, item.system
                        ))
                    })?;
                    seqs.push(seq);
                    Some(seq)
                } else if item.outcome.as_deref() == Some("revoke") {
                    let found = tx.ledger_for(&identity)?.into_iter().find_map(|a| match &a.event {
                        LedgerEvent::Synced(s)
                            if a.seq > last_seq
                                && s.problems.is_empty()
                                && s.revocation_verified.contains(&item.entitlement) =>
                        {
                            Some(a.seq)
                        }
                        _ => None,
                    });
                    let seq = found.ok_or_else(|| {
                        EngineError::Ledger(format!(
                            "item {}: no sync entry verifies `{}` of `{identity}` revoked",
                            item.id, item.entitlement
                        ))
                    })?;
                    seqs.push(seq);
                    Some(seq)
                } else {
                    None
                };
                items.push(json!({
                    "item": item.id, "identity": identity, "entitlement": item.entitlement,
                    "system": item.system, "origin": item.origin, "recommendation": item.recommendation,
                    "outcome": item.outcome, "decisions": ds, "verification": verification,
                }));
            }
        }
        drop(tx);
        seqs.sort_unstable();
        seqs.dedup();
        let crate::ledger::Evidence { checkpoint: cp, items: evidence, entries } = self.evidence(&seqs, signer)?;
        let at_of = |seq: i64| entries.get(&seq).map(|e| e.at.clone());
        // A decision's time as its entry says it (the entry's form, to the digit).
        for item in &mut items {
            for d in item.get_mut("decisions").and_then(Value::as_array_mut).into_iter().flatten() {
                let at = d.get("evidence").and_then(Value::as_i64).and_then(at_of);
                if let Some(at) = at {
                    d["at"] = Value::String(at);
                }
            }
        }
        let report = json!({
            "version": VERSION,
            "campaign": id,
            "name": c.name,
            "policy_version": c.policy_version,
            "started_at": at_of(started),
            // As the entry says it, to the digit.
            "deadline": deadline,
            "closed_at": at_of(closed),
            "started": started,
            "closed": closed,
            "items": items,
            "evidence": evidence,
            "tree_size": cp.size,
            "checkpoint": cp.note,
        });
        let signature = signer.sign_message(CONTEXT, &canonical_json(&report));
        Ok(sorted(&json!({ "report": report, "signature": signature, "signer": signer.verifier().to_string() })))
    }
}
