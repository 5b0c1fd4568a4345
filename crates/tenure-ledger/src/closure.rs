//! Closure certificates: for a leaver, per system, what was done, when, how it was verified
//! (read-back, probe) and the result, each claim resting on ledger entries carried in the
//! certificate with their inclusion proofs against a signed checkpoint; the whole signed with the
//! ledger's key. [`verify`] checks one offline, with the public key alone.
//!
//! ```text
//! { "certificate": { "version": "tenure-closure/1", "identity", "kind", "name",
//!                    "left_at", "closed_at", "systems": [claim…], "credentials": [claim…],
//!                    "evidence": [{ "seq", "entry", "proof": [hex…] }…],
//!                    "tree_size", "checkpoint" },
//!   "signature": base64 Ed25519 over "tenure closure certificate v1\n" + canonical JSON of "certificate",
//!   "signer": the verifier key }
//! ```
//!
//! A system claim is `{ system, account, done, verified_at, read_back, probe, sweep, evidence }`,
//! where `evidence` is the seq of the `system.synced` entry that verified it. `sweep` (where the
//! system has correlation rules) lists the accounts tenure did not make that correlate to the
//! leaver, each read back disabled and in no group; `account` is null for a system swept where
//! tenure held no account. A credential claim is
//! `{ credential, kind, fingerprint, revoked_at, reason, verified_at, method, check, evidence }`,
//! resting on a `credential.verified` entry: introspection said inactive, the CRL lists the
//! certificate, or the dynamic login is gone and refused.

use crate::entry::{Entry, canonical_json};
use crate::event::{LedgerEvent, ProbeResult, Settled};
use crate::merkle::{self, Hash};
use crate::note::Verifier;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// What the signature's context string says.
pub const CONTEXT: &str = "tenure closure certificate v1";
pub const VERSION: &str = "tenure-closure/1";

/// What a verified certificate states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub identity: String,
    pub closed_at: String,
    /// `system account`, one per verified system.
    pub systems: Vec<String>,
    /// Ids of the credentials verified revoked.
    pub credentials: Vec<String>,
    pub tree_size: u64,
}

/// Why a certificate does not verify. Each message names what failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    #[error("signature: does not verify with this key (the certificate was altered or signed by another key)")]
    Signature,
    /// A part of the document is missing or of the wrong shape.
    #[error("{0}")]
    Malformed(String),
    /// The checkpoint does not open with the key, or signs another size.
    #[error("{0}")]
    Checkpoint(String),
    /// A claim its ledger entries do not support, or an entry not in the signed ledger.
    #[error("{0}")]
    Unsupported(String),
}

use CertificateError::{Checkpoint, Malformed, Unsupported};

fn field<'a>(v: &'a Value, k: &str) -> Result<&'a Value, CertificateError> {
    v.get(k).ok_or_else(|| Malformed(format!("missing field `{k}`")))
}

fn text<'a>(v: &'a Value, k: &str) -> Result<&'a str, CertificateError> {
    field(v, k)?.as_str().ok_or_else(|| Malformed(format!("field `{k}`: expected a string")))
}

