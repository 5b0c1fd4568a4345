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
//! A system claim is `{ system, account, done, verified_at, read_back, probe, evidence }`, where
//! `evidence` is the seq of the `system.synced` entry that verified it. A credential claim is
//! `{ credential, kind, fingerprint, revoked_at, reason, verified_at, method, check, evidence }`,
//! resting on a `credential.verified` entry: introspection said inactive, the CRL lists the
//! certificate, or the dynamic login is gone and refused.

use crate::entry::{Entry, canonical_json};
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

fn field<'a>(v: &'a Value, k: &str) -> Result<&'a Value, String> {
    v.get(k).ok_or_else(|| format!("missing field `{k}`"))
}

fn text<'a>(v: &'a Value, k: &str) -> Result<&'a str, String> {
    field(v, k)?.as_str().ok_or_else(|| format!("field `{k}`: expected a string"))
}

/// Check a certificate: signature, checkpoint, every evidence entry's inclusion, and every
/// claim against its evidence. The error names what failed.
pub fn verify(doc: &Value, key: &Verifier) -> Result<Verified, String> {
    let cert = field(doc, "certificate")?;
    let sig = text(doc, "signature")?;
    if !key.verify_message(CONTEXT, &canonical_json(cert), sig) {
        return Err(
            "signature: does not verify with this key (the certificate was altered or signed by another key)".into()
        );
    }
    if text(cert, "version")? != VERSION {
        return Err(format!("version: expected `{VERSION}`"));
    }
    let cp = key.open(text(cert, "checkpoint")?).map_err(|e| format!("checkpoint: {e}"))?;
    let size = field(cert, "tree_size")?.as_u64().ok_or("tree_size: expected a number")?;
    if cp.size != size {
        return Err(format!("checkpoint: signs size {}, the certificate says {size}", cp.size));
    }
    let identity = text(cert, "identity")?.to_owned();
    let mut entries: BTreeMap<u64, Entry> = BTreeMap::new();
    for (i, ev) in field(cert, "evidence")?.as_array().ok_or("evidence: expected a list")?.iter().enumerate() {
        let at = format!("evidence[{i}]");
        let seq = field(ev, "seq")?.as_u64().ok_or(format!("{at}.seq: expected a number"))?;
        let bytes = text(ev, "entry")?.as_bytes();
        let proof: Vec<Hash> = field(ev, "proof")?
            .as_array()
            .ok_or(format!("{at}.proof: expected a list"))?
            .iter()
            .map(|h| h.as_str().and_then(|h| hex::decode(h).ok()).and_then(|b| b.try_into().ok()))
            .collect::<Option<_>>()
            .ok_or(format!("{at}.proof: expected hex SHA-256 hashes"))?;
        if !merkle::verify_inclusion(seq, size, &merkle::leaf_hash(bytes), &proof, &cp.root) {
            return Err(format!("{at}: entry {seq} is not in the signed ledger of size {size}"));
        }
        let e = Entry::parse(bytes).map_err(|m| format!("{at}: {m}"))?;
        if e.seq != seq || e.subject != identity {
            return Err(format!("{at}: entry {seq} is not about `{identity}`"));
        }
        entries.insert(seq, e);
    }
    let closed =
        entries.values().find(|e| e.action == "identity.closed").ok_or("evidence: no `identity.closed` entry")?;
    if closed.at != text(cert, "closed_at")? {
        return Err("closed_at: differs from the `identity.closed` entry".into());
    }
    // Every account the closing entry lists has a verified claim.
    let accounts: BTreeSet<String> = closed
        .detail
        .get("accounts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|a| Some(format!("{} {}", a.get("system")?.as_str()?, a.get("account")?.as_str()?)))
        .collect();
    let mut claimed = BTreeSet::new();
    for (i, c) in field(cert, "systems")?.as_array().ok_or("systems: expected a list")?.iter().enumerate() {
        let at = format!("systems[{i}]");
        let (system, account) = (text(c, "system")?, text(c, "account")?);
        let seq = field(c, "evidence")?.as_u64().ok_or(format!("{at}.evidence: expected a seq"))?;
        let e = entries.get(&seq).ok_or(format!("{at}: evidence {seq} is not in the certificate"))?;
        let d = &e.detail;
        if e.action != "system.synced"
            || d.get("system").and_then(Value::as_str) != Some(system)
            || d.get("account").and_then(Value::as_str) != Some(account)
        {
            return Err(format!("{at}: evidence {seq} is not the sync of `{account}` in `{system}`"));
        }
        for k in ["read_back", "probe"] {
            if c.get(k).unwrap_or(&Value::Null) != d.get(k).unwrap_or(&Value::Null) {
                return Err(format!("{at}.{k}: differs from ledger entry {seq}"));
            }
        }
        if text(c, "verified_at")? != e.at {
            return Err(format!("{at}.verified_at: differs from ledger entry {seq}"));
        }
        let rb = field(c, "read_back")?;
        let off = rb.get("present") == Some(&Value::Bool(false)) || rb.get("enabled") == Some(&Value::Bool(false));
        let no_groups = rb.get("memberships").and_then(Value::as_array).is_none_or(Vec::is_empty);
        if !off || !no_groups {
            return Err(format!("{at}: the read-back shows `{account}` enabled or still in a group"));
        }
        if c.get("probe").and_then(|p| p.get("result")).and_then(Value::as_str) == Some("allowed") {
            return Err(format!("{at}: the probe could still use `{account}`"));
        }
        if d.get("problems").and_then(Value::as_array).is_some_and(|p| !p.is_empty()) {
            return Err(format!("{at}: ledger entry {seq} records problems"));
        }
        claimed.insert(format!("{system} {account}"));
    }
    if let Some(missing) = accounts.difference(&claimed).next() {
        return Err(format!("systems: no verified claim for `{missing}`"));
    }
    let credentials = verify_credentials(cert, closed, &entries)?;
    Ok(Verified {
        identity,
        closed_at: closed.at.clone(),
        systems: claimed.into_iter().collect(),
        credentials,
        tree_size: size,
    })
}

/// Every credential the closing entry lists has a claim resting on its `credential.verified`
/// entry, and that entry's check shows it unusable.
fn verify_credentials(cert: &Value, closed: &Entry, entries: &BTreeMap<u64, Entry>) -> Result<Vec<String>, String> {
    let listed: BTreeSet<String> = closed
        .detail
        .get("credentials")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| Some(c.get("credential")?.as_str()?.to_owned()))
        .collect();
    let mut claimed = BTreeSet::new();
    let claims = cert.get("credentials").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    for (i, c) in claims.iter().enumerate() {
        let at = format!("credentials[{i}]");
        let id = text(c, "credential")?;
        let seq = field(c, "evidence")?.as_u64().ok_or(format!("{at}.evidence: expected a seq"))?;
        let e = entries.get(&seq).ok_or(format!("{at}: evidence {seq} is not in the certificate"))?;
        let d = &e.detail;
        if e.action != "credential.verified" || d.get("credential").and_then(Value::as_str) != Some(id) {
            return Err(format!("{at}: evidence {seq} is not the verification of credential `{id}`"));
        }
        for (k, from) in
            [("kind", "kind"), ("fingerprint", "fingerprint"), ("revoked_at", "revoked_at"), ("check", "evidence")]
        {
            if c.get(k).unwrap_or(&Value::Null) != d.get(from).unwrap_or(&Value::Null) {
                return Err(format!("{at}.{k}: differs from ledger entry {seq}"));
            }
        }
        if text(c, "verified_at")? != e.at || d.get("result").and_then(Value::as_str) != Some("verified") {
            return Err(format!("{at}: ledger entry {seq} does not record it verified at that time"));
        }
        let check = d.get("evidence").unwrap_or(&Value::Null);
        let inactive = check.get("introspection").and_then(|i| i.get("active")) == Some(&Value::Bool(false));
        let usable = match check.get("method").and_then(Value::as_str) {
            Some("introspection" | "expired") => !inactive,
            Some("crl") => !inactive || check.get("crl_listed") != Some(&Value::Bool(true)),
            Some("postgres-login") => {
                check.get("read_back").and_then(|r| r.get("present")) != Some(&Value::Bool(false))
                    || check.get("probe").and_then(|p| p.get("result")).and_then(Value::as_str) == Some("allowed")
            }
            _ => true,
        };
        if usable {
            return Err(format!("{at}: the check in ledger entry {seq} does not show `{id}` unusable"));
        }
        claimed.insert(id.to_owned());
    }
    if let Some(missing) = listed.difference(&claimed).next() {
        return Err(format!("credentials: no verified claim for `{missing}`"));
    }
    Ok(claimed.into_iter().collect())
}
