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

use crate::entry::Entry;
use crate::event::{LedgerEvent, ProbeResult, Settled};
use crate::note::Verifier;
use crate::signed::{self, DocumentError, field, text};
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

/// Why a certificate does not verify (the error every signed document shares).
pub type CertificateError = DocumentError;

use DocumentError::{Malformed, Unsupported};

/// Check a certificate: signature, checkpoint, every evidence entry's inclusion, and every
/// claim against its evidence. The error names what failed.
pub fn verify(doc: &Value, key: &Verifier) -> Result<Verified, CertificateError> {
    let opened = signed::open(doc, "certificate", CONTEXT, VERSION, key)?;
    let (cert, size) = (opened.body, opened.size);
    let identity = text(cert, "identity")?.to_owned();
    let entries: BTreeMap<u64, (Entry, LedgerEvent)> = signed::evidence(&opened, &identity, &format!("`{identity}`"))?
        .into_iter()
        .map(|(seq, e, event)| (seq, (e, event)))
        .collect();
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
