//! Closure certificates, built from the ledger: for a closed leaver, the `identity.left` entry,
//! each system's last verifying `system.synced` entry, each revoked credential's
//! `credential.verified` entry and the `identity.closed` entry, with
//! their inclusion proofs against one signed checkpoint, the claims drawn from them, and an
//! Ed25519 signature over the whole ([`tenure_ledger::closure`] verifies it). A leaver who is not
//! closed has no certificate; the error says what is still pending.

use crate::{Engine, EngineError, Result};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use tenure_ledger::closure::{CONTEXT, VERSION};
use tenure_ledger::entry::{canonical_json, sorted};
use tenure_ledger::event::{CredentialVerified, Synced};
use tenure_ledger::{LedgerEvent, Signer};
use tenure_model::{IdentityRef, LifecycleState};

impl Engine {
    /// The signed closure certificate of a closed identity.
    pub fn closure_certificate(&self, reference: &str, signer: &Signer) -> Result<Value> {
        let r: IdentityRef = reference.parse().map_err(|_| EngineError::NotFound(reference.to_owned()))?;
        let tx = self.store.read()?;
        let identity = tx.identity(&r)?.ok_or_else(|| EngineError::NotFound(reference.to_owned()))?;
        if identity.state != LifecycleState::Closed {
            let mut pending = Vec::new();
            for j in tx.jobs(None)?.into_iter().filter(|j| j.identity_id == Some(identity.id)) {
                if matches!(j.state, crate::JobState::Pending | crate::JobState::Running | crate::JobState::Dead) {
                    pending.push(format!(
                        "{} {} ({}, attempt {}{})",
                        j.kind.as_str(),
                        j.system,
                        j.state,
                        j.attempts,
                        j.last_error.map(|e| format!(": {e}")).unwrap_or_default()
                    ));
                }
            }
            for c in tx.credentials_to_verify(identity.id)? {
                pending.push(format!("credential {} ({}) revoked, not yet verified", c.id, c.kind));
            }
            for a in tx.accounts(identity.id)? {
                if a.state != tenure_model::AccountState::DisableVerified && identity.state.has_left() {
                    pending.push(format!("account `{}` in {} is {}", a.name, a.system, a.state));
                }
            }
            return Err(EngineError::Conflict(format!(
                "`{reference}` is {}, not closed: no certificate until every system is verified{}",
                identity.state,
                if pending.is_empty() { String::new() } else { format!("; pending: {}", pending.join("; ")) }
            )));
        }
        let rows = tx.ledger_for(reference)?;
        // The cut-off: a source's `identity.left`, or the clock's `identity.expired` (leave).
        let left = rows
            .iter()
            .rev()
            .find(|a| match &a.event {
                LedgerEvent::Left(_) => true,
                LedgerEvent::Expired(e) => e.state.to.has_left(),
                _ => false,
            })
            .ok_or_else(|| {
                EngineError::Ledger(format!(
                    "`{reference}` is closed without an `identity.left` or `identity.expired` entry"
                ))
            })?;
        let (closed, settled) = rows
            .iter()
            .rev()
            .find_map(|a| match &a.event {
                LedgerEvent::Closed(s) => Some((a, s)),
                _ => None,
            })
            .ok_or_else(|| {
                EngineError::Ledger(format!("`{reference}` is closed without an `identity.closed` entry"))
            })?;
        // Per system: the last sync of the leaving phase (the one that verified it), and what
        // all of them did.
        let mut last: BTreeMap<String, (i64, &Synced)> = BTreeMap::new();
        let mut done: BTreeMap<String, (bool, Vec<String>)> = BTreeMap::new();
        for a in rows.iter().filter(|a| a.seq > left.seq && a.seq < closed.seq) {
            let LedgerEvent::Synced(synced) = &a.event else { continue };
            // The evidence for a system is its last sync that verified without a problem.
            if synced.problems.is_empty() {
                last.insert(synced.system.clone(), (a.seq, synced));
            }
            let d = done.entry(synced.system.clone()).or_default();
            d.0 |= synced.disabled;
            d.1.extend(synced.revoked.iter().cloned());
        }
        // Per credential the closing entry lists: its last `credential.verified` entry.
        let mut verified: BTreeMap<String, (i64, &CredentialVerified)> = BTreeMap::new();
        for a in rows.iter().filter(|a| a.seq < closed.seq) {
            if let LedgerEvent::CredentialVerified(v) = &a.event
                && settled.credentials.iter().any(|l| l.credential == v.credential)
            {
                verified.insert(v.credential.clone(), (a.seq, v));
            }
        }
        let mut seqs: Vec<i64> = vec![left.seq];
        seqs.extend(last.values().map(|(seq, _)| *seq));
        seqs.extend(verified.values().map(|(seq, _)| *seq));
        seqs.sort_unstable();
        seqs.dedup();
        seqs.push(closed.seq);
        drop(tx);

        let crate::ledger::Evidence { checkpoint: cp, items: evidence, entries } = self.evidence(&seqs, signer)?;
        let systems: Vec<Value> = last
            .iter()
            .filter_map(|(system, (seq, synced))| {
                let e = entries.get(seq)?;
                Some(json!({
                    "system": system,
                    "account": synced.account,
                    "done": done.get(system).map(|(disabled, revoked)| json!({ "disabled": disabled, "revoked": revoked })),
                    "verified_at": e.at,
                    "read_back": synced.read_back,
                    "probe": synced.probe,
                    // Where the system has correlation rules: its accounts made outside tenure
                    // for this person, each read back off (absent before sweeps existed).
                    "sweep": synced.sweep,
                    "result": "verified",
                    "evidence": seq,
                }))
            })
            .collect();
        let credentials: Vec<Value> = verified
            .iter()
            .filter_map(|(id, (seq, v))| {
                let e = entries.get(seq)?;
                Some(json!({
                    "credential": id,
                    "kind": v.kind,
                    "fingerprint": v.fingerprint,
                    "revoked_at": v.revoked_at,
                    "reason": v.reason,
                    "verified_at": e.at,
                    "method": v.evidence.method(),
                    "check": v.evidence,
                    "result": "verified",
                    "evidence": seq,
                }))
            })
            .collect();
        let certificate = json!({
            "version": VERSION,
            "identity": reference,
            "kind": identity.kind,
            "name": identity.name,
            "left_at": tenure_model::rfc3339(left.at),
            "closed_at": entries.get(&closed.seq).map(|e| e.at.clone()),
            "policy_version": closed.policy_version,
            "systems": systems,
            "credentials": credentials,
            "evidence": evidence,
            "tree_size": cp.size,
            "checkpoint": cp.note,
        });
        let signature = signer.sign_message(CONTEXT, &canonical_json(&certificate));
        // Keys in byte order throughout, as in the entries: the document reads the same each time.
        Ok(sorted(
            &json!({ "certificate": certificate, "signature": signature, "signer": signer.verifier().to_string() }),
        ))
    }
}
