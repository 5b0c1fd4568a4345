//! CSR parsing and proof-of-possession checking: any text is a public key or a refusal.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = tenure_svid::x509::verify_csr(text);
    }
});
