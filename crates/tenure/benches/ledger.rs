//! Ledger benchmark, in one run:
//! - appends/s: ledger entries appended through the store (chain, JSON, leaf hash) in durable
//!   batches of 1000, against raw SQLite inserting the same bytes in the same batches;
//! - verification of an export of 1M entries (`tenure_ledger::export::verify`, as
//!   `tenure ledger verify` runs it) against `sha256sum` over the same file.
//!
//! `cargo bench -p tenure --bench ledger` (TENURE_BENCH_ENTRIES to change the count).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;
use tenure_engine::Engine;
use tenure_ledger::LedgerEvent;
use tenure_ledger::Signer;
use tenure_ledger::event::Changes;
use tenure_model::SystemClock;
use tenure_store::{NewEntry, SqliteStore, Store};

const BATCH: usize = 1000;

fn main() {
    let n: usize = std::env::var("TENURE_BENCH_ENTRIES").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("data")).unwrap());
    let clock = SystemClock;
    let event = |i: usize| {
        LedgerEvent::Recomputed(Changes {
            grants_added: ["corp-directory/all-staff", "corp-directory/employees", "corp-directory/vpn"]
                .map(String::from)
                .to_vec(),
            jobs: vec![format!("sync:corp-directory-{i}")],
            ..Changes::default()
        })
    };
    println!("ledger benchmark: {n} entries, durable batches of {BATCH}");

    // Appends through the store.
    let t = Instant::now();
    for start in (0..n).step_by(BATCH) {
        let mut tx = store.write().unwrap();
        for i in start..(start + BATCH).min(n) {
            let subject = format!("hr:E{i:07}");
            tx.append_entry(&NewEntry {
                at: tenure_model::Clock::now(&clock),
                actor: "bench",
                subject: &subject,
                policy_version: "d9d55fca198500d915538d996b59f3e2d24b38dea5a8ab81d8c0af6ea5aca688",
                event: &event(i),
                request_id: None,
            })
            .unwrap();
        }
        tx.commit().unwrap();
    }
    let tenure_appends = n as f64 / t.elapsed().as_secs_f64();

    // Raw SQLite: the same bytes, same batches, same durability.
    let raw_rows: Vec<(Vec<u8>, Vec<u8>)> = {
        let tx = store.read().unwrap();
        let mut rows = Vec::with_capacity(n);
        let mut from = 0;
        loop {
            let page = tx.ledger_entries(from, 100_000).unwrap();
            let Some((last, _)) = page.last() else { break };
            from = last + 1;
            rows.extend(page.into_iter().map(|(_, b)| (b.clone(), tenure_ledger::merkle::leaf_hash(&b).to_vec())));
        }
        rows
    };
    let mut raw = rusqlite::Connection::open(dir.path().join("raw.db")).unwrap();
    raw.pragma_update(None, "journal_mode", "WAL").unwrap();
    raw.pragma_update(None, "synchronous", "FULL").unwrap();
    raw.execute_batch("CREATE TABLE ledger (seq INTEGER PRIMARY KEY, entry BLOB NOT NULL, leaf BLOB NOT NULL)")
        .unwrap();
    let t = Instant::now();
    for (b, chunk) in raw_rows.chunks(BATCH).enumerate() {
        let tx = raw.transaction().unwrap();
        {
            let mut st = tx.prepare_cached("INSERT INTO ledger VALUES (?1, ?2, ?3)").unwrap();
            for (i, (entry, leaf)) in chunk.iter().enumerate() {
                st.execute(rusqlite::params![(b * BATCH + i) as i64, entry, leaf]).unwrap();
            }
        }
        tx.commit().unwrap();
    }
    let raw_inserts = n as f64 / t.elapsed().as_secs_f64();
    println!("\nappends/s (durable, batches of {BATCH}):");
    println!("  tenure ledger  {tenure_appends:>10.0}");
    println!("  raw SQLite     {raw_inserts:>10.0}   ratio {:.2}x", raw_inserts / tenure_appends);

    // Checkpoint and export.
    let engine = Engine::new(store.clone(), Arc::new(SystemClock));
    let signer = Signer::from_seed("tenure.bench/ledger", &[5; 32]);
    let t = Instant::now();
    let cp = engine.checkpoint(&signer).unwrap();
    let checkpoint_time = t.elapsed();
    let exp = dir.path().join("export");
    std::fs::create_dir_all(&exp).unwrap();
    let mut out = std::io::BufWriter::new(std::fs::File::create(exp.join("entries.jsonl")).unwrap());
    for (entry, _) in &raw_rows {
        out.write_all(entry).unwrap();
        out.write_all(b"\n").unwrap();
    }
    out.flush().unwrap();
    drop(out);
    let bytes = std::fs::metadata(exp.join("entries.jsonl")).unwrap().len();
    let notes = vec![("cp.note".to_owned(), cp.note.clone())];
    let key = signer.verifier().to_string();

    // Verify (best of 3) against sha256sum over the same file (best of 3).
    let mut verify_best = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let f = std::fs::File::open(exp.join("entries.jsonl")).unwrap();
        let r = tenure_ledger::export::verify(&mut std::io::BufReader::with_capacity(1 << 20, f), &notes, &key, &[])
            .unwrap();
        assert_eq!(r.entries, n as u64);
        verify_best = verify_best.min(t.elapsed().as_secs_f64());
    }
    let mut sha_best = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let s = std::process::Command::new("sha256sum").arg(exp.join("entries.jsonl")).output().unwrap();
        assert!(s.status.success());
        sha_best = sha_best.min(t.elapsed().as_secs_f64());
    }
    let mb = bytes as f64 / 1e6;
    println!("\nverify an export of {n} entries ({mb:.0} MB):");
    println!(
        "  tenure ledger verify  {verify_best:>7.2} s  {:>7.0} MB/s  {:>9.0} entries/s",
        mb / verify_best,
        n as f64 / verify_best
    );
    println!("  sha256sum            {sha_best:>7.2} s  {:>7.0} MB/s", mb / sha_best);
    println!("  ratio                {:.2}x sha256sum's time", verify_best / sha_best);
    println!("\ncheckpoint of {n} entries from scratch: {:.2} s", checkpoint_time.as_secs_f64());
}
