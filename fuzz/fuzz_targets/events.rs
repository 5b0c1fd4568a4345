//! The event parsers (JSON array, JSON lines, CSV) and the wire-to-domain conversion: any input
//! is records or positioned errors, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tenure_engine::{ingest, parse};

fuzz_target!(|data: &[u8]| {
    if let Ok(records) = parse::json_array(data) {
        let _ = ingest::events_from_wire(records);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(records) = parse::json_lines(text) {
            let _ = ingest::events_from_wire(records);
        }
        if let Ok(records) = parse::csv(text) {
            let _ = ingest::events_from_wire(records);
        }
    }
});
