//! Verifying an export from its files alone (see `docs/ledger-export.md`): every entry parses,
//! sits at its position, and chains to the one before; every checkpoint is signed by the key
//! and its root is the Merkle root of that many entries; every entry is covered by a
//! checkpoint. The first entry that does not verify is named.

use crate::entry::{Entry, ZERO};
use crate::merkle::{Accumulator, Hash, leaf_hash};
use crate::note::{Checkpoint, Verifier};
use std::collections::BTreeMap;
use std::io::BufRead;

/// What a verified export holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub entries: u64,
    pub checkpoints: usize,
    pub root: Hash,
}

/// Why an export does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("LG0101 entry {seq}: {message}")]
    Entry { seq: u64, message: String },
    #[error("LG0102 checkpoint `{file}`: {message}")]
    Checkpoint { file: String, message: String },
    #[error("LG0103 verifier key: {0}")]
    Key(String),
    #[error("LG0104 the log was truncated: it has {entries} entries but checkpoint `{file}` covers {size}")]
    Truncated { file: String, size: u64, entries: u64 },
    #[error("LG0105 entries {from} to {to} are not covered by any checkpoint")]
    Unanchored { from: u64, to: u64 },
    #[error("LG0106 cannot read the entries: {0}")]
    Io(String),
}

impl VerifyError {
    fn entry(seq: u64, message: impl Into<String>) -> Self {
        Self::Entry { seq, message: message.into() }
    }
}

/// A line whose link to the entry before it is broken, kept until we know which entry changed.
struct Broken {
    seq: u64,
    bytes: Vec<u8>,
    /// The `prev` it has, and the `prev` it should have (the leaf hash of the entry before).
    claimed: String,
    expected: String,
    /// The tree before this line.
    before: Accumulator,
}

type BySize = BTreeMap<u64, Vec<(String, Checkpoint)>>;

/// Verify an export. `checkpoints` and `trusted` are (name, note text); `trusted` are
/// checkpoints kept from earlier (for example by an auditor), which the log must extend.
pub fn verify(
    entries: &mut dyn BufRead,
    checkpoints: &[(String, String)],
    verifier_key: &str,
    trusted: &[(String, String)],
) -> Result<Report, VerifyError> {
    let verifier = Verifier::parse(verifier_key).map_err(|e| VerifyError::Key(e.to_string()))?;
    // A trusted checkpoint is checked just like the export's own.
    let mut by_size: BySize = BTreeMap::new();
    for (file, text) in checkpoints.iter().chain(trusted) {
        let c =
            verifier.open(text).map_err(|e| VerifyError::Checkpoint { file: file.clone(), message: e.to_string() })?;
        by_size.entry(c.size).or_default().push((file.clone(), c));
    }

    let mut acc = Accumulator::new();
    let mut expected = ZERO.to_owned();
    // A changed entry breaks one link (the next entry's `prev`); a changed `prev` breaks two
    // (its own and, since its bytes changed, the next one's).
    let mut broken: Option<Broken> = None;
    let mut seq: u64 = 0;
    check_roots(&by_size, 0, &acc, broken.as_ref())?;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = entries.read_until(b'\n', &mut buf).map_err(|e| VerifyError::Io(e.to_string()))?;
        if n == 0 {
            break;
        }
        let Some(bytes) = buf.strip_suffix(b"\n") else {
            return Err(VerifyError::entry(seq, "the last line has no line end (bytes were cut)"));
        };
        let entry = Entry::parse(bytes).map_err(|e| VerifyError::entry(seq, format!("not a ledger entry: {e}")))?;
        if entry.seq != seq {
            return Err(VerifyError::entry(
                seq,
                format!("line {} holds entry {}: an entry was removed, inserted or moved here", seq + 1, entry.seq),
            ));
        }
        let before = acc.clone();
        let leaf = leaf_hash(bytes);
        acc.push(leaf);
        match (&broken, entry.prev == expected) {
            (None, true) => {}
            (None, false) => {
                broken = Some(Broken { seq, bytes: bytes.to_vec(), claimed: entry.prev.clone(), expected, before })
            }
            (Some(b), false) => return Err(changed(b.seq, "its `prev` was changed")),
            (Some(b), true) => {
                return Err(changed(b.seq.saturating_sub(1), "the next entry's `prev` does not match it"));
            }
        }
        expected = hex::encode(leaf);
        seq += 1;
        check_roots(&by_size, seq, &acc, broken.as_ref())?;
    }
    if let Some(b) = &broken {
        return Err(blame_last(b, &by_size));
    }
    if let Some((size, list)) = by_size.range(seq + 1..).next() {
        let file = list.first().map(|(f, _)| f.clone()).unwrap_or_default();
        return Err(VerifyError::Truncated { file, size: *size, entries: seq });
    }
    let covered = by_size.keys().next_back().copied().unwrap_or(0);
    if covered < seq {
        return Err(VerifyError::Unanchored { from: covered, to: seq - 1 });
    }
    Ok(Report { entries: seq, checkpoints: checkpoints.len(), root: acc.root() })
}

