//! The engine's side of the ledger: signed checkpoints (incremental from the last one's saved
//! frontier), inclusion and consistency proofs, and replay — rebuilding identity states and
//! grants from the ledger alone and comparing them with the database, which is what catches an
//! edit made directly in the database file.

use crate::{Engine, EngineError, Result};
use base64::Engine as _;
use std::collections::BTreeMap;
use tenure_ledger::LedgerEvent;
use tenure_ledger::merkle::{self, Accumulator, Hash};
use tenure_ledger::{Checkpoint, Entry, Signer};
use tenure_store::{CheckpointRow, NewEntry, StoreError, WriteTx};
use time::OffsetDateTime;

/// Who acted, when, under which policy version: what the entries of one step share.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stamp<'a> {
    pub at: OffsetDateTime,
    pub actor: &'a str,
    pub version: &'a str,
}

impl<'a> Stamp<'a> {
    pub fn new(at: OffsetDateTime, actor: &'a str, version: &'a str) -> Self {
        Self { at, actor, version }
    }

    /// The engine acting on its own (the clock, the workers).
    pub fn engine(at: OffsetDateTime, version: &'a str) -> Self {
        Self { at, actor: crate::ACTOR_ENGINE, version }
    }
}

/// Append `event` about `subject` to the ledger, in the caller's transaction.
pub(crate) fn record(
    tx: &mut dyn WriteTx,
    stamp: Stamp<'_>,
    subject: &str,
    event: LedgerEvent,
) -> Result<(), StoreError> {
    record_seq(tx, stamp, subject, event).map(|_| ())
}

/// [`record`], returning the entry's seq.
pub(crate) fn record_seq(
    tx: &mut dyn WriteTx,
    stamp: Stamp<'_>,
    subject: &str,
    event: LedgerEvent,
) -> Result<i64, StoreError> {
    tx.append_entry(&NewEntry {
        at: stamp.at,
        actor: stamp.actor,
        subject,
        policy_version: stamp.version,
        event: &event,
        request_id: crate::telemetry::request_id().as_deref(),
    })
}

/// What [`Engine::for_each_entry`] calls with each entry's seq and exact bytes.
pub type EntryVisitor<'a, E> = dyn FnMut(i64, &[u8]) -> Result<(), E> + 'a;

/// Entries read per page when streaming the ledger.
const PAGE: i64 = 10_000;

/// An entry with its inclusion proof against a signed checkpoint.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InclusionProof {
    pub seq: i64,
    /// The entry exactly as hashed.
    pub entry: serde_json::Value,
    pub entry_bytes: String,
    pub leaf_hash: String,
    pub tree_size: i64,
    pub root: String,
    /// Audit path, bottom up, hex.
    pub proof: Vec<String>,
    /// The signed note the root comes from.
    pub checkpoint: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ConsistencyProof {
    pub old_size: i64,
    pub new_size: i64,
    pub old_root: String,
    pub new_root: String,
    pub proof: Vec<String>,
}

/// A difference between what the ledger says and what the database holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub subject: String,
    pub what: String,
    pub ledger: String,
    pub database: String,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {}: the ledger says {}, the database holds {}",
            self.subject, self.what, self.ledger, self.database
        )
    }
}

fn b64(h: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(h)
}

/// Ledger entries carried as evidence, with the checkpoint their proofs are against.
pub(crate) struct Evidence {
    pub checkpoint: CheckpointRow,
    /// `{ seq, entry, proof }` per entry, in the order asked.
    pub items: Vec<serde_json::Value>,
    /// The same entries, parsed, by seq.
    pub entries: BTreeMap<i64, Entry>,
}

impl Engine {
    /// Sign a checkpoint of the whole ledger (or return the latest if nothing was appended since).
    pub fn checkpoint(&self, signer: &Signer) -> Result<CheckpointRow> {
        let now = self.clock.now();
        let mut tx = self.store.write()?;
        let size = tx.ledger_count()?;
        let latest = tx.latest_checkpoint()?;
        if let Some(l) = &latest
            && l.size == size
        {
            return Ok(l.clone());
        }
        let mut acc = match &latest {
            Some(l) => Accumulator::from_bytes(&l.frontier)
                .ok_or_else(|| EngineError::Ledger(format!("checkpoint {} has a malformed frontier", l.size)))?,
            None => Accumulator::new(),
        };
        let mut from = i64::try_from(acc.size()).unwrap_or(0);
        while from < size {
            let to = (from + PAGE).min(size);
            for leaf in tx.ledger_leaves(from, to)? {
                acc.push(leaf);
            }
            from = to;
        }
        if i64::try_from(acc.size()).ok() != Some(size) {
            return Err(EngineError::Ledger(format!("expected {size} leaves, found {}", acc.size())));
        }
        let root = acc.root();
        let note = signer.sign(&Checkpoint { origin: signer.name().to_owned(), size: acc.size(), root });
        let row = CheckpointRow { size, root: root.to_vec(), frontier: acc.to_bytes(), note, created_at: now };
        tx.add_checkpoint(&row)?;
        tx.commit()?;
        Ok(row)
    }

