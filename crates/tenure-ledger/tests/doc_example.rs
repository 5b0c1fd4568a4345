//! `docs/ledger-export.md` carries a worked example; this regenerates it with the code and
//! checks the document shows exactly what the code writes (a failure prints the text to paste).

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use tenure_ledger::merkle::{leaf_hash, node_hash};
use tenure_ledger::{Checkpoint, Entry, Signer, entry::ZERO};

fn example() -> Vec<(String, String)> {
    let signer = Signer::from_seed("tenure.example/ledger", &[0x11; 32]);
    let e0 = Entry {
        seq: 0,
        prev: ZERO.into(),
        at: "2026-11-01T09:00:00.000000Z".into(),
        actor: "import:hr".into(),
        action: "identity.joined".into(),
        subject: "hr:E1001".into(),
        policy_version: "d9d55fca198500d915538d996b59f3e2d24b38dea5a8ab81d8c0af6ea5aca688".into(),
        detail: serde_json::json!({"grants_added": ["corp-directory/all-staff"], "state": {"to": "pending"}}),
        request_id: None,
    };
    let b0 = e0.to_bytes();
    let l0 = leaf_hash(&b0);
    let e1 = Entry {
        seq: 1,
        prev: hex::encode(l0),
        at: "2026-11-01T09:00:00.200000Z".into(),
        actor: "tenure".into(),
        action: "identity.activated".into(),
        subject: "hr:E1001".into(),
        policy_version: e0.policy_version.clone(),
        detail: serde_json::json!({"state": {"from": "pending", "to": "active"}}),
        request_id: None,
    };
    let b1 = e1.to_bytes();
    let l1 = leaf_hash(&b1);
    let root = node_hash(&l0, &l1);
    let note = signer.sign(&Checkpoint { origin: "tenure.example/ledger".into(), size: 2, root });
    vec![
        ("entries.jsonl".into(), format!("{}\n{}\n", String::from_utf8(b0).unwrap(), String::from_utf8(b1).unwrap())),
        ("leaf hash of entry 0".into(), hex::encode(l0)),
        ("leaf hash of entry 1".into(), hex::encode(l1)),
        ("root of size 2".into(), hex::encode(root)),
        ("checkpoints/00000000000000000002.note".into(), note),
        ("ledger.pub".into(), format!("{}\n", signer.verifier())),
    ]
}

#[test]
fn the_document_shows_what_the_code_writes() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/ledger-export.md")).unwrap();
    for (what, text) in example() {
        assert!(doc.contains(&text), "docs/ledger-export.md does not show the {what} the code writes:\n{text}");
    }
}