fn changed(seq: u64, why: &str) -> VerifyError {
    VerifyError::entry(seq, format!("this entry is not what the log recorded: {why}"))
}

/// Every checkpoint of this size must have the root of the entries so far.
fn check_roots(by_size: &BySize, size: u64, acc: &Accumulator, broken: Option<&Broken>) -> Result<(), VerifyError> {
    let Some(list) = by_size.get(&size) else { return Ok(()) };
    let root = acc.root();
    for (file, c) in list {
        if c.root == root {
            continue;
        }
        return Err(match (size, broken) {
            (0, _) => VerifyError::Checkpoint { file: file.clone(), message: "wrong root for the empty log".into() },
            // The link into the last entry covered is broken: decide between it and the one before.
            (_, Some(b)) if b.seq == size - 1 => blame_last(b, by_size),
            // Every link holds, so the last entry covered is the one that changed, or the log
            // was rewritten (forked) before this checkpoint.
            _ => VerifyError::entry(
                size - 1,
                format!(
                    "does not match checkpoint `{file}` (size {size}): this entry or the history before it was rewritten"
                ),
            ),
        });
    }
    Ok(())
}

/// Only the link into entry `b` is broken and no later link can tell us more: either entry
/// `b`'s `prev` or entry `b - 1` changed. Put back the `prev` it should have and see whether a
/// signed root then matches: if so, only the `prev` was changed.
fn blame_last(b: &Broken, by_size: &BySize) -> VerifyError {
    if b.seq == 0 {
        return changed(0, "the first entry's `prev` must be all zeros");
    }
    let needle = format!("\"prev\":\"{}\"", b.claimed);
    let fixed = String::from_utf8_lossy(&b.bytes).replacen(&needle, &format!("\"prev\":\"{}\"", b.expected), 1);
    let mut acc = b.before.clone();
    acc.push(leaf_hash(fixed.as_bytes()));
    let root = acc.root();
    let restores = by_size.get(&(b.seq + 1)).is_some_and(|l| l.iter().any(|(_, c)| c.root == root));
    if restores {
        changed(b.seq, "its `prev` was changed")
    } else {
        changed(b.seq - 1, "the next entry's `prev` does not match it")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::Signer;

    const ORIGIN: &str = "tenure.test/ledger";

    /// A log of `n` entries and checkpoints at `sizes`; returns (entries file, notes, key).
    fn log(n: u64, sizes: &[u64]) -> (Vec<u8>, Vec<(String, String)>, String) {
        let signer = Signer::from_seed(ORIGIN, &[3; 32]);
        let mut file = Vec::new();
        let mut acc = Accumulator::new();
        let mut prev = ZERO.to_owned();
        let mut notes = Vec::new();
        let note_at = |acc: &Accumulator, notes: &mut Vec<(String, String)>| {
            if sizes.contains(&acc.size()) {
                let c = Checkpoint { origin: ORIGIN.into(), size: acc.size(), root: acc.root() };
                notes.push((format!("{:020}.note", acc.size()), signer.sign(&c)));
            }
        };
        note_at(&acc, &mut notes);
        for seq in 0..n {
            let e = Entry {
                seq,
                prev: prev.clone(),
                at: "2026-11-01T09:00:00Z".into(),
                actor: "test".into(),
                action: "identity.joined".into(),
                subject: format!("hr:E{seq}"),
                policy_version: "v1".into(),
                detail: serde_json::json!({ "grants_added": ["dir/staff"], "n": seq }),
                request_id: None,
            };
            let bytes = e.to_bytes();
            let leaf = leaf_hash(&bytes);
            acc.push(leaf);
            prev = hex::encode(leaf);
            file.extend_from_slice(&bytes);
            file.push(b'\n');
            note_at(&acc, &mut notes);
        }
        (file, notes, signer.verifier().to_string())
    }

    fn run(
        file: &[u8],
        notes: &[(String, String)],
        key: &str,
        trusted: &[(String, String)],
    ) -> Result<Report, VerifyError> {
        verify(&mut std::io::Cursor::new(file), notes, key, trusted)
    }

    #[test]
    fn an_intact_export_verifies() {
        let (file, notes, key) = log(25, &[0, 10, 25]);
        let r = run(&file, &notes, &key, &[]).unwrap();
        assert_eq!((r.entries, r.checkpoints), (25, 3));
        let (empty, notes, key) = log(0, &[0]);
        assert_eq!(run(&empty, &notes, &key, &[]).unwrap().entries, 0);
    }

    #[test]
    fn flipping_any_byte_of_the_entries_names_that_entry() {
        let (file, notes, key) = log(12, &[5, 12]);
        // Which entry each byte belongs to (its line, newline included).
        let mut owner = Vec::new();
        let mut line = 0u64;
        for b in &file {
            owner.push(line);
            if *b == b'\n' {
                line += 1;
            }
        }
        for (i, want) in owner.iter().enumerate() {
            for bit in [0x01u8, 0x20] {
                let mut bad = file.clone();
                bad[i] ^= bit;
                match run(&bad, &notes, &key, &[]) {
                    Err(VerifyError::Entry { seq, message }) => {
                        assert_eq!(seq, *want, "byte {i} ({:?}) flipped by {bit:#x}: {message}", file[i] as char)
                    }
                    other => panic!("byte {i} flipped by {bit:#x}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn removal_reordering_truncation_and_forks_are_caught() {
        let (file, notes, key) = log(10, &[4, 10]);
        let lines: Vec<&[u8]> = file.split_inclusive(|b| *b == b'\n').collect();
        let join = |ls: &[&[u8]]| ls.concat();

        let mut removed = lines.clone();
        removed.remove(3);
        assert!(matches!(run(&join(&removed), &notes, &key, &[]), Err(VerifyError::Entry { seq: 3, .. })));

        let mut swapped = lines.clone();
        swapped.swap(6, 7);
        assert!(matches!(run(&join(&swapped), &notes, &key, &[]), Err(VerifyError::Entry { seq: 6, .. })));

        // Cut to 7 entries: the checkpoint of size 10 proves entries are missing.
        let err = run(&join(&lines[..7]), &notes, &key, &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "LG0104 the log was truncated: it has 7 entries but checkpoint `00000000000000000010.note` covers 10"
        );

        // A rewritten history with fresh checkpoints still fails against one kept from before.
        let (other, other_notes, _) = {
            let (f, n, k) = log(10, &[4, 10]);
            let mut f = f;
            let pos = f.windows(6).position(|w| w == b"hr:E2\"").unwrap();
            f[pos + 4] = b'9';
            (f, n, k)
        };
        let _ = other_notes;
        let kept = vec![("auditor-copy.note".to_owned(), notes[1].1.clone())];
        assert!(run(&other, &notes[..1], &key, &kept).is_err());

        // Entries past the last checkpoint are not vouched for.
        let err = run(&file, &notes[..1], &key, &[]).unwrap_err();
        assert_eq!(err, VerifyError::Unanchored { from: 4, to: 9 });
    }

    #[test]
    fn checkpoints_and_keys_are_checked() {
        let (file, notes, key) = log(6, &[6]);
        let mut forged = notes.clone();
        forged[0].1 = forged[0].1.replacen("\n6\n", "\n5\n", 1);
        assert!(matches!(run(&file, &forged, &key, &[]), Err(VerifyError::Checkpoint { .. })));
        let other_key = Signer::from_seed(ORIGIN, &[4; 32]).verifier().to_string();
        assert!(matches!(run(&file, &notes, &other_key, &[]), Err(VerifyError::Checkpoint { .. })));
        assert!(matches!(run(&file, &notes, "nonsense", &[]), Err(VerifyError::Key(_))));
    }
}