    fn leaves(&self, size: i64) -> Result<Vec<Hash>> {
        let tx = self.store.read()?;
        let leaves = tx.ledger_leaves(0, size)?;
        if i64::try_from(leaves.len()).ok() != Some(size) {
            return Err(EngineError::Ledger(format!("expected {size} leaves, found {}", leaves.len())));
        }
        Ok(leaves)
    }

    /// The evidence of a signed document (a closure certificate, a drift report): each entry of
    /// `seqs`, in that order, with its inclusion proof against one checkpoint covering them all
    /// (the latest, or one made now if it does not).
    pub(crate) fn evidence(&self, seqs: &[i64], signer: &Signer) -> Result<Evidence> {
        let last = seqs.iter().copied().max().unwrap_or(0);
        let checkpoint = match self.store.read()?.latest_checkpoint()? {
            Some(c) if c.size > last => c,
            _ => self.checkpoint(signer)?,
        };
        let tx = self.store.read()?;
        let leaves = tx.ledger_leaves(0, checkpoint.size)?;
        let mut items = Vec::new();
        let mut entries = BTreeMap::new();
        for seq in seqs {
            let (_, bytes) = tx.ledger_entries(*seq, 1)?.into_iter().next().ok_or(EngineError::NoEntry(*seq))?;
            let index = usize::try_from(*seq).map_err(|_| EngineError::NoEntry(*seq))?;
            let proof = merkle::inclusion_proof(index, &leaves).ok_or(EngineError::NoEntry(*seq))?;
            entries.insert(*seq, Entry::parse(&bytes).map_err(|e| EngineError::Ledger(e.to_string()))?);
            let text = String::from_utf8(bytes).map_err(|e| EngineError::Ledger(e.to_string()))?;
            items.push(serde_json::json!({
                "seq": seq, "entry": text, "proof": proof.iter().map(hex::encode).collect::<Vec<_>>(),
            }));
        }
        Ok(Evidence { checkpoint, items, entries })
    }

    /// Entry `seq` with its inclusion proof against the latest checkpoint (made now if the
    /// latest does not cover the entry).
    pub fn prove(&self, seq: i64, signer: &Signer) -> Result<InclusionProof> {
        let latest = self.store.read()?.latest_checkpoint()?;
        let cp = match latest {
            Some(c) if c.size > seq => c,
            _ => self.checkpoint(signer)?,
        };
        if seq < 0 || seq >= cp.size {
            return Err(EngineError::NoEntry(seq));
        }
        let leaves = self.leaves(cp.size)?;
        let index = usize::try_from(seq).map_err(|_| EngineError::NoEntry(seq))?;
        let proof = merkle::inclusion_proof(index, &leaves).ok_or(EngineError::NoEntry(seq))?;
        let (_, bytes) =
            self.store.read()?.ledger_entries(seq, 1)?.into_iter().next().ok_or(EngineError::NoEntry(seq))?;
        let leaf = merkle::leaf_hash(&bytes);
        let root: Hash = cp.root.clone().try_into().map_err(|_| EngineError::Ledger("root is not 32 bytes".into()))?;
        if leaves.get(index) != Some(&leaf) || merkle::root(&leaves) != root {
            return Err(EngineError::Ledger(format!(
                "entry {seq} or checkpoint {} does not match the stored leaves",
                cp.size
            )));
        }
        Ok(InclusionProof {
            seq,
            entry: serde_json::from_slice(&bytes).map_err(|e| EngineError::Ledger(e.to_string()))?,
            entry_bytes: String::from_utf8_lossy(&bytes).into_owned(),
            leaf_hash: hex::encode(leaf),
            tree_size: cp.size,
            root: b64(&cp.root),
            proof: proof.iter().map(hex::encode).collect(),
            checkpoint: cp.note,
        })
    }

    /// A consistency proof between two checkpointed sizes.
    pub fn consistency(&self, old_size: i64, new_size: i64) -> Result<ConsistencyProof> {
        let tx = self.store.read()?;
        let cps = tx.checkpoints()?;
        drop(tx);
        let find = |s: i64| cps.iter().find(|c| c.size == s).ok_or(EngineError::NoCheckpoint(s));
        let (old, new) = (find(old_size)?, find(new_size)?);
        let leaves = self.leaves(new_size)?;
        let m = usize::try_from(old_size).map_err(|_| EngineError::NoEntry(old_size))?;
        let proof = merkle::consistency_proof(m, &leaves).ok_or(EngineError::NoEntry(old_size))?;
        Ok(ConsistencyProof {
            old_size,
            new_size,
            old_root: b64(&old.root),
            new_root: b64(&new.root),
            proof: proof.iter().map(hex::encode).collect(),
        })
    }