/// Check a certificate: signature, checkpoint, every evidence entry's inclusion, and every
/// claim against its evidence. The error names what failed.
pub fn verify(doc: &Value, key: &Verifier) -> Result<Verified, CertificateError> {
    let cert = field(doc, "certificate")?;
    let sig = text(doc, "signature")?;
    if !key.verify_message(CONTEXT, &canonical_json(cert), sig) {
        return Err(CertificateError::Signature);
    }
    if text(cert, "version")? != VERSION {
        return Err(Malformed(format!("version: expected `{VERSION}`")));
    }
    let cp = key.open(text(cert, "checkpoint")?).map_err(|e| Checkpoint(format!("checkpoint: {e}")))?;
    let size = field(cert, "tree_size")?.as_u64().ok_or_else(|| Malformed("tree_size: expected a number".into()))?;
    if cp.size != size {
        return Err(Checkpoint(format!("checkpoint: signs size {}, the certificate says {size}", cp.size)));
    }
    let identity = text(cert, "identity")?.to_owned();
    let mut entries: BTreeMap<u64, (Entry, LedgerEvent)> = BTreeMap::new();
    for (i, ev) in field(cert, "evidence")?
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
        if e.seq != seq || e.subject != identity {
            return Err(Unsupported(format!("{at}: entry {seq} is not about `{identity}`")));
        }
        let event = LedgerEvent::from_parts(&e.action, std::mem::take(&mut e.detail))
            .map_err(|m| Malformed(format!("{at}: {m}")))?;
        entries.insert(seq, (e, event));
    }
    let (closed, settled) = entries
        .values()
        .find_map(|(e, ev)| match ev {
            LedgerEvent::Closed(s) => Some((e, s)),
            _ => None,
        })
        .ok_or_else(|| Unsupported("evidence: no `identity.closed` entry".into()))?;
    if closed.at != text(cert, "closed_at")? {
        return Err(Unsupported("closed_at: differs from the `identity.closed` entry".into()));
    }
    // Every account the closing entry lists has a verified claim.
    let accounts: BTreeSet<String> = settled.accounts.iter().map(|a| format!("{} {}", a.system, a.account)).collect();
    let mut claimed = BTreeSet::new();
    for (i, c) in field(cert, "systems")?
        .as_array()
        .ok_or_else(|| Malformed("systems: expected a list".into()))?
        .iter()
        .enumerate()
    {
        let at = format!("systems[{i}]");
        let system = text(c, "system")?;
        // A system swept for the leaver's accounts made outside tenure, where tenure itself
        // held none, has no account.
        let account = match field(c, "account")? {
            Value::Null => None,
            Value::String(a) => Some(a.as_str()),
            _ => return Err(Malformed(format!("{at}.account: expected a string or null"))),
        };
        let seq = field(c, "evidence")?.as_u64().ok_or_else(|| Malformed(format!("{at}.evidence: expected a seq")))?;
        let (e, event) =
            entries.get(&seq).ok_or_else(|| Unsupported(format!("{at}: evidence {seq} is not in the certificate")))?;
        let shown = account.unwrap_or("no account");
        let synced = match event {
            LedgerEvent::Synced(s) if s.system == system && s.account.as_deref() == account => s,
            _ => return Err(Unsupported(format!("{at}: evidence {seq} is not the sync of `{shown}` in `{system}`"))),
        };
        let recorded =
            [("read_back", json(&synced.read_back)), ("probe", json(&synced.probe)), ("sweep", json(&synced.sweep))];
        for (k, v) in recorded {
            if c.get(k).unwrap_or(&Value::Null) != &v {
                return Err(Unsupported(format!("{at}.{k}: differs from ledger entry {seq}")));
            }
        }
        if text(c, "verified_at")? != e.at {
            return Err(Unsupported(format!("{at}.verified_at: differs from ledger entry {seq}")));
        }
        if !synced.read_back.is_closed() {
            return Err(Unsupported(format!("{at}: the read-back shows `{shown}` enabled or still in a group")));
        }
        if synced.probe == Some(ProbeResult::Allowed) {
            return Err(Unsupported(format!("{at}: the probe could still use `{shown}`")));
        }
        if let Some(open) = synced.sweep.as_ref().and_then(|sw| sw.accounts.iter().find(|a| !a.read_back.is_closed())) {
            return Err(Unsupported(format!(
                "{at}: `{}`, made outside tenure for this person, reads back enabled or in a group",
                open.account
            )));
        }
        if !synced.problems.is_empty() {
            return Err(Unsupported(format!("{at}: ledger entry {seq} records problems")));
        }
        if let Some(account) = account {
            claimed.insert(format!("{system} {account}"));
        }
    }
    if let Some(missing) = accounts.difference(&claimed).next() {
        return Err(Unsupported(format!("systems: no verified claim for `{missing}`")));
    }
    let credentials = verify_credentials(cert, settled, &entries)?;
    Ok(Verified {
        identity,
        closed_at: closed.at.clone(),
        systems: claimed.into_iter().collect(),
        credentials,
        tree_size: size,
    })
}

fn json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// Every credential the closing entry lists has a claim resting on its `credential.verified`
/// entry, and that entry's check shows it unusable.
fn verify_credentials(
    cert: &Value,
    settled: &Settled,
    entries: &BTreeMap<u64, (Entry, LedgerEvent)>,
) -> Result<Vec<String>, CertificateError> {
    let listed: BTreeSet<&str> = settled.credentials.iter().map(|c| c.credential.as_str()).collect();
    let mut claimed = BTreeSet::new();
    let claims = cert.get("credentials").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    for (i, c) in claims.iter().enumerate() {
        let at = format!("credentials[{i}]");
        let id = text(c, "credential")?;
        let seq = field(c, "evidence")?.as_u64().ok_or_else(|| Malformed(format!("{at}.evidence: expected a seq")))?;
        let (e, event) =
            entries.get(&seq).ok_or_else(|| Unsupported(format!("{at}: evidence {seq} is not in the certificate")))?;
        let v = match event {
            LedgerEvent::CredentialVerified(v) if v.credential == id => v,
            _ => return Err(Unsupported(format!("{at}: evidence {seq} is not the verification of credential `{id}`"))),
        };
        let recorded = [
            ("kind", json(&v.kind)),
            ("fingerprint", json(&v.fingerprint)),
            ("revoked_at", json(&v.revoked_at)),
            ("check", json(&v.evidence)),
        ];
        for (k, from) in recorded {
            if c.get(k).unwrap_or(&Value::Null) != &from {
                return Err(Unsupported(format!("{at}.{k}: differs from ledger entry {seq}")));
            }
        }
        if text(c, "verified_at")? != e.at || v.result != "verified" {
            return Err(Unsupported(format!("{at}: ledger entry {seq} does not record it verified at that time")));
        }
        if !v.evidence.shows_unusable() {
            return Err(Unsupported(format!("{at}: the check in ledger entry {seq} does not show `{id}` unusable")));
        }
        claimed.insert(id.to_owned());
    }
    if let Some(missing) = listed.iter().find(|l| !claimed.contains(**l)) {
        return Err(Unsupported(format!("credentials: no verified claim for `{missing}`")));
    }
    Ok(claimed.into_iter().collect())
}
