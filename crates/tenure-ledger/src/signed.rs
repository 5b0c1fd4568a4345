//! What closure certificates and drift reports share: a body signed with the ledger's key
//! under a context string, a signed checkpoint of a given tree size, and evidence — ledger
//! entries carried with their inclusion proofs against that checkpoint, each about one subject.
//! [`open`] checks the envelope, [`evidence`] each entry; the document's own checks follow.

use crate::entry::{Entry, canonical_json};
use crate::event::LedgerEvent;
use crate::merkle::{self, Hash};
use crate::note::Verifier;
use serde_json::Value;

/// Why a signed document (a closure certificate, a drift report) does not verify. Each message
/// names what failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    #[error("signature: does not verify with this key (the document was altered or signed by another key)")]
    Signature,
    /// A part of the document is missing or of the wrong shape.
    #[error("{0}")]
    Malformed(String),
    /// The checkpoint does not open with the key, or signs another size.
    #[error("{0}")]
    Checkpoint(String),
    /// A statement its ledger entries do not support, or an entry not in the signed ledger.
    #[error("{0}")]
    Unsupported(String),
}

use DocumentError::{Checkpoint, Malformed, Unsupported};

pub(crate) fn field<'a>(v: &'a Value, k: &str) -> Result<&'a Value, DocumentError> {
    v.get(k).ok_or_else(|| Malformed(format!("missing field `{k}`")))
}

pub(crate) fn text<'a>(v: &'a Value, k: &str) -> Result<&'a str, DocumentError> {
    field(v, k)?.as_str().ok_or_else(|| Malformed(format!("field `{k}`: expected a string")))
}

/// A document whose signature, version and checkpoint verified.
pub(crate) struct Opened<'a> {
    pub body: &'a Value,
    pub size: u64,
    root: Hash,
}

/// Check the envelope: `doc[body]` signed under `context`, of `version`, with a checkpoint that
/// opens with the key and signs the stated `tree_size`.
pub(crate) fn open<'a>(
    doc: &'a Value,
    body: &str,
    context: &str,
    version: &str,
    key: &Verifier,
) -> Result<Opened<'a>, DocumentError> {
    let b = field(doc, body)?;
    if !key.verify_message(context, &canonical_json(b), text(doc, "signature")?) {
        return Err(DocumentError::Signature);
    }
    if text(b, "version")? != version {
        return Err(Malformed(format!("version: expected `{version}`")));
    }
    let cp = key.open(text(b, "checkpoint")?).map_err(|e| Checkpoint(format!("checkpoint: {e}")))?;
    let size = field(b, "tree_size")?.as_u64().ok_or_else(|| Malformed("tree_size: expected a number".into()))?;
    if cp.size != size {
        return Err(Checkpoint(format!("checkpoint: signs size {}, the {body} says {size}", cp.size)));
    }
    Ok(Opened { body: b, size, root: cp.root })
}

/// Every entry of `evidence`: included in the signed tree, its stated seq, about `subject`
/// (`shown` is how an error names it), with its typed event.
pub(crate) fn evidence(
    doc: &Opened<'_>,
    subject: &str,
    shown: &str,
) -> Result<Vec<(u64, Entry, LedgerEvent)>, DocumentError> {
    evidence_about(doc, Some((subject, shown)))
}

/// [`evidence`], about `subject` (and how an error names it) when given, else about anyone.
pub(crate) fn evidence_about(
    doc: &Opened<'_>,
    subject: Option<(&str, &str)>,
) -> Result<Vec<(u64, Entry, LedgerEvent)>, DocumentError> {
    let mut out = Vec::new();
    for (i, ev) in field(doc.body, "evidence")?
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
        if !merkle::verify_inclusion(seq, doc.size, &merkle::leaf_hash(bytes), &proof, &doc.root) {
            return Err(Unsupported(format!("{at}: entry {seq} is not in the signed ledger of size {}", doc.size)));
        }
        let mut e = Entry::parse(bytes).map_err(|m| Malformed(format!("{at}: {m}")))?;
        if e.seq != seq {
            return Err(Unsupported(format!("{at}: entry {seq} says it is entry {}", e.seq)));
        }
        if let Some((subject, shown)) = subject
            && e.subject != subject
        {
            return Err(Unsupported(format!("{at}: entry {seq} is not about {shown}")));
        }
        let event = LedgerEvent::from_parts(&e.action, std::mem::take(&mut e.detail))
            .map_err(|m| Malformed(format!("{at}: {m}")))?;
        out.push((seq, e, event));
    }
    Ok(out)
}