    /// Visit every ledger entry in order, as (seq, exact bytes).
    pub fn for_each_entry<E: From<EngineError>>(&self, f: &mut EntryVisitor<'_, E>) -> Result<i64, E> {
        let mut from = 0;
        loop {
            let page = self.store.read().and_then(|tx| tx.ledger_entries(from, PAGE)).map_err(EngineError::from)?;
            let Some((last, _)) = page.last() else { return Ok(from) };
            let next = last + 1;
            for (seq, bytes) in &page {
                f(*seq, bytes)?;
            }
            from = next;
        }
    }

    /// Rebuild identity states, grants and credential states from the ledger alone; compare
    /// with the database.
    pub fn replay(&self) -> Result<Vec<Difference>> {
        #[derive(Default)]
        struct Rebuilt {
            state: Option<String>,
            grants: BTreeMap<String, String>,
        }
        let mut world: BTreeMap<String, Rebuilt> = BTreeMap::new();
        // Credential id → (identity, state) as the ledger tells it.
        let mut credentials: BTreeMap<String, (String, &'static str)> = BTreeMap::new();
        let mut expected_seq = 0;
        let mut prev = tenure_ledger::entry::ZERO.to_owned();
        self.for_each_entry(&mut |seq, bytes| {
            let e = Entry::parse(bytes).map_err(|m| EngineError::Ledger(format!("entry {seq}: {m}")))?;
            if e.seq != u64::try_from(expected_seq).unwrap_or(u64::MAX) || seq != expected_seq || e.prev != prev {
                return Err(EngineError::Ledger(format!("entry {seq} does not chain to the entry before it")));
            }
            expected_seq += 1;
            prev = hex::encode(merkle::leaf_hash(bytes));
            let event = LedgerEvent::from_parts(&e.action, e.detail)
                .map_err(|m| EngineError::Ledger(format!("entry {seq}: {m}")))?;
            if let Some(to) = event.lifecycle_to() {
                world.entry(e.subject.clone()).or_default().state = Some(to.to_string());
            }
            let grants = event.grant_states();
            if !grants.is_empty() {
                let r = world.entry(e.subject.clone()).or_default();
                for (entitlement, state) in grants {
                    r.grants.insert(entitlement.to_owned(), state.to_string());
                }
            }
            let credential = match &event {
                LedgerEvent::CredentialIssued(c) => Some((&c.credential, "issued")),
                LedgerEvent::CredentialRevoked(c) => Some((&c.credential, "revoked")),
                LedgerEvent::CredentialVerified(c) => Some((&c.credential, "revocation-verified")),
                _ => None,
            };
            if let Some((id, state)) = credential {
                credentials.insert(id.clone(), (e.subject.clone(), state));
            }
            Ok(())
        })?;

        let tx = self.store.read()?;
        let mut grants = tx.all_grants()?;
        let mut diffs = Vec::new();
        let missing = || "nothing".to_owned();
        for i in tx.identities()? {
            let subject = i.reference.to_string();
            let rebuilt = world.remove(&subject).unwrap_or_default();
            let state = i.state.to_string();
            if rebuilt.state.as_deref() != Some(state.as_str()) {
                diffs.push(Difference {
                    subject: subject.clone(),
                    what: "state".into(),
                    ledger: rebuilt.state.unwrap_or_else(missing),
                    database: state,
                });
            }
            let held: BTreeMap<String, String> = grants
                .remove(&i.id)
                .unwrap_or_default()
                .into_iter()
                .map(|g| (g.entitlement, g.state.to_string()))
                .collect();
            let mut names: Vec<&String> = held.keys().chain(rebuilt.grants.keys()).collect();
            names.sort();
            names.dedup();
            for n in names {
                let (l, d) = (rebuilt.grants.get(n), held.get(n));
                if l != d {
                    diffs.push(Difference {
                        subject: subject.clone(),
                        what: format!("grant `{n}`"),
                        ledger: l.cloned().unwrap_or_else(missing),
                        database: d.cloned().unwrap_or_else(missing),
                    });
                }
            }
        }
        for c in tx.credentials(None)? {
            let database = match (c.revoked_at, c.verified_at) {
                (None, _) => "issued",
                (Some(_), None) => "revoked",
                (Some(_), Some(_)) => "revocation-verified",
            };
            let (subject, ledger) = match credentials.remove(&c.id) {
                Some((subject, state)) => (subject, state.to_owned()),
                None => {
                    (tx.identity_by_id(c.identity_id)?.map(|i| i.reference.to_string()).unwrap_or_default(), missing())
                }
            };
            if ledger != database {
                diffs.push(Difference {
                    subject,
                    what: format!("credential {}", c.id),
                    ledger,
                    database: database.into(),
                });
            }
        }
        for (id, (subject, state)) in credentials {
            diffs.push(Difference {
                subject,
                what: format!("credential {id}"),
                ledger: state.into(),
                database: missing(),
            });
        }
        for (subject, r) in world {
            if r.state.is_some() {
                diffs.push(Difference {
                    subject,
                    what: "identity".into(),
                    ledger: "it exists".into(),
                    database: missing(),
                });
            }
        }
        Ok(diffs)
    }
}
