//! Entries written before the details were typed read as [`LedgerEvent`]s and write back byte
//! for byte; the export and the certificates of that time verify.

#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};
use tenure_ledger::{Entry, LedgerEvent, Verifier};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/before-typed-events")
}

fn verifier() -> Verifier {
    let key = std::fs::read_to_string(fixture().join("export/ledger.pub")).unwrap();
    Verifier::parse(key.trim()).unwrap()
}

#[test]
fn every_entry_written_before_typed_events_reads_as_one_and_writes_back_byte_for_byte() {
    let text = std::fs::read_to_string(fixture().join("export/entries.jsonl")).unwrap();
    let mut actions = std::collections::BTreeSet::new();
    for line in text.lines() {
        let entry = Entry::parse(line.as_bytes()).unwrap();
        let event = LedgerEvent::from_parts(&entry.action, entry.detail.clone())
            .unwrap_or_else(|e| panic!("entry {}: {e}", entry.seq));
        let (action, detail) = event.to_parts();
        let again = Entry { action, detail, ..entry.clone() };
        assert_eq!(String::from_utf8(again.to_bytes()).unwrap(), line, "entry {} changed", entry.seq);
        actions.insert(entry.action);
    }
    assert_eq!(actions.len(), 20, "{actions:?}");
}

#[test]
fn the_certificates_written_before_typed_events_verify() {
    for (file, systems, credentials) in [("closure-hr-E1010.json", 3, 0), ("closure-svc-search.json", 1, 4)] {
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(fixture().join(file)).unwrap()).unwrap();
        let v = tenure_ledger::closure::verify(&doc, &verifier()).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!((v.systems.len(), v.credentials.len()), (systems, credentials), "{file}");
    }
}
