//! Ledger entries, signed-note checkpoints, exports, closure certificates and drift reports as an outside
//! verifier reads them: any input verifies or is refused, never a panic. The key is the one of
//! the worked example in docs/ledger-export.md, which seeds the corpus.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tenure_ledger::{Entry, Signer, export};

fuzz_target!(|data: &[u8]| {
    let signer = Signer::from_seed("tenure.example/ledger", &[0x11; 32]);
    let verifier = signer.verifier();
    let _ = Entry::parse(data);
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = verifier.open(text);
    let _ = tenure_ledger::Verifier::parse(text);
    // An export: entries up to the first NUL, then a checkpoint note.
    let (entries, note) = text.split_once('\0').unwrap_or((text, ""));
    let notes = vec![("fuzz.note".to_owned(), note.to_owned())];
    let _ = export::verify(&mut entries.as_bytes(), &notes, &verifier.to_string(), &[]);
    if let Ok(doc) = serde_json::from_str::<serde_json::Value>(text) {
        let _ = tenure_ledger::closure::verify(&doc, &verifier);
        let _ = tenure_ledger::drift::verify(&doc, &verifier);
    }
});
