//! Ingest throughput: 100k joiner events through `Engine::ingest` (validation against policy
//! and state, identity + grants + account + outbox job + audit entry + event row, one durable
//! transaction per batch) against raw SQLite inserting the same event rows in the same batch
//! sizes with the same durability (WAL, `synchronous=FULL`), in one run; and against raw SQLite
//! inserting **every row tenure wrote** (identities, grants, accounts, jobs, ledger entries,
//! event rows, whatever else), copied from tenure's own database into the same schema (its
//! indexes and triggers included) in the same number of transactions: that ratio is tenure's
//! own overhead (validation, policy, serialization, hashing), not its write amplification.
//!
//! `cargo bench -p tenure --bench ingest` (TENURE_BENCH_EVENTS to change the count).

// Benchmark code: a failure should stop the run loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::Arc;
use std::time::{Duration, Instant};
use tenure_engine::{Engine, ingest, parse};
use tenure_model::SystemClock;
use tenure_policy::Bundle;
use tenure_store::SqliteStore;

#[path = "../src/quickstart.rs"]
#[allow(dead_code)]
mod quickstart;

fn main() {
    let n: usize = std::env::var("TENURE_BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let depts = ["engineering", "finance", "sales", "people"];
    let lines: String = (0..n)
        .map(|i| {
            serde_json::json!({"source": "hr", "id": format!("evt-{i}"), "type": "joined", "at": "2026-11-01T09:00:00Z",
                "identity": {"external_id": format!("E{i:06}"), "kind": "human", "name": format!("Person {i}"),
                    "attributes": {"department": depts[i % 4], "employment": "employee", "manager": "hr:E000000"}}})
            .to_string()
                + "\n"
        })
        .collect();
    let t = Instant::now();
    let events = ingest::events_from_wire(parse::json_lines(&lines).unwrap()).unwrap();
    let parse_time = t.elapsed();

    println!("ingest benchmark: {n} joiner events (quickstart policy: 5 birthright grants each)");
    println!("parse + structural checks: {:.0} events/s\n", n as f64 / parse_time.as_secs_f64());
    println!(
        "{:>6}  {:>16}  {:>16}  {:>7}  {:>22}  {:>7}",
        "batch", "tenure events/s", "raw rows/s", "ratio", "same rows: events/s", "ratio"
    );
    for batch in [1_000, 100] {
        let (tenure, written) = run_tenure(&events, batch);
        let raw = run_raw(&events, batch);
        let (same, rows, total) = run_same_rows(&written, n.div_ceil(batch));
        let (te, re, se) =
            (n as f64 / tenure.as_secs_f64(), n as f64 / raw.as_secs_f64(), n as f64 / same.as_secs_f64());
        println!("{batch:>6}  {te:>16.0}  {re:>16.0}  {:>6.2}x  {se:>22.0}  {:>6.2}x", re / te, se / te);
        println!("        (tenure wrote {:.1} rows per event: {rows})", total as f64 / n as f64);
    }
    println!(
        "\nratio = raw SQLite rows/s ÷ tenure events/s (how many times slower than bare inserts of the event rows);"
    );
    println!("same rows = the rows tenure wrote, inserted raw in as many transactions; its ratio is tenure's overhead");
}

/// What an ingest run wrote: a copy of the database from before the events, and tenure's
/// database after them.
struct Written {
    _dir: tempfile::TempDir,
    before: std::path::PathBuf,
    after: std::path::PathBuf,
}

fn run_tenure(events: &[tenure_engine::Event], batch: usize) -> (Duration, Written) {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::new(Arc::new(SqliteStore::open(dir.path()).unwrap()), Arc::new(SystemClock));
    engine
        .deploy(&Bundle::load(quickstart::policy_files()).unwrap(), &tenure_model::Principal::operator("bench"))
        .unwrap();
    let before = dir.path().join("before.db");
    let after = dir.path().join("tenure.db");
    rusqlite::Connection::open(&after).unwrap().execute("VACUUM INTO ?1", [before.to_str().unwrap()]).unwrap();
    let t = Instant::now();
    for chunk in events.chunks(batch) {
        let r = engine.ingest(chunk, &tenure_model::Principal::operator("bench")).unwrap();
        assert_eq!(r.accepted, chunk.len());
    }
    let elapsed = t.elapsed();
    let tx = engine.store().read().unwrap();
    assert_eq!(tx.event_count().unwrap(), events.len() as i64);
    drop(tx);
    (elapsed, Written { _dir: dir, before, after })
}

/// The user tables, in the order they were made (parents before children).
fn tables(c: &rusqlite::Connection) -> Vec<String> {
    let mut st = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid")
        .unwrap();
    st.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
}

/// Per table, the rows of `c` that the database at `before` does not have.
fn new_rows(c: &rusqlite::Connection, before: &std::path::Path) -> Vec<(String, Vec<Vec<rusqlite::types::Value>>)> {
    c.execute("ATTACH ?1 AS before", [before.to_str().unwrap()]).unwrap();
    let out = tables(c)
        .into_iter()
        .map(|t| {
            let mut st = c.prepare(&format!("SELECT * FROM main.\"{t}\" EXCEPT SELECT * FROM before.\"{t}\"")).unwrap();
            let width = st.column_count();
            let rows: Vec<Vec<rusqlite::types::Value>> =
                st.query_map([], |r| (0..width).map(|i| r.get(i)).collect()).unwrap().map(Result::unwrap).collect();
            (t, rows)
        })
        .collect();
    c.execute("DETACH before", []).unwrap();
    out
}

/// The rows `written` holds, inserted raw into a copy of the database from before them (same
/// schema, indexes and triggers; same durability) in `batches` transactions; and which tables
/// they went to, and how many there were.
fn run_same_rows(written: &Written, batches: usize) -> (Duration, String, usize) {
    let c = rusqlite::Connection::open(&written.after).unwrap();
    let rows = new_rows(&c, &written.before);
    drop(c);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("raw.db");
    std::fs::copy(&written.before, &path).unwrap();
    let mut c = rusqlite::Connection::open(&path).unwrap();
    c.pragma_update(None, "journal_mode", "WAL").unwrap();
    c.pragma_update(None, "synchronous", "FULL").unwrap();
    c.pragma_update(None, "foreign_keys", "ON").unwrap();
    let summary =
        rows.iter().filter(|(_, r)| !r.is_empty()).map(|(t, r)| format!("{t} {}", r.len())).collect::<Vec<_>>();
    let t = Instant::now();
    for b in 0..batches {
        let tx = c.transaction().unwrap();
        for (table, rows) in &rows {
            let Some(width) = rows.first().map(Vec::len) else { continue };
            let per = rows.len().div_ceil(batches);
            let marks = vec!["?"; width].join(", ");
            let mut st = tx.prepare_cached(&format!("INSERT OR REPLACE INTO \"{table}\" VALUES ({marks})")).unwrap();
            for row in rows.iter().skip(b * per).take(per) {
                st.execute(rusqlite::params_from_iter(row)).unwrap();
            }
        }
        tx.commit().unwrap();
    }
    let total = rows.iter().map(|(_, r)| r.len()).sum();
    (t.elapsed(), summary.join(", "), total)
}

fn run_raw(events: &[tenure_engine::Event], batch: usize) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let mut c = rusqlite::Connection::open(dir.path().join("raw.db")).unwrap();
    c.pragma_update(None, "journal_mode", "WAL").unwrap();
    c.pragma_update(None, "synchronous", "FULL").unwrap();
    c.execute_batch(
        "CREATE TABLE events (source TEXT NOT NULL, event_id TEXT NOT NULL, type TEXT NOT NULL, identity TEXT NOT NULL,
           at TEXT NOT NULL, received_at TEXT NOT NULL, digest TEXT NOT NULL, payload TEXT NOT NULL,
           PRIMARY KEY (source, event_id)) WITHOUT ROWID",
    )
    .unwrap();
    let t = Instant::now();
    for chunk in events.chunks(batch) {
        let tx = c.transaction().unwrap();
        {
            let mut st = tx.prepare_cached("INSERT INTO events VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)").unwrap();
            for e in chunk {
                st.execute(rusqlite::params![
                    e.source,
                    e.id,
                    "joined",
                    e.reference.to_string(),
                    "2026-11-01T09:00:00Z",
                    "2026-11-01T09:00:00Z",
                    e.digest,
                    e.payload
                ])
                .unwrap();
            }
        }
        tx.commit().unwrap();
    }
    t.elapsed()
}
