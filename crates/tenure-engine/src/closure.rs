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
use tenure_ledger::entry::canonical_json;
use tenure_ledger::{Entry, Signer, merkle};
use tenure_model::{IdentityRef, LifecycleState};

impl Engine {
    /// The signed closure certificate of a closed identity.
    pub fn closure_certificate(&self, reference: &str, signer: &Signer) -> Result<Value> {
        let r: IdentityRef = reference.parse().map_err(|_| EngineError::NotFound(reference.to_owned()))?;
        let tx = self.store.read()?;
        let identity = tx.identity(&r)?.ok_or_else(|| EngineError::NotFound(reference.to_owned()))?;
        if identity.state != LifecycleState::Closed {
            let mut pending = Vec::new();
            for j in tx.jobs(None)?.into_iter().filter(|j| j.identity_id == identity.id) {
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
        let rows = tx.audit_for(reference)?;
        let left =
            rows.iter().rev().find(|a| a.action == "identity.left").ok_or_else(|| {
                EngineError::Ledger(format!("`{reference}` is closed without an `identity.left` entry"))
            })?;
        let closed = rows.iter().rev().find(|a| a.action == "identity.closed").ok_or_else(|| {
            EngineError::Ledger(format!("`{reference}` is closed without an `identity.closed` entry"))
        })?;
        // Per system: the last sync of the leaving phase (the one that verified it), and what
        // all of them did.
        let mut last: BTreeMap<String, i64> = BTreeMap::new();
        let mut done: BTreeMap<String, (bool, Vec<Value>)> = BTreeMap::new();
        for a in rows.iter().filter(|a| a.seq > left.seq && a.seq < closed.seq && a.action == "system.synced") {
            let Some(system) = a.detail.get("system").and_then(Value::as_str) else { continue };
            // The evidence for a system is its last sync that verified without a problem.
            if a.detail.get("problems").and_then(Value::as_array).is_none_or(Vec::is_empty) {
                last.insert(system.to_owned(), a.seq);
            }
            let d = done.entry(system.to_owned()).or_default();
            d.0 |= a.detail.get("disabled") == Some(&Value::Bool(true));
            d.1.extend(a.detail.get("revoked").and_then(Value::as_array).into_iter().flatten().cloned());
        }
        // Per credential the closing entry lists: its last `credential.verified` entry.
        let listed: Vec<String> = closed
            .detail
            .get("credentials")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| c.get("credential").and_then(Value::as_str).map(str::to_owned))
            .collect();
        let mut verified: BTreeMap<String, i64> = BTreeMap::new();
        for a in rows.iter().filter(|a| a.seq < closed.seq && a.action == "credential.verified") {
            if let Some(id) = a.detail.get("credential").and_then(Value::as_str)
                && listed.iter().any(|l| l == id)
            {
                verified.insert(id.to_owned(), a.seq);
            }
        }
        let mut seqs: Vec<i64> = vec![left.seq];
        seqs.extend(last.values().copied());
        seqs.extend(verified.values().copied());
        seqs.sort_unstable();
        seqs.dedup();
        seqs.push(closed.seq);
        drop(tx);

        let cp = match self.store.read()?.latest_checkpoint()? {
            Some(c) if c.size > closed.seq => c,
            _ => self.checkpoint(signer)?,
        };
        let tx = self.store.read()?;
        let leaves = tx.ledger_leaves(0, cp.size)?;
        let mut evidence = Vec::new();
        let mut entries: BTreeMap<i64, Entry> = BTreeMap::new();
        for seq in &seqs {
            let (_, bytes) = tx.ledger_entries(*seq, 1)?.into_iter().next().ok_or(EngineError::NoEntry(*seq))?;
            let index = usize::try_from(*seq).map_err(|_| EngineError::NoEntry(*seq))?;
            let proof = merkle::inclusion_proof(index, &leaves).ok_or(EngineError::NoEntry(*seq))?;
            let text = String::from_utf8(bytes.clone()).map_err(|e| EngineError::Ledger(e.to_string()))?;
            entries.insert(*seq, Entry::parse(&bytes).map_err(EngineError::Ledger)?);
            evidence
                .push(json!({ "seq": seq, "entry": text, "proof": proof.iter().map(hex::encode).collect::<Vec<_>>() }));
        }
        let systems: Vec<Value> = last
            .iter()
            .filter_map(|(system, seq)| {
                let e = entries.get(seq)?;
                Some(json!({
                    "system": system,
                    "account": e.detail.get("account"),
                    "done": done.get(system).map(|(disabled, revoked)| json!({ "disabled": disabled, "revoked": revoked })),
                    "verified_at": e.at,
                    "read_back": e.detail.get("read_back"),
                    "probe": e.detail.get("probe"),
                    "result": "verified",
                    "evidence": seq,
                }))
            })
            .collect();
        let credentials: Vec<Value> = verified
            .iter()
            .filter_map(|(id, seq)| {
                let e = entries.get(seq)?;
                let d = &e.detail;
                Some(json!({
                    "credential": id,
                    "kind": d.get("kind"),
                    "fingerprint": d.get("fingerprint"),
                    "revoked_at": d.get("revoked_at"),
                    "reason": d.get("reason"),
                    "verified_at": e.at,
                    "method": d.get("evidence").and_then(|v| v.get("method")),
                    "check": d.get("evidence"),
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
            "left_at": left.at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
            "closed_at": entries.get(&closed.seq).map(|e| e.at.clone()),
            "policy_version": closed.policy_version,
            "systems": systems,
            "credentials": credentials,
            "evidence": evidence,
            "tree_size": cp.size,
            "checkpoint": cp.note,
        });
        let signature = signer.sign_message(CONTEXT, &canonical_json(&certificate));
        Ok(json!({ "certificate": certificate, "signature": signature, "signer": signer.verifier().to_string() }))
    }
}
