//! The policy bundle loader: the input is split at NUL bytes into a manifest, a template file, a
//! Cedar policy file and a Cedar schema file; any bundle is loaded or refused with problems.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tenure_policy::{Bundle, BundleFiles};

const PATHS: [&str; 4] = ["tenure.toml", "templates/t.toml", "policies/p.cedar", "schema/s.cedarschema"];

fuzz_target!(|data: &[u8]| {
    let mut files = BundleFiles::new();
    for (path, part) in PATHS.iter().zip(data.split(|b| *b == 0)) {
        files.insert((*path).to_owned(), part.to_vec());
    }
    let _ = Bundle::load(files);
});
